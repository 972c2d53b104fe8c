// The three seed tutorials' own checkpoints (test/seed-models/README.md): their config.json (the code's
// constructor arguments plus `source_code`) and their state_dict names, mapped to and from the model's
// timm names through checked tables like the HF / timm ones in weights.ts. Layout changes are einvit
// patterns: per-head query/key/value modules stack with '(qkv h) d e -> (qkv h d) e', the einops
// tutorial's interleaved fused layout is '(h d qkv) e -> (qkv h d) e'.
import { tf } from '../tf.js';
import { pack, rearrange, unpack } from '../ops.js';
import { CheckpointError } from '../errors.js';
import { TUTORIAL_NAMINGS, numTokens, parseConfig, type TutorialNaming, type ViTConfig } from './config.js';
import type { TensorData } from './safetensors.js';

/** `source_code` values of the tutorials' config.json files, and the naming of each. */
export const SOURCE_CODES: Readonly<Record<string, TutorialNaming>> = Object.freeze({
  'seed-000': 'einops-tutorial',
  'seed-001': 'scratch-tutorial',
  'seed-002': 'cifar-tutorial',
});

/**
 * Whether `naming` is one of the tutorials' namings.
 *
 * @example
 * isTutorialNaming('cifar-tutorial'); // true
 */
export function isTutorialNaming(naming: string): naming is TutorialNaming {
  return (TUTORIAL_NAMINGS as readonly string[]).includes(naming);
}

/**
 * One internal parameter in a tutorial's checkpoint: the external keys (one, or several of one shape
 * stacked on a new leading axis) and the rearrange pattern from them to the internal layout.
 */
export interface TutorialRule {
  keys: string[];
  /** Shape of each external tensor. */
  partShape: number[];
  /** From the external (stacked) layout to the internal one; absent when identical. */
  pattern?: string;
  lengths?: Record<string, number>;
}

/** The quirk values each tutorial's code has fixed (its constructor cannot change them). */
const FIXED: Record<TutorialNaming, Partial<ViTConfig>> = {
  'einops-tutorial': {
    hidden_act: 'gelu',
    layer_norm_eps: 1e-5,
    qkv_bias: true,
    pooling: 'mean_all',
    class_token: true,
    position_embedding: 'learned',
    final_norm: false,
    fc_norm: true,
    layer_scale: false,
    attention_scale_dim: 'hidden_size',
    attention_scale_at: 'probs',
    attention_softmax: 'keys',
    shared_qkv: false,
    attention_proj: true,
    shared_block_norm: false,
  },
  'scratch-tutorial': {
    num_channels: 3,
    hidden_act: 'linear',
    layer_norm_eps: 1e-5,
    qkv_bias: true,
    pooling: 'cls',
    class_token: true,
    position_embedding: 'learned',
    final_norm: false,
    fc_norm: false,
    layer_scale: false,
    attention_scale_dim: 'num_heads',
    attention_scale_at: 'logits',
    attention_softmax: 'queries',
    shared_qkv: true,
    attention_proj: false,
    shared_block_norm: true,
  },
  'cifar-tutorial': {
    hidden_act: 'gelu_new',
    layer_norm_eps: 1e-5,
    pooling: 'cls',
    class_token: true,
    position_embedding: 'learned',
    final_norm: false,
    fc_norm: false,
    layer_scale: false,
    attention_scale_dim: 'head_dim',
    attention_scale_at: 'logits',
    attention_softmax: 'keys',
    shared_qkv: false,
    attention_proj: true,
    shared_block_norm: false,
  },
};

/**
 * Reasons the tutorial's code cannot compute `cfg` (empty when it can): each fixed quirk that differs,
 * and the sizes its constructor cannot express.
 *
 * @example
 * tutorialIncompatibilities(PRESETS['cifar-tutorial'], 'cifar-tutorial'); // []
 */
