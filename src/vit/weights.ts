// Checkpoint converters, kept beside the model rather than inside it. The model's parameter names and
// layouts are timm's state_dict (cls_token, pos_embed, blocks.{i}.attn.qkv.weight [3D, D], ...); the
// tables below map each internal name to the names of one other library, explicitly and checked.
//
// Harmless keys skipped on load (documented, never silently dropped otherwise):
//  - HF ViTModel's `pooler.dense.*` (also `vit.pooler.dense.*`): a tanh pooler ViTForImageClassification
//    does not use;
//  - the position table (`pos_embed` and its other names) when the config says position_embedding
//    'sinusoidal': the model computes that table itself (see sinusoidalPosEmbed);
//  - the classifier (`head.*`, `classifier.*`, `heads.head.*`) when `ignoreHead` is set.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { EinopsError } from '../errors.js';
import { type SafetensorsFile, type TensorData, openSafetensors, writeSafetensors } from './safetensors.js';
import { type ViTConfig, gridSize, hfIncompatibilities, numTokens, toHFConfigJson } from './config.js';

export type { TensorData } from './safetensors.js';

/** Key naming schemes of checkpoints this module reads. */
export type Naming = 'hf' | 'hf-base' | 'timm' | 'torchvision';

const FLOAT_DTYPES = new Set(['F32', 'F16', 'BF16', 'F64']);

/**
 * Internal (timm) parameter names and shapes for `cfg`, in a stable order.
 * Absent by config: pos_embed when position_embedding is 'sinusoidal'; cls_token without a class token;
 * qkv bias when qkv_bias is false; ls1/ls2 without layer_scale; norm without final_norm; fc_norm without
 * fc_norm; head when num_labels is 0.
 *
 * @example
 * expectedParameters(PRESETS.tiny).get('blocks.0.attn.qkv.weight'); // [288, 96]
 */
export function expectedParameters(cfg: ViTConfig): Map<string, number[]> {
  const D = cfg.hidden_size;
  const M = cfg.intermediate_size;
  const p = new Map<string, number[]>();
  if (cfg.class_token) p.set('cls_token', [1, 1, D]);
  if (cfg.position_embedding === 'learned') p.set('pos_embed', [1, numTokens(cfg), D]);
  p.set('patch_embed.proj.weight', [D, cfg.num_channels, cfg.patch_size, cfg.patch_size]);
  p.set('patch_embed.proj.bias', [D]);
  for (let i = 0; i < cfg.num_hidden_layers; i++) {
    const b = `blocks.${i}.`;
    p.set(`${b}norm1.weight`, [D]);
    p.set(`${b}norm1.bias`, [D]);
    p.set(`${b}attn.qkv.weight`, [3 * D, D]);
    if (cfg.qkv_bias) p.set(`${b}attn.qkv.bias`, [3 * D]);
    p.set(`${b}attn.proj.weight`, [D, D]);
    p.set(`${b}attn.proj.bias`, [D]);
    if (cfg.layer_scale) p.set(`${b}ls1.gamma`, [D]);
    p.set(`${b}norm2.weight`, [D]);
    p.set(`${b}norm2.bias`, [D]);
    p.set(`${b}mlp.fc1.weight`, [M, D]);
    p.set(`${b}mlp.fc1.bias`, [M]);
    p.set(`${b}mlp.fc2.weight`, [D, M]);
    p.set(`${b}mlp.fc2.bias`, [D]);
    if (cfg.layer_scale) p.set(`${b}ls2.gamma`, [D]);
  }
  if (cfg.final_norm) {
    p.set('norm.weight', [D]);
    p.set('norm.bias', [D]);
  }
  if (cfg.fc_norm) {
    p.set('fc_norm.weight', [D]);
    p.set('fc_norm.bias', [D]);
  }
  if (cfg.num_labels > 0) {
    p.set('head.weight', [cfg.num_labels, D]);
    p.set('head.bias', [cfg.num_labels]);
  }
  return p;
}

