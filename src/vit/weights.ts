// Checkpoint converters, kept beside the model rather than inside it. The model's parameter names and
// layouts are timm's state_dict (cls_token, pos_embed, blocks.{i}.attn.qkv.weight [3D, D], ...); the
// tables below map each internal name to the names of one other library, explicitly and checked.
//
// Harmless keys skipped on load (documented, never silently dropped otherwise):
//  - HF ViTModel's `pooler.dense.*` (also `vit.pooler.dense.*`): a tanh pooler ViTForImageClassification
//    does not use;
//  - the position table (`pos_embed` and its other names) when the config says position_embedding
//    'sinusoidal': the model computes that table itself (see posembed.sincosTable);
//  - the classifier (`head.*`, `classifier.*`, `heads.head.*`) when `ignoreHead` is set.
import { CheckpointError } from '../errors.js';
import { type SafetensorsFile, type TensorData, openSafetensors } from './safetensors.js';
import { type ViTConfig, gridSize, hfIncompatibilities, numPrefixTokens, numTokens } from './config.js';
import { expectedParameters } from './params.js';
import { sincosTable } from './posembed.js';
import {
  detectTutorial,
  isTutorialNaming,
  tutorialFromInternal,
  tutorialRule,
  tutorialToInternal,
  type TutorialRule,
} from './tutorials.js';
import type { TutorialNaming } from './config.js';

export type { TensorData } from './safetensors.js';
export { expectedParameters } from './params.js';

/** Key naming schemes of checkpoints this module reads (tutorials.ts holds the tutorials' tables). */
export type Naming = 'hf' | 'hf-base' | 'timm' | 'torchvision' | TutorialNaming;

const FLOAT_DTYPES = new Set(['F32', 'F16', 'BF16', 'F64']);

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
export function externalNames(name: string, naming: Exclude<Naming, TutorialNaming>): string[] | undefined {
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

/**
 * Where internal parameter `name` (of `shape`) lives under `naming`: its keys, the shape of each, and
 * for the tutorials the pattern joining them. HF's query/key/value rows simply concatenate.
 */
function ruleFor(name: string, shape: number[], naming: Naming, cfg: ViTConfig): TutorialRule | undefined {
  if (isTutorialNaming(naming)) return tutorialRule(name, naming, cfg);
  const keys = externalNames(name, naming);
  if (keys === undefined) return undefined;
  return { keys, partShape: keys.length === 1 ? shape : [shape[0] / keys.length, ...shape.slice(1)] };
}

/** External keys that may sit in a file of `naming` without a counterpart, and why. */
function skippable(key: string, naming: Naming, cfg: ViTConfig, ignoreHead: boolean): boolean {
  if (isTutorialNaming(naming)) {
    return ignoreHead && [...HEAD_INTERNAL].some((h) => tutorialRule(h, naming, cfg)?.keys.includes(key));
  }
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
 * `patch_embed.*`), 'torchvision' (`conv_proj.*`, `encoder.layers.*`) or one of the seed tutorials'
 * namings (see tutorials.detectTutorial).
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
  const tutorial = detectTutorial(all);
  if (tutorial) return tutorial;
  const shown = all.slice(0, 5).join(', ');
  throw new CheckpointError(
    `cannot tell the checkpoint naming (HF, timm, torchvision ViT or a seed tutorial's) from its ${all.length} keys: ${shown}${all.length > 5 ? ', ...' : ''}`,
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
    throw new CheckpointError(`${name}: ${bad.length} malformed tensors\n${bad.join('\n')}`, {
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
  const plan: [string, number[], TutorialRule][] = [];
  for (const [name, shape] of expected) {
    if (ignoreHead && HEAD_INTERNAL.has(name)) continue;
    const rule = ruleFor(name, shape, naming, cfg);
    if (rule === undefined) {
      problems.push(
        `  unsupported ${name}: the config needs it but ${naming} checkpoints have no such parameter`,
      );
      continue;
    }
    const { keys: ext, partShape } = rule;
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
    if (ok) plan.push([name, shape, rule]);
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
    throw new CheckpointError(lines.join('\n'), { rule: 'checkpoint-mismatch' });
  }
  const out = new Map<string, TensorData>();
  for (const [name, shape, rule] of plan) {
    const ext = rule.keys;
    if (isTutorialNaming(naming)) {
      out.set(
        name,
        tutorialToInternal(
          rule,
          ext.map((k) => src.read(k)),
        ),
      );
      continue;
    }
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
 * reported in ONE CheckpointError that lists every offender with expected and actual shapes.
 * `ignoreHead`: the classifier is neither required nor loaded (fine-tuning with another class count).
 *
 * @example
 * const file = openSafetensors('model.safetensors');
 * try { const params = loadCheckpoint(file, cfg); params.get('blocks.0.attn.qkv.weight'); } finally { file.close(); }
 */
export function loadCheckpoint(
  file: SafetensorsFile,
  cfg: ViTConfig,
  opts: { ignoreHead?: boolean; naming?: Naming } = {},
): Map<string, TensorData> {
  const naming = opts.naming ?? detectNaming(file.keys());
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
    throw new CheckpointError(`fromHuggingFace: the keys use ${naming} names, not HF ones`, {
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
    const g = gridSize(cfg);
    const data = sincosTable(cfg.hidden_size, g, g, numPrefixTokens(cfg));
    all.set('pos_embed', { shape: [1, numTokens(cfg), cfg.hidden_size], data });
  }
  const unsupported: string[] = [];
  for (const [name, t] of all) {
    if (isTutorialNaming(naming)) {
      const rule = tutorialRule(name, naming, cfg);
      if (rule === undefined) unsupported.push(name);
      else tutorialFromInternal(rule, t).forEach((p, j) => out.set(rule.keys[j], p));
      continue;
    }
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
    throw new CheckpointError(`${naming} checkpoints have no place for: ${unsupported.join(', ')}`, {
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
    throw new CheckpointError(`HF ViTForImageClassification cannot hold this model: ${problems.join('; ')}`, {
      rule: 'checkpoint-naming',
    });
  }
  return toNaming(params, cfg, 'hf');
}