export function tutorialIncompatibilities(cfg: ViTConfig, naming: TutorialNaming): string[] {
  const out: string[] = [];
  for (const [k, v] of Object.entries(FIXED[naming])) {
    const mine = cfg[k as keyof ViTConfig];
    if (mine !== v) out.push(`${k} is ${JSON.stringify(mine)}, the tutorial's code has ${JSON.stringify(v)}`);
  }
  if (naming !== 'cifar-tutorial' && cfg.intermediate_size !== 4 * cfg.hidden_size) {
    out.push(`intermediate_size ${cfg.intermediate_size} is not 4 x hidden_size ${cfg.hidden_size}`);
  }
  if (cfg.num_labels < 1) out.push('num_labels is 0 (the tutorials always have a classifier)');
  return out;
}

/** Reads the constructor arguments of one tutorial's config.json; errors name the field. */
class Args {
  constructor(
    readonly src: Record<string, unknown>,
    readonly where: string,
  ) {}

  fail(field: string, message: string): never {
    throw new CheckpointError(`config ${this.where}: ${field} ${message}`, { rule: 'vit-config' });
  }

  int(field: string, dflt?: number, min = 1): number {
    const v = this.src[field] ?? dflt;
    if (v === undefined) this.fail(field, 'is required');
    if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < min)
      this.fail(field, `must be an integer >= ${min}, got ${JSON.stringify(v)}`);
    return v;
  }

  prob(field: string): number {
    const v = this.src[field] ?? 0;
    if (typeof v !== 'number' || !(v >= 0 && v < 1))
      this.fail(field, `must be a probability in [0, 1), got ${JSON.stringify(v)}`);
    return v;
  }

  bool(field: string, dflt: boolean): boolean {
    const v = this.src[field] ?? dflt;
    if (typeof v !== 'boolean') this.fail(field, `must be true or false, got ${JSON.stringify(v)}`);
    return v;
  }
}

/** Each tutorial's constructor argument behind a config field, to name it in errors. */
const ARG_NAME: Record<
  TutorialNaming,
  Record<'hidden_size' | 'num_channels' | 'num_labels' | 'image_size' | 'num_attention_heads', string>
> = {
  'einops-tutorial': {
    hidden_size: 'emb_size',
    num_channels: 'in_channels',
    num_labels: 'n_classes',
    image_size: 'img_size',
    num_attention_heads: 'num_heads',
  },
  'scratch-tutorial': {
    hidden_size: 'emb_size',
    num_channels: 'in_channels (fixed 3)',
    num_labels: 'num_class',
    image_size: 'img_size',
    num_attention_heads: 'num_head',
  },
  'cifar-tutorial': {
    hidden_size: 'hidden_size',
    num_channels: 'num_channels',
    num_labels: 'num_classes',
    image_size: 'image_size',
    num_attention_heads: 'num_attention_heads',
  },
};

/**
 * The config of a tutorial checkpoint from its constructor arguments (the code's own defaults fill the
 * absent ones). `id2label`, when present (einvit writes it), names the classes.
 *
 * @example
 * tutorialConfig('einops-tutorial', { emb_size: 64, depth: 2, n_classes: 10, img_size: 32, patch_size: 8, num_heads: 4 });
 */
