// ViT configuration: HuggingFace ViTConfig field names plus the few timm switches the model needs.
// parseConfig reads HF config.json files, timm-style extras (global_pool, num_classes, init_values) and
// our own toHFConfigJson output, fills HF defaults and checks every field it uses.
import { CheckpointError } from '../errors.js';

/**
 * `gelu` (also `gelu_python`) is exact erf GELU; `gelu_new`, `gelu_pytorch_tanh` and `gelu_fast` the tanh
 * approximation; `linear` (HF's name, alias `none`) no activation at all (the from-scratch tutorial's MLP).
 */
export type HiddenAct = 'gelu' | 'gelu_new' | 'gelu_pytorch_tanh' | 'gelu_fast' | 'linear';
export const HIDDEN_ACTS: readonly HiddenAct[] = [
  'gelu',
  'gelu_new',
  'gelu_pytorch_tanh',
  'gelu_fast',
  'linear',
];

/** Key namings a model can be saved under: HF, timm, or one of the three tutorials' own state_dicts. */
export type ModelNaming = 'hf' | 'timm' | TutorialNaming;
/** The seed tutorials' own state_dict names (see tutorials.ts). */
export type TutorialNaming = 'einops-tutorial' | 'scratch-tutorial' | 'cifar-tutorial';
export const TUTORIAL_NAMINGS: readonly TutorialNaming[] = [
  'einops-tutorial',
  'scratch-tutorial',
  'cifar-tutorial',
];

export interface ViTConfig {
  /** Square input side in pixels. */
  image_size: number;
  /** Square patch side in pixels; the patch conv has kernel = stride = patch_size. */
  patch_size: number;
  num_channels: number;
  /** Token width D. */
  hidden_size: number;
  num_hidden_layers: number;
  num_attention_heads: number;
  /** MLP hidden width. */
  intermediate_size: number;
  hidden_act: HiddenAct;
  layer_norm_eps: number;
  /** Whether q, k, v projections have a bias. */
  qkv_bias: boolean;
  /** Classifier outputs; 0 means no head (features only). */
  num_labels: number;
  /** Class names keyed by the index as a string ('0', '1', ...), one per label. */
  id2label: Record<string, string>;
  hidden_dropout_prob: number;
  attention_probs_dropout_prob: number;
  /**
   * 'cls': token 0 feeds the head; 'mean': mean over the patch tokens (timm global_pool='avg');
   * 'mean_all': mean over every token, class token included (the einops tutorial's `Reduce`).
   */
  pooling: 'cls' | 'mean' | 'mean_all';
  /** Whether a class token is prepended (then it is token 0 and has a position). */
  class_token: boolean;
  /** 'learned': pos_embed parameter; 'sinusoidal': fixed 2-D sin-cos table (see weights.sinusoidalPosEmbed). */
  position_embedding: 'learned' | 'sinusoidal';
  /** LayerNorm `norm` over all tokens before pooling (HF `vit.layernorm`, timm `norm`). */
  final_norm: boolean;
  /** LayerNorm `fc_norm` on the pooled vector (timm avg-pool models). */
  fc_norm: boolean;
  /** timm LayerScale: blocks.i.ls1.gamma / ls2.gamma multiply each residual branch. */
  layer_scale: boolean;
  /** Key naming to use when saving (the model's own parameters always use timm names). */
  naming: ModelNaming;

  // Tutorial quirks. The defaults are the standard ViT; the seed tutorials' code differs as noted.
  /**
   * What the attention scores are divided by the square root of: 'head_dim' (standard), 'hidden_size'
   * (einops tutorial) or 'num_heads' (from-scratch tutorial).
   */
  attention_scale_dim: 'head_dim' | 'hidden_size' | 'num_heads';
  /** Where that scale applies: 'logits' (before the softmax, standard) or 'probs' (after it: einops tutorial). */
  attention_scale_at: 'logits' | 'probs';
  /** Axis the softmax normalises: 'keys' (standard) or 'queries' (from-scratch tutorial, `dim=2`). */
  attention_softmax: 'keys' | 'queries';
  /**
   * q, k and v all from the key projection (from-scratch tutorial): the query and value rows of `qkv`
   * stay in the model (and in its checkpoints) but are unused.
   */
  shared_qkv: boolean;
  /** The attention's output projection `attn.proj` exists (false: heads merged straight into the residual). */
  attention_proj: boolean;
  /** One LayerNorm per block (`norm1`) before both branches (from-scratch tutorial); no `norm2`. */
  shared_block_norm: boolean;
  /** Initial value of a learned position table: 'normal' (timm, std 0.02) or 'sincos_1d' (from-scratch tutorial). */
  pos_embed_init: 'normal' | 'sincos_1d';
}