/** Per-block internal suffix -> HF suffix under `encoder.layer.{i}.`; qkv maps to three tensors. */
const HF_BLOCK: Record<string, string | [string, string, string]> = {
  'norm1.weight': 'layernorm_before.weight',
  'norm1.bias': 'layernorm_before.bias',
  'attn.qkv.weight': [
    'attention.attention.query.weight',
    'attention.attention.key.weight',
    'attention.attention.value.weight',
  ],
  'attn.qkv.bias': [
    'attention.attention.query.bias',
    'attention.attention.key.bias',
    'attention.attention.value.bias',
  ],
  'attn.proj.weight': 'attention.output.dense.weight',
  'attn.proj.bias': 'attention.output.dense.bias',
  'norm2.weight': 'layernorm_after.weight',
  'norm2.bias': 'layernorm_after.bias',
  'mlp.fc1.weight': 'intermediate.dense.weight',
  'mlp.fc1.bias': 'intermediate.dense.bias',
  'mlp.fc2.weight': 'output.dense.weight',
  'mlp.fc2.bias': 'output.dense.bias',
};

/** Top-level internal name -> HF name without the `vit.` prefix (the classifier sits outside `vit.`). */
const HF_TOP: Record<string, string> = {
  cls_token: 'embeddings.cls_token',
  pos_embed: 'embeddings.position_embeddings',
  'patch_embed.proj.weight': 'embeddings.patch_embeddings.projection.weight',
  'patch_embed.proj.bias': 'embeddings.patch_embeddings.projection.bias',
  'norm.weight': 'layernorm.weight',
  'norm.bias': 'layernorm.bias',
};
const HF_HEAD: Record<string, string> = {
  'head.weight': 'classifier.weight',
  'head.bias': 'classifier.bias',
};

/** torchvision VisionTransformer names (fused in_proj has timm's qkv layout). */
const TV_BLOCK: Record<string, string> = {
  'norm1.weight': 'ln_1.weight',
  'norm1.bias': 'ln_1.bias',
  'attn.qkv.weight': 'self_attention.in_proj_weight',
  'attn.qkv.bias': 'self_attention.in_proj_bias',
  'attn.proj.weight': 'self_attention.out_proj.weight',
  'attn.proj.bias': 'self_attention.out_proj.bias',
  'norm2.weight': 'ln_2.weight',
  'norm2.bias': 'ln_2.bias',
  'mlp.fc1.weight': 'mlp.0.weight',
  'mlp.fc1.bias': 'mlp.0.bias',
  'mlp.fc2.weight': 'mlp.3.weight',
  'mlp.fc2.bias': 'mlp.3.bias',
};
const TV_TOP: Record<string, string> = {
  cls_token: 'class_token',
  pos_embed: 'encoder.pos_embedding',
  'patch_embed.proj.weight': 'conv_proj.weight',
  'patch_embed.proj.bias': 'conv_proj.bias',
  'norm.weight': 'encoder.ln.weight',
  'norm.bias': 'encoder.ln.bias',
  'head.weight': 'heads.head.weight',
  'head.bias': 'heads.head.bias',
};

const BLOCK_RE = /^blocks\.(\d+)\.(.+)$/;

/**
 * Names of the tensors that hold internal parameter `name` under `naming`: one name, or three
 * (query, key, value) whose rows concatenate to the internal tensor. Undefined when that library has
 * no such parameter (e.g. HF has no LayerScale or fc_norm).
 */
export function externalNames(name: string, naming: Naming): string[] | undefined {
  if (naming === 'timm') return [name];
  const m = BLOCK_RE.exec(name);
  if (naming === 'torchvision') {
    const t = m ? TV_BLOCK[m[2]] : TV_TOP[name];
    if (t === undefined) return undefined;
    return [m ? `encoder.layers.encoder_layer_${m[1]}.${t}` : t];
  }
  const prefix = naming === 'hf' ? 'vit.' : '';
  if (m) {
    const t = HF_BLOCK[m[2]];
    if (t === undefined) return undefined;
    const base = `${prefix}encoder.layer.${m[1]}.`;
    return typeof t === 'string' ? [base + t] : t.map((s) => base + s);
  }
  if (name in HF_TOP) return [prefix + HF_TOP[name]];
  if (name in HF_HEAD) return [HF_HEAD[name]];
  return undefined;
}