export function tutorialConfig(
  naming: TutorialNaming,
  args: Record<string, unknown>,
  where = '<config>',
): ViTConfig {
  const a = new Args(args, where);
  let fields: Record<string, unknown>;
  if (naming === 'einops-tutorial') {
    const e = a.int('emb_size', 768);
    fields = {
      num_channels: a.int('in_channels', 3),
      patch_size: a.int('patch_size', 16),
      hidden_size: e,
      image_size: a.int('img_size', 224),
      num_hidden_layers: a.int('depth', 12),
      num_labels: a.int('n_classes', 1000),
      num_attention_heads: a.int('num_heads', 8),
      intermediate_size: a.int('forward_expansion', 4) * e,
    };
  } else if (naming === 'scratch-tutorial') {
    const e = a.int('emb_size');
    fields = {
      num_hidden_layers: a.int('num_layers'),
      image_size: a.int('img_size'),
      hidden_size: e,
      patch_size: a.int('patch_size'),
      num_attention_heads: a.int('num_head'),
      num_labels: a.int('num_class'),
      intermediate_size: 4 * e,
      pos_embed_init: 'sincos_1d',
    };
  } else {
    fields = {
      patch_size: a.int('patch_size'),
      hidden_size: a.int('hidden_size'),
      num_hidden_layers: a.int('num_hidden_layers'),
      num_attention_heads: a.int('num_attention_heads'),
      intermediate_size: a.int('intermediate_size'),
      hidden_dropout_prob: a.prob('hidden_dropout_prob'),
      attention_probs_dropout_prob: a.prob('attention_probs_dropout_prob'),
      image_size: a.int('image_size'),
      num_labels: a.int('num_classes'),
      num_channels: a.int('num_channels', 3),
      qkv_bias: a.bool('qkv_bias', true),
    };
  }
  const names = ARG_NAME[naming];
  const hidden = fields.hidden_size as number;
  const heads = fields.num_attention_heads as number;
  if (hidden % heads !== 0) {
    a.fail(names.hidden_size, `${hidden} is not divisible by ${names.num_attention_heads} ${heads}`);
  }
  const img = fields.image_size as number;
  const patch = fields.patch_size as number;
  if (img % patch !== 0) a.fail(names.image_size, `${img} is not divisible by patch_size ${patch}`);
  const id2label = args.id2label;
  return parseConfig(
    {
      ...FIXED[naming],
      ...fields,
      ...(id2label !== undefined ? { id2label } : {}),
      naming,
    },
    where,
  );
}

/**
 * The constructor arguments (and `source_code`) of the tutorial's code for `cfg`: the config.json that
 * {@link tutorialConfig} reads back, plus `id2label`. Throws when the tutorial cannot compute `cfg`.
 *
 * @example
 * tutorialArgs(PRESETS['cifar-tutorial'], 'cifar-tutorial').hidden_size; // 48
 */
export function tutorialArgs(cfg: ViTConfig, naming: TutorialNaming): Record<string, unknown> {
  const problems = tutorialIncompatibilities(cfg, naming);
  if (problems.length > 0) {
    throw new CheckpointError(`the ${naming} code cannot hold this model: ${problems.join('; ')}`, {
      rule: 'checkpoint-naming',
    });
  }
  const source_code = Object.keys(SOURCE_CODES).find((k) => SOURCE_CODES[k] === naming)!;
  let args: Record<string, unknown>;
  if (naming === 'einops-tutorial') {
    args = {
      in_channels: cfg.num_channels,
      patch_size: cfg.patch_size,
      emb_size: cfg.hidden_size,
      img_size: cfg.image_size,
      depth: cfg.num_hidden_layers,
      n_classes: cfg.num_labels,
      num_heads: cfg.num_attention_heads,
    };
  } else if (naming === 'scratch-tutorial') {
    args = {
      num_layers: cfg.num_hidden_layers,
      img_size: cfg.image_size,
      emb_size: cfg.hidden_size,
      patch_size: cfg.patch_size,
      num_head: cfg.num_attention_heads,
      num_class: cfg.num_labels,
    };
  } else {
    args = {
      patch_size: cfg.patch_size,
      hidden_size: cfg.hidden_size,
      num_hidden_layers: cfg.num_hidden_layers,
      num_attention_heads: cfg.num_attention_heads,
      intermediate_size: cfg.intermediate_size,
      hidden_dropout_prob: cfg.hidden_dropout_prob,
      attention_probs_dropout_prob: cfg.attention_probs_dropout_prob,
      initializer_range: 0.02,
      image_size: cfg.image_size,
      num_classes: cfg.num_labels,
      num_channels: cfg.num_channels,
      qkv_bias: cfg.qkv_bias,
    };
  }
  return { source_code, ...args, id2label: { ...cfg.id2label } };
}

