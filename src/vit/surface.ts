// The op surface the ViT is written against (network.ts). Two implementations: eager.ts runs each op
// at once on tfjs (the default, and the only one that trains); trace.ts records each op into the graph
// IR, which compiles to ONNX and runs on onnxruntime. The model code never calls tfjs directly, so
// both modes run the same definition.
import type { HiddenAct } from './config.js';

/** Reductions the `reduce` pattern op accepts. */
export type SurfaceReduction = 'mean' | 'sum' | 'max' | 'min' | 'prod';

/**
 * The operations a ViT forward pass needs. `T` is the tensor type of the mode; `D` an axis length that
 * may be symbolic (the batch axis of a traced graph); plain numbers are always accepted.
 *
 * @example
 * function embed<T, D>(ops: VitOps<T, D>, x: T, w: T, b: T): T {
 *   return ops.linear(ops.rearrange(x, 'b c (h p1) (w p2) -> b (h w) (c p1 p2)', { p1: 4, p2: 4 }), w, b);
 * }
 */
export interface VitOps<T, D = number> {
  /** The shape of `x`; the batch axis may be symbolic. */
  shape(x: T): readonly (number | D)[];
  /** A constant tensor (e.g. the sin-cos position table). */
  constant(data: Float32Array, shape: readonly number[]): T;
  /** Runs `fn` as one named unit (eager: a tf.tidy, so the intermediates are freed as it returns). */
  scope<R>(name: string, fn: () => R): R;

  rearrange(x: T, pattern: string, lengths?: Record<string, number | D>): T;
  reduce(x: T, pattern: string, reduction: SurfaceReduction, lengths?: Record<string, number | D>): T;
  repeat(x: T, pattern: string, lengths?: Record<string, number | D>): T;
  einsum(pattern: string, ...operands: T[]): T;
  /** `pack(xs, pattern)[0]`: the packed tensor. */
  pack(xs: readonly T[], pattern: string): T;
  unpack(x: T, shapes: readonly (readonly number[])[], pattern: string): T[];

  /** `x·Wᵀ + b` over the last axis with a PyTorch-layout weight `[out, in]`. */
  linear(x: T, weight: T, bias?: T): T;
  /** {@link linear} split into `parts` equal slices of the output features (the fused q, k, v). */
  linearSplit(x: T, weight: T, bias: T | undefined, parts: number): T[];
  /** The strided patch convolution (kernel = stride = `patch`) as `[N, C, H, W]` -> `[N, tokens, D]`. */
  patchEmbed(pixels: T, weight: T, bias: T | undefined, patch: number): T;
  /** LayerNorm over the last axis (biased variance, eps inside the root). */
  layerNorm(x: T, gamma: T, beta: T, eps: number): T;
  activation(x: T, name: HiddenAct): T;
  /**
   * Scaled dot-product attention over `[N, heads, T, d]` q, k, v: `softmax(q·kᵀ·scale)` (the
   * probabilities, before dropout) and the attended values `[N, heads, T, d]`. Dropout at
   * `dropoutRate` applies to the probabilities in training.
   */
  attention(q: T, k: T, v: T, scale: number, dropoutRate: number): { out: T; probs: T };
  /** Softmax over the last axis (attention written out for the tutorials' quirks). */
  softmax(x: T): T;
  /** `x · s` for a constant number `s` (an attention scale applied outside {@link attention}). */
  scale(x: T, s: number): T;
  /** Elementwise sum of two tensors of one shape (the residual connections). */
  add(a: T, b: T): T;
  /** `x + b` with `b` broadcast over x's leading axes (position table). */
  addBroadcast(x: T, b: T): T;
  /** Elementwise product, `b` broadcast over x's leading axes (LayerScale). */
  mul(x: T, b: T): T;
  /** Inverted dropout at `rate` in training; identity otherwise. */
  dropout(x: T, rate: number): T;
}