const HEAD_INTERNAL = new Set(['head.weight', 'head.bias']);

/** External keys that may sit in a file of `naming` without a counterpart, and why. */
function skippable(key: string, naming: Naming, cfg: ViTConfig, ignoreHead: boolean): boolean {
  if ((naming === 'hf' || naming === 'hf-base') && /^(vit\.)?pooler\.dense\.(weight|bias)$/.test(key))
    return true;
  if (cfg.position_embedding === 'sinusoidal' && externalNames('pos_embed', naming)?.includes(key))
    return true;
  if (ignoreHead) {
    if (naming === 'hf' || naming === 'hf-base') return /^classifier\.(weight|bias)$/.test(key);
    return [...HEAD_INTERNAL].some((h) => externalNames(h, naming)?.includes(key));
  }
  return false;
}

/**
 * Which library's names a checkpoint uses: 'hf' (ViTForImageClassification, keys under `vit.`),
 * 'hf-base' (ViTModel: `embeddings.*`, `encoder.layer.*`, maybe `pooler.*`), 'timm' (`blocks.*`,
 * `patch_embed.*`) or 'torchvision' (`conv_proj.*`, `encoder.layers.*`).
 *
 * @example
 * detectNaming(openSafetensors('model.safetensors').keys()); // 'hf'
 */
export function detectNaming(keys: Iterable<string>): Naming {
  const all = [...keys];
  const any = (re: RegExp) => all.some((k) => re.test(k));
  if (any(/^vit\.(embeddings|encoder)\./)) return 'hf';
  if (any(/^(embeddings\.|encoder\.layer\.\d)/)) return 'hf-base';
  if (any(/^(blocks\.\d|patch_embed\.)/)) return 'timm';
  if (any(/^(conv_proj\.|encoder\.layers\.encoder_layer_|class_token$)/)) return 'torchvision';
  const shown = all.slice(0, 5).join(', ');
  throw new EinopsError(
    `cannot tell the checkpoint naming (HF, timm or torchvision ViT) from its ${all.length} keys: ${shown}${all.length > 5 ? ', ...' : ''}`,
    { rule: 'checkpoint-naming' },
  );
}

/** What the converters read from: a safetensors file or an in-memory map. */
interface KeySource {
  name: string;
  keys(): string[];
  info(key: string): { dtype: string; shape: number[] } | undefined;
  read(key: string): Float32Array;
}

function fileKeySource(file: SafetensorsFile): KeySource {
  return {
    name: file.name,
    keys: () => file.keys(),
    info: (key) => (file.has(key) ? file.info(key) : undefined),
    read: (key) => file.readFloat32(key),
  };
}

function mapKeySource(name: string, params: Map<string, TensorData>): KeySource {
  const bad: string[] = [];
  for (const [key, t] of params) {
    const ok =
      t !== null &&
      typeof t === 'object' &&
      Array.isArray(t.shape) &&
      t.shape.every((d) => Number.isSafeInteger(d) && d >= 0) &&
      t.data instanceof Float32Array &&
      t.data.length === t.shape.reduce((a, d) => a * d, 1);
    if (!ok) bad.push(`  ${key}: not a { shape, data: Float32Array } with data.length = product of shape`);
  }
  if (bad.length > 0)
    throw new EinopsError(`${name}: ${bad.length} malformed tensors\n${bad.join('\n')}`, {
      rule: 'tensor-data',
    });
  return {
    name,
    keys: () => [...params.keys()],
    info: (key) => {
      const t = params.get(key);
      return t === undefined ? undefined : { dtype: 'F32', shape: t.shape };
    },
    read: (key) => params.get(key)!.data,
  };
}