/**
 * The tutorial naming a config.json declares with `source_code` (undefined without the field). An unknown
 * value is a CheckpointError naming the field, the value and the known ones.
 *
 * @example
 * tutorialFromSource({ source_code: 'seed-002' }, 'config.json'); // 'cifar-tutorial'
 */
export function tutorialFromSource(json: unknown, where: string): TutorialNaming | undefined {
  if (typeof json !== 'object' || json === null || !('source_code' in json)) return undefined;
  const code = (json as Record<string, unknown>).source_code;
  if (typeof code === 'string' && Object.hasOwn(SOURCE_CODES, code)) return SOURCE_CODES[code];
  throw new CheckpointError(
    `config ${where}: source_code ${JSON.stringify(code)} is not a known tutorial (known: ${Object.keys(SOURCE_CODES).join(', ')})`,
    { rule: 'vit-config' },
  );
}

/**
 * The tutorial whose state_dict names `keys` are, or undefined: `0.cls_token` / `1.{i}.0.fn.*` (einops
 * tutorial), `patchemb.*` / `attention.{i}.att.*` (from scratch), `embedding.patch_embeddings.*` /
 * `encoder.blocks.{i}.*` (CIFAR).
 *
 * @example
 * detectTutorial(['patchemb.cls_token', 'ff.weight']); // 'scratch-tutorial'
 */
export function detectTutorial(keys: Iterable<string>): TutorialNaming | undefined {
  const all = [...keys];
  const any = (re: RegExp) => all.some((k) => re.test(k));
  if (any(/^0\.(cls_token|positions|projection\.0\.)|^1\.\d+\.[01]\.fn\./)) return 'einops-tutorial';
  if (any(/^patchemb\.|^attention\.\d+\.(att|ll|ff)\./)) return 'scratch-tutorial';
  if (any(/^embedding\.(patch_embeddings|cls_token|position_embeddings)|^encoder\.blocks\.\d+\./))
    return 'cifar-tutorial';
  return undefined;
}

const BLOCK_RE = /^blocks\.(\d+)\.(.+)$/;

/**
 * Where internal parameter `name` lives in `naming`'s checkpoints for `cfg` (undefined: the tutorial has
 * no such parameter).
 *
 * @example
 * tutorialRule('blocks.0.attn.qkv.weight', 'einops-tutorial', cfg)?.pattern; // '(h d qkv) e -> (qkv h d) e'
 */