/** The tutorial-quirk fields and their standard-ViT defaults (written to config.json only when they differ). */
export const QUIRK_DEFAULTS = Object.freeze({
  attention_scale_dim: 'head_dim',
  attention_scale_at: 'logits',
  attention_softmax: 'keys',
  shared_qkv: false,
  attention_proj: true,
  shared_block_norm: false,
  pos_embed_init: 'normal',
} as const satisfies Partial<ViTConfig>);

/**
 * The quirk fields of `cfg` that differ from the standard ViT (what config.json files carry besides the
 * usual fields; a standard model has none, so its saved config is unchanged).
 *
 * @example
 * quirkFields(PRESETS.tiny); // {}
 */
export function quirkFields(cfg: ViTConfig): Partial<ViTConfig> {
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(QUIRK_DEFAULTS)) {
    const mine = cfg[k as keyof ViTConfig];
    if (mine !== v) out[k] = mine;
  }
  return out as Partial<ViTConfig>;
}

const MNIST_LABELS = ['0', '1', '2', '3', '4', '5', '6', '7', '8', '9'];
/** The ten CIFAR-10 classes, in label order. */
export const CIFAR10_LABELS: readonly string[] = [
  'airplane',
  'automobile',
  'bird',
  'cat',
  'deer',
  'dog',
  'frog',
  'horse',
  'ship',
  'truck',
];

function labels(names: readonly string[]): Record<string, string> {
  return Object.fromEntries(names.map((n, i) => [String(i), n]));
}

function preset(
  fields: Partial<ViTConfig> & Pick<ViTConfig, 'image_size' | 'patch_size' | 'hidden_size'>,
): ViTConfig {
  const cfg: ViTConfig = {
    num_channels: 1,
    num_hidden_layers: 4,
    num_attention_heads: 4,
    intermediate_size: 4 * fields.hidden_size,
    hidden_act: 'gelu',
    layer_norm_eps: 1e-6,
    qkv_bias: true,
    num_labels: 10,
    id2label: labels(MNIST_LABELS),
    hidden_dropout_prob: 0,
    attention_probs_dropout_prob: 0,
    pooling: 'cls',
    class_token: true,
    position_embedding: 'learned',
    final_norm: true,
    fc_norm: false,
    layer_scale: false,
    naming: 'timm',
    ...QUIRK_DEFAULTS,
    ...fields,
  };
  Object.freeze(cfg.id2label);
  return Object.freeze(cfg);
}

/** Names of the built-in configurations. */
export type PresetName = 'tiny' | 'small' | 'cifar-tiny' | TutorialNaming;

/**
 * Built-in configurations (frozen; spread to change a field).
 *
 * @example
 * const cfg = parseConfig({ ...PRESETS.tiny, num_hidden_layers: 6 });
 */
