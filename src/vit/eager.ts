// The eager op surface: each op runs at once on tfjs (any backend), with the lowering choices that are
// fast on wasm and the hand-written gradients of layers.ts. The default mode of ViT.forward and the
// only one that trains.
import { tf } from '../tf.js';
import { einsum, pack, rearrange, reduce, repeat, unpack } from '../ops.js';
import {
  activation,
  addBroadcast,
  dropout,
  layerNorm,
  linear,
  patchEmbed,
  patchEmbedConv,
  SeedStream,
} from './layers.js';
import type { SurfaceReduction, VitOps } from './surface.js';

/** Options of {@link eagerOps}. */
export interface EagerOptions {
  /** Apply dropout, seeded from `seed` (unseeded when absent). */
  training?: boolean;
  seed?: number;
  /** Patch embedding as patterns + matMul (default; trains on wasm) or as tf.conv2d. */
  patchEmbedding?: 'pattern' | 'conv';
}

/**
 * The op surface on tfjs tensors. One instance per forward pass (it owns the pass's dropout seeds).
 *
 * @example
 * const out = tf.tidy(() => vitNetwork(eagerOps(), cfg, model.params, pixels, pos, rates).logits);
 */
export function eagerOps(opts: EagerOptions = {}): VitOps<tf.Tensor> {
  const seeds = opts.training ? new SeedStream(opts.seed) : undefined;
  const embed = opts.patchEmbedding === 'conv' ? patchEmbedConv : patchEmbed;
  return {
    shape: (x) => x.shape,
    constant: (data, shape) => tf.tensor(data, [...shape], 'float32'),
    scope: (_name, fn) => tf.tidy(fn as () => tf.TensorContainer) as ReturnType<typeof fn>,
    rearrange: (x, pattern, lengths) => rearrange(x, pattern, lengths),
    reduce: (x, pattern, reduction: SurfaceReduction, lengths) => reduce(x, pattern, reduction, lengths),
    repeat: (x, pattern, lengths) => repeat(x, pattern, lengths),
    einsum: (pattern, ...xs) => einsum(pattern, ...xs),
    pack: (xs, pattern) => pack([...xs], pattern)[0],
    unpack: (x, shapes, pattern) =>
      unpack(
        x,
        shapes.map((s) => [...s]),
        pattern,
      ),
    linear,
    linearSplit: (x, weight, bias, parts) => {
      // Splitting the weight (leading axis: free) and running `parts` products is faster on wasm than
      // one wide product followed by slicing the activations (a strided copy): measured 3x
      // [2176,96]x[96,96] 6.9 ms vs [2176,96]x[96,288] 13.9 ms.
      const rows = (weight.shape[0] as number) / parts;
      const sizes = Array.from({ length: parts }, () => [rows]);
      const ws = unpack(weight, sizes, '* k');
      const bs = bias ? unpack(bias, sizes, '*') : [];
      return ws.map((w, i) => linear(x, w, bs[i]));
    },
    patchEmbed: embed,
    layerNorm,
    activation,
    attention: (q, k, v, scale, rate) => {
      const probs = tf.softmax(tf.mul(einsum('b h q d, b h k d -> b h q k', q, k), scale));
      const out = einsum('b h q k, b h k d -> b h q d', dropout(probs, rate, seeds), v);
      return { out, probs };
    },
    softmax: (x) => tf.softmax(x),
    scale: (x, s) => tf.mul(x, s),
    add: (a, b) => tf.add(a, b),
    addBroadcast,
    mul: (x, b) => tf.mul(x, b),
    dropout: (x, rate) => dropout(x, rate, seeds),
  };
}