export function tutorialRule(name: string, naming: TutorialNaming, cfg: ViTConfig): TutorialRule | undefined {
  const D = cfg.hidden_size;
  const M = cfg.intermediate_size;
  const h = cfg.num_attention_heads;
  const T = numTokens(cfg);
  const p = cfg.patch_size;
  const one = (key: string, partShape: number[], pattern?: string, lengths?: Record<string, number>) => ({
    keys: [key],
    partShape,
    pattern,
    lengths,
  });
  const linear = (prefix: string, kind: string, shape: number[]) => one(`${prefix}.${kind}`, shape);
  const m = BLOCK_RE.exec(name);
  const kind = name.endsWith('.bias') ? 'bias' : 'weight';
  if (naming === 'einops-tutorial') {
    const top: Record<string, TutorialRule> = {
      cls_token: one('0.cls_token', [1, 1, D]),
      pos_embed: one('0.positions', [T, D], 'n e -> 1 n e'),
      'patch_embed.proj.weight': one('0.projection.0.weight', [D, cfg.num_channels, p, p]),
      'patch_embed.proj.bias': one('0.projection.0.bias', [D]),
      'fc_norm.weight': one('2.1.weight', [D]),
      'fc_norm.bias': one('2.1.bias', [D]),
      'head.weight': one('2.2.weight', [cfg.num_labels, D]),
      'head.bias': one('2.2.bias', [cfg.num_labels]),
    };
    if (!m) return top[name];
    const [, i, rest] = m;
    const at = `1.${i}.0.fn.`; // ResidualAdd(LayerNorm, MultiHeadAttention, Dropout)
    const ff = `1.${i}.1.fn.`; // ResidualAdd(LayerNorm, FeedForwardBlock, Dropout)
    const block: Record<string, TutorialRule> = {
      'norm1.weight': one(`${at}0.weight`, [D]),
      'norm1.bias': one(`${at}0.bias`, [D]),
      // rearrange(qkv(x), 'b n (h d qkv) -> (qkv) b h n d'): q, k, v interleaved innermost.
      'attn.qkv.weight': one(`${at}1.qkv.weight`, [3 * D, D], '(h d qkv) e -> (qkv h d) e', { h, qkv: 3 }),
      'attn.qkv.bias': one(`${at}1.qkv.bias`, [3 * D], '(h d qkv) -> (qkv h d)', { h, qkv: 3 }),
      'attn.proj.weight': one(`${at}1.projection.weight`, [D, D]),
      'attn.proj.bias': one(`${at}1.projection.bias`, [D]),
      'norm2.weight': one(`${ff}0.weight`, [D]),
      'norm2.bias': one(`${ff}0.bias`, [D]),
      'mlp.fc1.weight': one(`${ff}1.0.weight`, [M, D]),
      'mlp.fc1.bias': one(`${ff}1.0.bias`, [M]),
      'mlp.fc2.weight': one(`${ff}1.3.weight`, [D, M]),
      'mlp.fc2.bias': one(`${ff}1.3.bias`, [D]),
    };
    return block[rest];
  }
  if (naming === 'scratch-tutorial') {
    const top: Record<string, TutorialRule> = {
      cls_token: one('patchemb.cls_token', [1, 1, D]),
      pos_embed: one('patchemb.pos_embed', [T, D], 'n e -> 1 n e'),
      'patch_embed.proj.weight': one('patchemb.projection.0.weight', [D, cfg.num_channels, p, p]),
      'patch_embed.proj.bias': one('patchemb.projection.0.bias', [D]),
      'head.weight': one('ff.weight', [cfg.num_labels, D]),
      'head.bias': one('ff.bias', [cfg.num_labels]),
    };
    if (!m) return top[name];
    const [, i, rest] = m;
    const b = `attention.${i}.`;
    if (rest === 'attn.qkv.weight' || rest === 'attn.qkv.bias') {
      // Three [D, D] layers; the forward pass uses `key` for all of q, k and v (shared_qkv).
      return {
        keys: ['query', 'key', 'value'].map((n) => `${b}att.${n}.${kind}`),
        partShape: kind === 'weight' ? [D, D] : [D],
        pattern: kind === 'weight' ? 'qkv o e -> (qkv o) e' : 'qkv o -> (qkv o)',
        lengths: { qkv: 3 },
      };
    }
    const block: Record<string, TutorialRule> = {
      'norm1.weight': one(`${b}ll.weight`, [D]),
      'norm1.bias': one(`${b}ll.bias`, [D]),
      'mlp.fc1.weight': one(`${b}ff.ff.0.weight`, [M, D]),
      'mlp.fc1.bias': one(`${b}ff.ff.0.bias`, [M]),
      'mlp.fc2.weight': one(`${b}ff.ff.1.weight`, [D, M]),
      'mlp.fc2.bias': one(`${b}ff.ff.1.bias`, [D]),
    };
    return block[rest];
  }
  const top: Record<string, TutorialRule> = {
    cls_token: one('embedding.cls_token', [1, 1, D]),
    pos_embed: one('embedding.position_embeddings', [1, T, D]),
    'patch_embed.proj.weight': one('embedding.patch_embeddings.projection.weight', [
      D,
      cfg.num_channels,
      p,
      p,
    ]),
    'patch_embed.proj.bias': one('embedding.patch_embeddings.projection.bias', [D]),
    'head.weight': one('classifier.weight', [cfg.num_labels, D]),
    'head.bias': one('classifier.bias', [cfg.num_labels]),
  };
  if (!m) return top[name];
  const [, i, rest] = m;
  const b = `encoder.blocks.${i}.`;
  if (rest === 'attn.qkv.weight' || rest === 'attn.qkv.bias') {
    // One AttentionHead module per head: heads.{j}.query/key/value, each [head_dim, D].
    const d = D / h;
    const keys = ['query', 'key', 'value'].flatMap((n) =>
      Array.from({ length: h }, (_, j) => `${b}attention.heads.${j}.${n}.${kind}`),
    );
    return kind === 'weight'
      ? { keys, partShape: [d, D], pattern: '(qkv h) d e -> (qkv h d) e', lengths: { qkv: 3, h } }
      : { keys, partShape: [d], pattern: '(qkv h) d -> (qkv h d)', lengths: { qkv: 3, h } };
  }
  const block: Record<string, TutorialRule> = {
    'norm1.weight': linear(`${b}layernorm_1`, 'weight', [D]),
    'norm1.bias': linear(`${b}layernorm_1`, 'bias', [D]),
    'attn.proj.weight': linear(`${b}attention.output_projection`, 'weight', [D, D]),
    'attn.proj.bias': linear(`${b}attention.output_projection`, 'bias', [D]),
    'norm2.weight': linear(`${b}layernorm_2`, 'weight', [D]),
    'norm2.bias': linear(`${b}layernorm_2`, 'bias', [D]),
    'mlp.fc1.weight': linear(`${b}mlp.dense_1`, 'weight', [M, D]),
    'mlp.fc1.bias': linear(`${b}mlp.dense_1`, 'bias', [M]),
    'mlp.fc2.weight': linear(`${b}mlp.dense_2`, 'weight', [D, M]),
    'mlp.fc2.bias': linear(`${b}mlp.dense_2`, 'bias', [D]),
  };
  return block[rest];
}