export const PRESETS: Readonly<Record<PresetName, ViTConfig>> = Object.freeze({
  // MNIST 28px: 4x4 = 16 patches of 7px, 17 tokens.
  tiny: preset({ image_size: 28, patch_size: 7, hidden_size: 96, intermediate_size: 192 }),
  // MNIST 28px: 7x7 = 49 patches of 4px, 50 tokens.
  small: preset({ image_size: 28, patch_size: 4, hidden_size: 64, intermediate_size: 128 }),
  // CIFAR-10 32px: 8x8 = 64 patches of 4px, 65 tokens (same shape as test/vit-reference/cifar-tiny).
  'cifar-tiny': preset({
    image_size: 32,
    patch_size: 4,
    num_channels: 3,
    hidden_size: 48,
    intermediate_size: 192,
    id2label: labels(CIFAR10_LABELS),
  }),
  // The three seed tutorials' architectures as published (see tutorials.ts and test/seed-models).
  // einops tutorial: ViT() defaults (224px, 16px patches, 768 wide, 12 blocks, 8 heads, 1000 classes);
  // softmax(q·kᵀ)/√768, mean over all tokens then LayerNorm.
  'einops-tutorial': preset({
    image_size: 224,
    patch_size: 16,
    num_channels: 3,
    hidden_size: 768,
    num_hidden_layers: 12,
    num_attention_heads: 8,
    intermediate_size: 3072,
    layer_norm_eps: 1e-5,
    num_labels: 1000,
    id2label: labels(Array.from({ length: 1000 }, (_, i) => `LABEL_${i}`)),
    pooling: 'mean_all',
    final_norm: false,
    fc_norm: true,
    attention_scale_dim: 'hidden_size',
    attention_scale_at: 'probs',
    naming: 'einops-tutorial',
  }),
  // from-scratch tutorial: its published call (8 layers, 224px, 768 wide, 16px patches, 6 heads), 10
  // classes; q = k = v from `key`, softmax over queries, no output projection, one LayerNorm per block,
  // no MLP activation, 1-D sin-cos initial positions.
  'scratch-tutorial': preset({
    image_size: 224,
    patch_size: 16,
    num_channels: 3,
    hidden_size: 768,
    num_hidden_layers: 8,
    num_attention_heads: 6,
    intermediate_size: 3072,
    hidden_act: 'linear',
    layer_norm_eps: 1e-5,
    final_norm: false,
    attention_scale_dim: 'num_heads',
    attention_softmax: 'queries',
    shared_qkv: true,
    attention_proj: false,
    shared_block_norm: true,
    pos_embed_init: 'sincos_1d',
    naming: 'scratch-tutorial',
  }),
  // CIFAR-10 tutorial: cifar-tiny's shape with tanh GELU, no final LayerNorm, eps 1e-5, saved per head.
  'cifar-tutorial': preset({
    image_size: 32,
    patch_size: 4,
    num_channels: 3,
    hidden_size: 48,
    intermediate_size: 192,
    hidden_act: 'gelu_new',
    layer_norm_eps: 1e-5,
    final_norm: false,
    id2label: labels(CIFAR10_LABELS),
    naming: 'cifar-tutorial',
  }),
});

/** Patches per image: (image_size / patch_size)^2. */
export function numPatches(cfg: ViTConfig): number {
  const side = cfg.image_size / cfg.patch_size;
  return side * side;
}

/** Patches along one side of the grid. */
export function gridSize(cfg: ViTConfig): number {
  return cfg.image_size / cfg.patch_size;
}

/** Prefix tokens before the patches: 1 with a class token, else 0. */
export function numPrefixTokens(cfg: ViTConfig): number {
  return cfg.class_token ? 1 : 0;
}

/**
 * Sequence length T: patches plus the class token when there is one.
 *
 * @example
 * numTokens(PRESETS.tiny); // 17
 */
export function numTokens(cfg: ViTConfig): number {
  return numPatches(cfg) + numPrefixTokens(cfg);
}

/** Width of one attention head: hidden_size / num_attention_heads. */
export function headDim(cfg: ViTConfig): number {
  return cfg.hidden_size / cfg.num_attention_heads;
}

class Reader {
  constructor(
    private readonly src: Record<string, unknown>,
    private readonly where: string,
  ) {}

  fail(field: string, message: string): never {
    throw new CheckpointError(`config ${this.where}: ${field} ${message}`, { rule: 'vit-config' });
  }

  has(field: string): boolean {
    return this.src[field] !== undefined && this.src[field] !== null;
  }

  raw(field: string): unknown {
    return this.src[field];
  }