const fmt = (shape: readonly number[]) => `[${shape.join(', ')}]`;
const sameShape = (a: readonly number[], b: readonly number[]) =>
  a.length === b.length && a.every((d, i) => d === b[i]);

/** Problems listed in a checkpoint-mismatch error; the count of the others follows them. */
const MAX_LISTED_PROBLEMS = 20;

/** Checks every key and shape first, then reads; all problems go into one error. */
function convertIn(
  src: KeySource,
  naming: Naming,
  cfg: ViTConfig,
  ignoreHead: boolean,
): Map<string, TensorData> {
  const expected = expectedParameters(cfg);
  const problems: string[] = [];
  const hints = new Set<string>();
  const used = new Set<string>();
  const plan: [string, number[], string[]][] = [];
  for (const [name, shape] of expected) {
    if (ignoreHead && HEAD_INTERNAL.has(name)) continue;
    const ext = externalNames(name, naming);
    if (ext === undefined) {
      problems.push(
        `  unsupported ${name}: the config needs it but ${naming} checkpoints have no such parameter`,
      );
      continue;
    }
    // Three sources split the internal rows evenly (HF query/key/value).
    const partShape = ext.length === 1 ? shape : [shape[0] / ext.length, ...shape.slice(1)];
    let ok = true;
    for (const key of ext) {
      used.add(key);
      const info = src.info(key);
      const label = key === name ? key : `${key} (for ${name})`;
      if (info === undefined) {
        problems.push(`  missing     ${label}: expected ${fmt(partShape)}`);
        if (HEAD_INTERNAL.has(name) && naming === 'hf-base') {
          hints.add('HF ViTModel checkpoints carry no classifier: load with { ignoreHead: true }');
        }
        ok = false;
      } else if (!sameShape(info.shape, partShape)) {
        problems.push(`  wrong shape ${label}: expected ${fmt(partShape)}, got ${fmt(info.shape)}`);
        if (HEAD_INTERNAL.has(name))
          hints.add('to fine-tune with another class count, load with { ignoreHead: true }');
        ok = false;
      } else if (!FLOAT_DTYPES.has(info.dtype)) {
        problems.push(`  wrong dtype ${label}: ${info.dtype} is not a float type (F32, F16, BF16, F64)`);
        ok = false;
      }
    }
    if (ok) plan.push([name, shape, ext]);
  }
  for (const key of src.keys()) {
    if (used.has(key) || skippable(key, naming, cfg, ignoreHead)) continue;
    const info = src.info(key)!;
    problems.push(`  unexpected  ${key}: got ${fmt(info.shape)} ${info.dtype}`);
  }
  if (problems.length > 0) {
    const lines = [
      `checkpoint ${src.name} (${naming} names) does not fit the config: ${problems.length} problem${problems.length > 1 ? 's' : ''}`,
      // A hostile file may have a hundred thousand keys: list the first few, count the rest.
      ...problems.slice(0, MAX_LISTED_PROBLEMS),
      ...(problems.length > MAX_LISTED_PROBLEMS
        ? [`  ... and ${problems.length - MAX_LISTED_PROBLEMS} more`]
        : []),
      ...[...hints].map((h) => `  hint: ${h}`),
    ];
    throw new EinopsError(lines.join('\n'), { rule: 'checkpoint-mismatch' });
  }
  const out = new Map<string, TensorData>();
  for (const [name, shape, ext] of plan) {
    if (ext.length === 1) {
      out.set(name, { shape: [...shape], data: src.read(ext[0]) });
      continue;
    }
    // Row-major [3D, D] (or [3D]): q rows, then k rows, then v rows.
    const data = new Float32Array(shape.reduce((a, d) => a * d, 1));
    const part = data.length / ext.length;
    ext.forEach((key, j) => data.set(src.read(key), j * part));
    out.set(name, { shape: [...shape], data });
  }
  return out;
}