const axes = (rank: number) => Array.from({ length: rank }, (_, i) => `a${i}`).join(' ');

/** `pattern` read right to left (rearrange patterns are invertible given the same lengths). */
function reversed(pattern: string): string {
  const [lhs, rhs] = pattern.split('->');
  return `${rhs.trim()} -> ${lhs.trim()}`;
}

/**
 * The internal tensor of one rule from its external parts (stacked on a new leading axis when several).
 *
 * @example
 * const qkv = tutorialToInternal(rule, rule.keys.map((k) => file.readFloat32(k)));
 */
export function tutorialToInternal(rule: TutorialRule, parts: Float32Array[]): TensorData {
  return tf.tidy(() => {
    const xs = parts.map((d) => tf.tensor(d, rule.partShape, 'float32'));
    const x = xs.length === 1 ? xs[0] : pack(xs, `* ${axes(rule.partShape.length)}`)[0];
    const y = rule.pattern ? rearrange(x, rule.pattern, rule.lengths) : x;
    return { shape: [...y.shape], data: y.dataSync() as Float32Array };
  });
}

/**
 * The external tensors of one rule from the internal one (the inverse of {@link tutorialToInternal}).
 *
 * @example
 * const [q, k, v] = tutorialFromInternal(rule, params.get('blocks.0.attn.qkv.weight')!);
 */
export function tutorialFromInternal(rule: TutorialRule, t: TensorData): TensorData[] {
  return tf.tidy(() => {
    const x = tf.tensor(t.data, [...t.shape], 'float32');
    const y = rule.pattern ? rearrange(x, reversed(rule.pattern), rule.lengths) : x;
    const parts =
      rule.keys.length === 1
        ? [y]
        : unpack(
            y,
            rule.keys.map(() => []),
            `* ${axes(rule.partShape.length)}`,
          );
    return parts.map((p) => ({ shape: [...p.shape], data: p.dataSync() as Float32Array }));
  });
}