  int(field: string, dflt: number | undefined, min = 1): number {
    const v = this.has(field) ? this.src[field] : dflt;
    if (v === undefined) this.fail(field, 'is required');
    if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < min) {
      this.fail(field, `must be an integer >= ${min}, got ${JSON.stringify(v)}`);
    }
    return v;
  }

  /** A side length given as a number or as a square [h, w] pair. */
  side(field: string, dflt: number): number {
    const v = this.src[field];
    if (Array.isArray(v)) {
      if (v.length !== 2 || !v.every((x) => typeof x === 'number' && Number.isSafeInteger(x) && x >= 1)) {
        this.fail(field, `must be a positive integer or an [h, w] pair, got ${JSON.stringify(v)}`);
      }
      if (v[0] !== v[1])
        this.fail(field, `[${v[0]}, ${v[1]}] is not square; only square images and patches are supported`);
      return v[0] as number;
    }
    return this.int(field, dflt);
  }

  num(field: string, dflt: number, check: (v: number) => boolean, what: string): number {
    const v = this.has(field) ? this.src[field] : dflt;
    if (typeof v !== 'number' || !Number.isFinite(v) || !check(v))
      this.fail(field, `must be ${what}, got ${JSON.stringify(v)}`);
    return v;
  }

  bool(field: string, dflt: boolean): boolean {
    const v = this.has(field) ? this.src[field] : dflt;
    if (typeof v !== 'boolean') this.fail(field, `must be true or false, got ${JSON.stringify(v)}`);
    return v;
  }

  oneOf<T extends string>(field: string, dflt: T, allowed: readonly T[]): T {
    const v = this.has(field) ? this.src[field] : dflt;
    if (typeof v !== 'string' || !(allowed as readonly string[]).includes(v)) {
      this.fail(field, `must be one of ${allowed.map((a) => `'${a}'`).join(', ')}, got ${JSON.stringify(v)}`);
    }
    return v as T;
  }
}

/**
 * Reads a ViT config from parsed JSON: a HuggingFace config.json, one of the reference configs, a preset
 * or our own `toHFConfigJson` output. Missing fields take HF ViTConfig defaults (layer_norm_eps is 1e-6
 * when `naming` is 'timm'). Unknown fields are ignored. Throws CheckpointError naming `source` and the field.
 *
 * Accepted aliases: `global_pool` ('token' | 'avg') for pooling, `num_classes` for num_labels,
 * `init_values` (non-null) for layer_scale, `final_norm: 'pre_pool' | 'none'` as well as booleans.
 *
 * @example
 * const cfg = parseConfig(JSON.parse(fs.readFileSync('config.json', 'utf8')), 'config.json');
 * numTokens(cfg); // 197 for ViT-B/16 at 224px
 */
