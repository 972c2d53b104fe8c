// The model's parameters as a typed tree (`params.blocks[i].attn.qkv.weight`), generic in what a leaf
// is: a tf.Variable in the eager model, a graph parameter when tracing, a shape or a TensorData when
// checking or loading. Each leaf also has a flat name, timm's state_dict key (`blocks.0.attn.qkv.weight`),
// which is what checkpoints, the optimizer's no-decay rules and saved optimizer moments use.
import { CheckpointError } from '../errors.js';
import { numTokens, type ViTConfig } from './config.js';

/** A linear (or conv) layer: PyTorch layouts, weight `[out, in]` (`[D, C, p, p]` for the patch conv). */
export interface LinearParams<T> {
  weight: T;
  /** Absent for bias-free layers (q, k, v when `qkv_bias` is false). */
  bias?: T;
}

/** A LayerNorm's scale and shift, `[D]` each. */
export interface NormParams<T> {
  weight: T;
  bias: T;
}

/** One pre-norm transformer block. */
export interface BlockParams<T> {
  norm1: NormParams<T>;
  attn: {
    /** `[3D, D]`; output features ordered `(qkv h d)`. */
    qkv: LinearParams<T>;
    /** Absent without `attention_proj`. */
    proj?: LinearParams<T>;
  };
  /** timm LayerScale of the attention branch, `[D]` (with `layer_scale`). */
  ls1?: { gamma: T };
  /** Absent with `shared_block_norm` (norm1 serves both branches). */
  norm2?: NormParams<T>;
  mlp: { fc1: LinearParams<T>; fc2: LinearParams<T> };
  ls2?: { gamma: T };
}

/**
 * Every parameter of a ViT, shaped like timm's module tree. Optional members are absent when the config
 * says so (see {@link expectedParameters}).
 *
 * @example
 * const w = model.params.blocks[0].attn.qkv.weight; // tf.Variable [3D, D]
 */
export interface ViTParams<T> {
  /** `[1, 1, D]` (with `class_token`). */
  clsToken?: T;
  /** `[1, T, D]` (learned positions only; sinusoidal tables are computed). */
  posEmbed?: T;
  patchEmbed: { proj: LinearParams<T> };
  blocks: BlockParams<T>[];
  /** Final LayerNorm over all tokens (`final_norm`). */
  norm?: NormParams<T>;
  /** LayerNorm on the pooled vector (`fc_norm`). */
  fcNorm?: NormParams<T>;
  /** The classifier `[num_labels, D]` (absent when `num_labels` is 0). */
  head?: LinearParams<T>;
}

/**
 * Internal (timm) parameter names and shapes for `cfg`, in a stable order (the order of the tree).
 * Absent by config: pos_embed when position_embedding is 'sinusoidal'; cls_token without a class token;
 * qkv bias when qkv_bias is false; attn.proj without attention_proj; norm2 with shared_block_norm;
 * ls1/ls2 without layer_scale; norm without final_norm; fc_norm without fc_norm; head when num_labels is 0.
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
    if (cfg.attention_proj) {
      p.set(`${b}attn.proj.weight`, [D, D]);
      p.set(`${b}attn.proj.bias`, [D]);
    }
    if (cfg.layer_scale) p.set(`${b}ls1.gamma`, [D]);
    if (!cfg.shared_block_norm) {
      p.set(`${b}norm2.weight`, [D]);
      p.set(`${b}norm2.bias`, [D]);
    }
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

/**
 * Where a timm name sits in the tree: `'blocks.3.attn.qkv.weight'` -> `['blocks', 3, 'attn', 'qkv',
 * 'weight']`, `'cls_token'` -> `['clsToken']` (snake_case segments become camelCase, digits indices).
 *
 * @example
 * paramPath('patch_embed.proj.bias'); // ['patchEmbed', 'proj', 'bias']
 */
export function paramPath(name: string): (string | number)[] {
  return name
    .split('.')
    .map((s) => (/^\d+$/.test(s) ? Number(s) : s.replace(/_([a-z])/g, (_m, c: string) => c.toUpperCase())));
}

type Node = Record<string | number, unknown>;

/**
 * Builds the tree for `cfg`, asking `make` for each leaf by timm name and shape, in
 * {@link expectedParameters} order.
 *
 * @example
 * const shapes = buildParams(cfg, (_name, shape) => shape); // shapes.blocks[0].mlp.fc1.weight = [M, D]
 */
export function buildParams<T>(cfg: ViTConfig, make: (name: string, shape: number[]) => T): ViTParams<T> {
  const root: Node = { blocks: [] };
  for (const [name, shape] of expectedParameters(cfg)) {
    const path = paramPath(name);
    let node = root;
    for (let k = 0; k < path.length - 1; k++) {
      const key = path[k];
      if (node[key] === undefined) node[key] = typeof path[k + 1] === 'number' ? [] : {};
      node = node[key] as Node;
    }
    node[path[path.length - 1]] = make(name, shape);
  }
  return root as unknown as ViTParams<T>;
}

/**
 * The leaf of `tree` under timm name `name`, or undefined when the tree has none.
 *
 * @example
 * paramAt(model.params, 'blocks.0.norm1.weight'); // the variable
 */
export function paramAt<T>(tree: ViTParams<T>, name: string): T | undefined {
  let node: unknown = tree;
  for (const key of paramPath(name)) {
    if (node === null || typeof node !== 'object' || !Object.hasOwn(node, key)) return undefined;
    node = (node as Node)[key];
  }
  return node as T;
}

/**
 * The leaves of `tree` by timm name, in {@link expectedParameters} order. Throws a CheckpointError
 * listing every name the config needs that the tree lacks.
 *
 * @example
 * for (const [name, v] of flattenParams(cfg, model.params)) console.log(name, v.shape);
 */
export function flattenParams<T>(cfg: ViTConfig, tree: ViTParams<T>): Map<string, T> {
  const out = new Map<string, T>();
  const missing: string[] = [];
  for (const name of expectedParameters(cfg).keys()) {
    const leaf = paramAt(tree, name);
    if (leaf === undefined) missing.push(name);
    else out.set(name, leaf);
  }
  if (missing.length > 0) {
    throw new CheckpointError(`parameter tree lacks ${missing.length} parameters: ${missing.join(', ')}`, {
      rule: 'missing-parameter',
    });
  }
  return out;
}

/**
 * The same tree with every leaf replaced by `fn(leaf, name)`.
 *
 * @example
 * const shapes = mapParams(cfg, model.params, (v) => v.shape);
 */
export function mapParams<A, B>(
  cfg: ViTConfig,
  tree: ViTParams<A>,
  fn: (leaf: A, name: string) => B,
): ViTParams<B> {
  const flat = flattenParams(cfg, tree);
  return buildParams(cfg, (name) => fn(flat.get(name)!, name));
}