/**
 * Checks the constructor arguments against the weights they come with (the sizes the weights reveal),
 * before the key-by-key check: one CheckpointError naming each field with both values.
 *
 * @example
 * checkArgsAgainstWeights('einops-tutorial', cfg, (k) => file.has(k) ? file.info(k).shape : undefined, 'config.json');
 */
export function checkArgsAgainstWeights(
  naming: TutorialNaming,
  cfg: ViTConfig,
  shapeOf: (key: string) => number[] | undefined,
  where: string,
): void {
  const conv = tutorialRule('patch_embed.proj.weight', naming, cfg)!.keys[0];
  const head = tutorialRule('head.weight', naming, cfg)!.keys[0];
  const pos = tutorialRule('pos_embed', naming, cfg)!.keys[0];
  const arg = ARG_NAME[naming];
  const checks: [string, number, string, number | undefined, string][] = [];
  const cs = shapeOf(conv);
  if (cs && cs.length === 4) {
    checks.push([arg.hidden_size, cfg.hidden_size, conv, cs[0], 'output channels']);
    checks.push(['patch_size', cfg.patch_size, conv, cs[2], 'kernel size']);
    checks.push([arg.num_channels, cfg.num_channels, conv, cs[1], 'input channels']);
  }
  const hs = shapeOf(head);
  if (hs && hs.length === 2) {
    checks.push([arg.num_labels, cfg.num_labels, head, hs[0], 'rows']);
  }
  const ps = shapeOf(pos);
  if (ps && ps.length >= 2) {
    checks.push([
      `${arg.image_size} / patch_size`,
      numTokens(cfg),
      pos,
      ps[ps.length - 2],
      'positions (tokens incl. the class token)',
    ]);
  }
  const problems = checks
    .filter(([, mine, , theirs]) => theirs !== undefined && mine !== theirs)
    .map(([field, mine, key, theirs, what]) =>
      field.includes('/')
        ? `${field} gives ${mine} tokens but ${key} has ${theirs} ${what}`
        : `${field} is ${mine} but ${key} has ${theirs} ${what}`,
    );
  if (problems.length > 0) {
    throw new CheckpointError(
      `config ${where}: the constructor arguments do not fit the weights (${naming}): ${problems.join('; ')}`,
      { rule: 'checkpoint-mismatch' },
    );
  }
}

/**
 * The 1-D sine/cosine table `[T, D]` of the from-scratch tutorial (its `pos_embed` before training): for
 * position i and channel j, `sin(i / 10000^(j/D))` for even j, `cos(i / 10000^((j-1)/D))` for odd j.
 *
 * @example
 * sincos1d(17, 64)[1 * 64 + 0]; // sin(1)
 */
export function sincos1d(tokens: number, dim: number): Float32Array {
  const out = new Float32Array(tokens * dim);
  for (let i = 0; i < tokens; i++) {
    for (let j = 0; j < dim; j++) {
      const even = j % 2 === 0;
      const angle = i / 10000 ** ((even ? j : j - 1) / dim);
      out[i * dim + j] = even ? Math.sin(angle) : Math.cos(angle);
    }
  }
  return out;
}

/**
 * The tutorials' published training recipes, in the fields of the trainer's `TrainingRecipe`;
 * `pctStart: 0` means no schedule (a constant learning rate). CIFAR tutorial: AdamW at lr 0.01 (weight
 * decay 0.01), batch 256, 100 epochs, no warm-up or decay, no label smoothing or clipping; its data
 * loader flips images horizontally.
 */
export const TUTORIAL_RECIPES = Object.freeze({
  'cifar-tutorial': Object.freeze({
    epochs: 100,
    batchSize: 256,
    lr: 0.01,
    weightDecay: 0.01,
    labelSmoothing: 0,
    clip: 0,
    shift: 0,
    flip: true,
    pctStart: 0,
  }),
});