export function parseConfig(json: unknown, source = '<config>'): ViTConfig {
  if (typeof json !== 'object' || json === null || Array.isArray(json)) {
    throw new CheckpointError(
      `config ${source}: expected a JSON object, got ${Array.isArray(json) ? 'an array' : typeof json}`,
      {
        rule: 'vit-config',
      },
    );
  }
  const r: Reader = new Reader(json as Record<string, unknown>, source);

  const naming = r.oneOf<ModelNaming>('naming', 'hf', ['hf', 'timm', ...TUTORIAL_NAMINGS]);
  const image_size = r.side('image_size', 224);
  const patch_size = r.side('patch_size', 16);
  if (image_size % patch_size !== 0) {
    r.fail('image_size', `${image_size} is not divisible by patch_size ${patch_size}`);
  }
  const num_channels = r.int('num_channels', 3);
  const hidden_size = r.int('hidden_size', 768);
  const num_hidden_layers = r.int('num_hidden_layers', 12);
  const num_attention_heads = r.int('num_attention_heads', 12);
  if (hidden_size % num_attention_heads !== 0) {
    r.fail('hidden_size', `${hidden_size} is not divisible by num_attention_heads ${num_attention_heads}`);
  }
  const intermediate_size = r.int('intermediate_size', 3072);
  const rawAct = r.raw('hidden_act');
  const act =
    rawAct === 'gelu_python' ? 'gelu' : rawAct === 'none' || rawAct === 'identity' ? 'linear' : undefined;
  const hidden_act = act ?? r.oneOf('hidden_act', 'gelu', HIDDEN_ACTS);
  const layer_norm_eps = r.num(
    'layer_norm_eps',
    naming === 'timm' ? 1e-6 : 1e-12,
    (v) => v > 0 && v < 1,
    'a number in (0, 1)',
  );
  const qkv_bias = r.bool('qkv_bias', true);
  const prob = (v: number) => v >= 0 && v < 1;
  const hidden_dropout_prob = r.num('hidden_dropout_prob', 0, prob, 'a probability in [0, 1)');
  const attention_probs_dropout_prob = r.num(
    'attention_probs_dropout_prob',
    0,
    prob,
    'a probability in [0, 1)',
  );

  // Labels: id2label wins for names; num_labels (or timm num_classes) must agree with it.
  let id2label: Record<string, string> | undefined;
  if (r.has('id2label')) {
    const raw = r.raw('id2label');
    if (typeof raw !== 'object' || raw === null || Array.isArray(raw))
      r.fail('id2label', 'must be an object');
    const entries = Object.entries(raw as Record<string, unknown>);
    id2label = {};
    for (const [k, v] of entries) {
      if (!/^(0|[1-9]\d*)$/.test(k) || Number(k) >= entries.length) {
        r.fail('id2label', `keys must be the indices 0..${entries.length - 1}, got "${k}"`);
      }
      if (typeof v !== 'string')
        r.fail('id2label', `value for "${k}" must be a string, got ${JSON.stringify(v)}`);
      id2label[k] = v;
    }
  }
  const labelField = r.has('num_labels') ? 'num_labels' : r.has('num_classes') ? 'num_classes' : 'num_labels';
  const num_labels = r.int(labelField, id2label ? Object.keys(id2label).length : 2, 0);
  if (id2label && Object.keys(id2label).length !== num_labels) {
    r.fail(labelField, `is ${num_labels} but id2label has ${Object.keys(id2label).length} entries`);
  }
  id2label ??= Object.fromEntries(Array.from({ length: num_labels }, (_, i) => [String(i), `LABEL_${i}`]));

  let pooling: ViTConfig['pooling'];
  if (r.has('pooling')) pooling = r.oneOf('pooling', 'cls', ['cls', 'mean', 'mean_all'] as const);
  else pooling = r.oneOf('global_pool', 'token', ['token', 'avg'] as const) === 'avg' ? 'mean' : 'cls';
  const class_token = r.bool('class_token', true);
  if (pooling === 'cls' && !class_token) r.fail('pooling', "'cls' needs class_token: true");
  if (r.has('num_prefix_tokens')) {
    const n = r.int('num_prefix_tokens', 0, 0);
    if (n !== (class_token ? 1 : 0)) {
      r.fail(
        'num_prefix_tokens',
        `is ${n}; only the class token (1) or none (0) is supported, and class_token is ${class_token}`,
      );
    }
  }
  if (r.has('no_embed_class') && r.raw('no_embed_class') !== false) {
    r.fail('no_embed_class', 'true is not supported (positions must include the class token)');
  }
  const position_embedding = r.oneOf('position_embedding', 'learned', ['learned', 'sinusoidal'] as const);
  if (position_embedding === 'sinusoidal' && hidden_size % 4 !== 0) {
    r.fail('hidden_size', `${hidden_size} must be divisible by 4 for the 2-D sinusoidal position table`);
  }
  // timm: fc_norm defaults to (global_pool == 'avg'), and then the pre-pool norm is absent.
  const fc_norm = r.bool('fc_norm', pooling !== 'cls');
  let final_norm: boolean;
  const fn = r.raw('final_norm');
  if (fn === 'pre_pool') final_norm = true;
  else if (fn === 'none') final_norm = false;
  else final_norm = r.bool('final_norm', !fc_norm);
  let layer_scale: boolean;
  if (r.has('layer_scale')) layer_scale = r.bool('layer_scale', false);
  else layer_scale = r.has('init_values');
  const d = QUIRK_DEFAULTS;
  const attention_scale_dim = r.oneOf('attention_scale_dim', d.attention_scale_dim, [
    'head_dim',
    'hidden_size',
    'num_heads',
  ] as const);
  const attention_scale_at = r.oneOf('attention_scale_at', d.attention_scale_at, [
    'logits',
    'probs',
  ] as const);
  const attention_softmax = r.oneOf('attention_softmax', d.attention_softmax, ['keys', 'queries'] as const);
  const shared_qkv = r.bool('shared_qkv', d.shared_qkv);
  const attention_proj = r.bool('attention_proj', d.attention_proj);
  const shared_block_norm = r.bool('shared_block_norm', d.shared_block_norm);
  const pos_embed_init = r.oneOf('pos_embed_init', d.pos_embed_init, ['normal', 'sincos_1d'] as const);
  if (pos_embed_init !== 'normal' && position_embedding !== 'learned') {
    r.fail('pos_embed_init', `'${pos_embed_init}' needs position_embedding 'learned'`);
  }

  return {
    image_size,
    patch_size,
    num_channels,
    hidden_size,
    num_hidden_layers,
    num_attention_heads,
    intermediate_size,
    hidden_act,
    layer_norm_eps,
    qkv_bias,
    num_labels,
    id2label,
    hidden_dropout_prob,
    attention_probs_dropout_prob,
    pooling,
    class_token,
    position_embedding,
    final_norm,
    fc_norm,
    layer_scale,
    naming,
    attention_scale_dim,
    attention_scale_at,
    attention_softmax,
    shared_qkv,
    attention_proj,
    shared_block_norm,
    pos_embed_init,
  };
}