/**
 * Loads a checkpoint of any supported naming (see detectNaming) into internal (timm) names and layouts,
 * reading each tensor once. A missing key, an unexpected key, a wrong shape or a non-float dtype is
 * reported in ONE EinopsError that lists every offender with expected and actual shapes.
 * `ignoreHead`: the classifier is neither required nor loaded (fine-tuning with another class count).
 *
 * @example
 * const file = openSafetensors('model.safetensors');
 * try { const params = loadCheckpoint(file, cfg); params.get('blocks.0.attn.qkv.weight'); } finally { file.close(); }
 */
export function loadCheckpoint(
  file: SafetensorsFile,
  cfg: ViTConfig,
  opts: { ignoreHead?: boolean } = {},
): Map<string, TensorData> {
  const naming = detectNaming(file.keys());
  return convertIn(fileKeySource(file), naming, cfg, opts.ignoreHead ?? false);
}

/**
 * `loadCheckpoint` on a path: opens, loads, closes.
 *
 * @example
 * const params = readCheckpoint('test/vit-reference/cifar-tiny/model.safetensors', cfg);
 */
export function readCheckpoint(
  file: string,
  cfg: ViTConfig,
  opts: { ignoreHead?: boolean } = {},
): Map<string, TensorData> {
  const f = openSafetensors(file);
  try {
    return loadCheckpoint(f, cfg, opts);
  } finally {
    f.close();
  }
}

/**
 * HF names (ViTForImageClassification `vit.*`/`classifier.*`, or ViTModel without the prefix) to
 * internal names; query/key/value rows are concatenated into qkv. Same checks as loadCheckpoint.
 * Single tensors are passed through without copying.
 *
 * @example
 * const internal = fromHuggingFace(toHuggingFace(params, cfg), cfg);
 */
export function fromHuggingFace(
  params: Map<string, TensorData>,
  cfg: ViTConfig,
  opts: { ignoreHead?: boolean } = {},
): Map<string, TensorData> {
  const naming = detectNaming(params.keys());
  if (naming !== 'hf' && naming !== 'hf-base') {
    throw new EinopsError(`fromHuggingFace: the keys use ${naming} names, not HF ones`, {
      rule: 'checkpoint-naming',
    });
  }
  return convertIn(mapKeySource('<hf params>', params), naming, cfg, opts.ignoreHead ?? false);
}

/** Checks `params` against expectedParameters(cfg) and throws one error listing every offender. */
export function checkParameters(params: Map<string, TensorData>, cfg: ViTConfig, what = 'parameters'): void {
  convertIn(mapKeySource(what, params), 'timm', cfg, false);
}

/**
 * 2-D sin-cos position table [1, T, D] as flat data, for position_embedding 'sinusoidal': MAE's
 * `get_2d_sincos_pos_embed` (the same table as posembed.sincosPosEmbed2d). For the patch at grid row r,
 * column c, with D/4 frequencies w_k = 10000^(-k/(D/4)): [sin(c w), cos(c w), sin(r w), cos(r w)];
 * the class token's row is zeros.
 *
 * @example
 * const pos = sinusoidalPosEmbed(cfg); // length numTokens(cfg) * cfg.hidden_size
 */
export function sinusoidalPosEmbed(cfg: ViTConfig): Float32Array {
  const D = cfg.hidden_size;
  if (D % 4 !== 0)
    throw new EinopsError(`sinusoidal positions need hidden_size divisible by 4, got ${D}`, {
      rule: 'vit-config',
    });
  const q = D / 4;
  const g = gridSize(cfg);
  const prefix = cfg.class_token ? 1 : 0;
  const out = new Float32Array(numTokens(cfg) * D);
  for (let r = 0; r < g; r++) {
    for (let c = 0; c < g; c++) {
      const row = (prefix + r * g + c) * D;
      for (let k = 0; k < q; k++) {
        const w = Math.pow(10000, -k / q);
        out[row + k] = Math.sin(c * w);
        out[row + q + k] = Math.cos(c * w);
        out[row + 2 * q + k] = Math.sin(r * w);
        out[row + 3 * q + k] = Math.cos(r * w);
      }
    }
  }
  return out;
}