/**
 * Reasons HF `ViTForImageClassification` cannot represent `cfg` (empty when it can): it always has a
 * class token, learned positions, the pre-pool `layernorm`, token-0 pooling and a classifier.
 */
export function hfIncompatibilities(cfg: ViTConfig): string[] {
  const out: string[] = [];
  if (!cfg.class_token) out.push('class_token is false');
  if (cfg.pooling !== 'cls') out.push(`pooling is '${cfg.pooling}'`);
  if (!cfg.final_norm) out.push('final_norm is false');
  if (cfg.fc_norm) out.push('fc_norm is true');
  if (cfg.layer_scale) out.push('layer_scale is true');
  if (cfg.num_labels < 1) out.push('num_labels is 0 (no classifier)');
  // HF's ViT computes the standard attention and block: every other quirk value is out of its reach.
  for (const [k, v] of Object.entries(quirkFields(cfg))) {
    if (k !== 'pos_embed_init') out.push(`${k} is ${JSON.stringify(v)}`);
  }
  return out;
}

/**
 * A config.json that transformers' `ViTConfig` / `ViTForImageClassification.from_pretrained` loads,
 * with our extra fields kept alongside (transformers stores unknown fields as attributes) so that
 * `parseConfig` reads it back to the same config. Throws if HF cannot represent the model.
 *
 * @example
 * fs.writeFileSync('out/config.json', JSON.stringify(toHFConfigJson(PRESETS.tiny), null, 2));
 */
export function toHFConfigJson(cfg: ViTConfig): Record<string, unknown> {
  const problems = hfIncompatibilities(cfg);
  if (problems.length > 0) {
    throw new CheckpointError(
      `config cannot be saved for HF ViTForImageClassification: ${problems.join('; ')}`,
      {
        rule: 'vit-config',
      },
    );
  }
  const id2label: Record<string, string> = {};
  const label2id: Record<string, number> = {};
  for (let i = 0; i < cfg.num_labels; i++) {
    const name = cfg.id2label[String(i)] ?? `LABEL_${i}`;
    id2label[String(i)] = name;
    label2id[name] = i;
  }
  return {
    architectures: ['ViTForImageClassification'],
    model_type: 'vit',
    attention_probs_dropout_prob: cfg.attention_probs_dropout_prob,
    encoder_stride: cfg.patch_size,
    hidden_act: cfg.hidden_act,
    hidden_dropout_prob: cfg.hidden_dropout_prob,
    hidden_size: cfg.hidden_size,
    id2label,
    image_size: cfg.image_size,
    initializer_range: 0.02,
    intermediate_size: cfg.intermediate_size,
    label2id,
    layer_norm_eps: cfg.layer_norm_eps,
    num_attention_heads: cfg.num_attention_heads,
    num_channels: cfg.num_channels,
    num_hidden_layers: cfg.num_hidden_layers,
    num_labels: cfg.num_labels,
    patch_size: cfg.patch_size,
    qkv_bias: cfg.qkv_bias,
    // einvit extras (ignored by transformers)
    naming: 'hf',
    pooling: cfg.pooling,
    class_token: cfg.class_token,
    num_prefix_tokens: numPrefixTokens(cfg),
    position_embedding: cfg.position_embedding,
    final_norm: cfg.final_norm,
    fc_norm: cfg.fc_norm,
    layer_scale: cfg.layer_scale,
    ...quirkFields(cfg),
  };
}