/**
 * Internal parameters to the names of `naming` ('hf' writes ViTForImageClassification keys). qkv is
 * split into three [D, D] / [D] tensors; other tensors are passed through without copying. A
 * sinusoidal model gets its fixed table written as the learned position table, so the file loads in
 * libraries that only know learned positions.
 */
export function toNaming(
  params: Map<string, TensorData>,
  cfg: ViTConfig,
  naming: Naming,
): Map<string, TensorData> {
  checkParameters(params, cfg);
  const out = new Map<string, TensorData>();
  const all = new Map(params);
  if (cfg.position_embedding === 'sinusoidal' && naming !== 'timm') {
    all.set('pos_embed', { shape: [1, numTokens(cfg), cfg.hidden_size], data: sinusoidalPosEmbed(cfg) });
  }
  const unsupported: string[] = [];
  for (const [name, t] of all) {
    const ext = externalNames(name, naming);
    if (ext === undefined) {
      unsupported.push(name);
      continue;
    }
    if (ext.length === 1) {
      out.set(ext[0], t);
      continue;
    }
    const part = t.data.length / ext.length;
    const partShape = [t.shape[0] / ext.length, ...t.shape.slice(1)];
    ext.forEach((key, j) => out.set(key, { shape: partShape, data: t.data.slice(j * part, (j + 1) * part) }));
  }
  if (unsupported.length > 0) {
    throw new EinopsError(`${naming} checkpoints have no place for: ${unsupported.join(', ')}`, {
      rule: 'checkpoint-naming',
    });
  }
  return out;
}

/**
 * Internal parameters to the key names of HF Hub files for ViTForImageClassification
 * (`vit.embeddings.cls_token`, `vit.encoder.layer.N.attention.attention.query.weight`, `classifier.weight`, ...).
 * Throws if HF cannot represent the config (mean pooling, fc_norm, LayerScale, no class token, no head).
 *
 * @example
 * writeSafetensors('model.safetensors', toHuggingFace(params, cfg), { format: 'pt' });
 */
export function toHuggingFace(params: Map<string, TensorData>, cfg: ViTConfig): Map<string, TensorData> {
  const problems = hfIncompatibilities(cfg);
  if (problems.length > 0) {
    throw new EinopsError(`HF ViTForImageClassification cannot hold this model: ${problems.join('; ')}`, {
      rule: 'checkpoint-naming',
    });
  }
  return toNaming(params, cfg, 'hf');
}

/**
 * Writes internal parameters as a safetensors checkpoint under `naming` (default cfg.naming), with the
 * `format: pt` metadata transformers requires.
 *
 * @example
 * saveCheckpoint('runs/tiny/model.safetensors', params, cfg, { naming: 'timm' });
 */
export function saveCheckpoint(
  file: string,
  params: Map<string, TensorData>,
  cfg: ViTConfig,
  opts: { naming?: 'hf' | 'timm'; metadata?: Record<string, string> } = {},
): void {
  const naming = opts.naming ?? cfg.naming;
  let out = params;
  if (naming === 'hf') out = toHuggingFace(params, cfg);
  else checkParameters(params, cfg);
  writeSafetensors(file, out, { format: 'pt', ...opts.metadata });
}

/**
 * Writes a folder that `ViTForImageClassification.from_pretrained(dir)` loads: model.safetensors with
 * Hub key names and config.json from toHFConfigJson.
 *
 * @example
 * saveHuggingFace('runs/tiny-hf', params, cfg);
 */
export function saveHuggingFace(dir: string, params: Map<string, TensorData>, cfg: ViTConfig): void {
  const config = toHFConfigJson(cfg);
  const tensors = toHuggingFace(params, cfg);
  fs.mkdirSync(dir, { recursive: true });
  writeSafetensors(path.join(dir, 'model.safetensors'), tensors, { format: 'pt' });
  const cfgPath = path.join(dir, 'config.json');
  const tmp = `${cfgPath}.tmp-${process.pid}`;
  fs.writeFileSync(tmp, `${JSON.stringify(config, null, 2)}\n`);
  fs.renameSync(tmp, cfgPath);
}
