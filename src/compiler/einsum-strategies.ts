// How einsum's batched products run: four strategies and the cost model that picks one on wasm, with the
// custom gradients that keep every backward pass on fast kernels.
import { tf } from '../tf.js';
import { batchMatMul3d, productWithGrad } from './matmul.js';
import type { BatchStrategy } from './einsum-plan.js';

/**
 * What the cost model rests on: bench/einsum.ts on the wasm backend (project machine, 2 vCPUs, best of 7,
 * forward + backward, ms) for attention-shaped batched products, `split` against `dwconv`. `block` is
 * m * k * n of one group's product. Batched matMul lost to dwconv by 1.3-4x on every one of these
 * (MNIST attn·v: 30 ms against 15).
 */
export const BATCH_STRATEGY_MEASUREMENTS = [
  { shape: 'ViT-B/16 scores, t197 d64, batch 1', block: 197 * 64 * 197, splitMs: 24, dwconvMs: 37 },
  { shape: 'ViT-B/16 scores, t197 d64, batch 8', block: 197 * 64 * 197, splitMs: 408, dwconvMs: 505 },
  { shape: 'CIFAR tiny scores, t65 d12', block: 65 * 12 * 65, splitMs: 264, dwconvMs: 164 },
  { shape: 'MNIST tiny scores, t17 d24', block: 17 * 24 * 17, splitMs: 48, dwconvMs: 9 },
] as const;

/**
 * Smallest block (m * k * n) run as g separate 2-D matMuls ('split'): between the largest measured block
 * where dwconv won (CIFAR, 50,700) and the smallest where split won (ViT-B, 2,483,776); see
 * {@link BATCH_STRATEGY_MEASUREMENTS}.
 */
export const SPLIT_MIN_BLOCK = 1 << 18;

/**
 * Chooses how to run a batched product `[g, m, k] @ [g, k, n]` (g > 1) on the current backend. Only wasm
 * needs care; elsewhere tfjs' batched matMul is the fast path. Strategies: 'batched' (tf.matMul on 3-D),
 * 'dwconv' (one depthwise convolution with the groups as channels), 'mulsum' (broadcast multiply + sum),
 * 'split' (g plain 2-D matMuls on blocks split on the host).
 *
 * @example
 * chooseBatchStrategy(512, 17, 24, 17);  // 'dwconv' on wasm (MNIST attention scores)
 * chooseBatchStrategy(12, 197, 64, 197); // 'split' on wasm (ViT-B/16 attention scores)
 */
export function chooseBatchStrategy(g: number, m: number, k: number, n: number): BatchStrategy {
  if (tf.getBackend() !== 'wasm' || g <= 1) return 'batched';
  // An elementwise product is all there is when nothing is summed or one side is a vector.
  if (k === 1 || m === 1 || n === 1) return 'mulsum';
  // Big blocks: g plain 2-D matMuls on host-split blocks; small ones: one depthwise convolution.
  if (m * k * n >= SPLIT_MIN_BLOCK) return 'split';
  return 'dwconv';
}

/** `[g, m, k] @ [g, k, n]` (or transposed layouts per flags) -> `[g, m, n]` with the given strategy. */
export function batchProduct(
  a: tf.Tensor3D,
  b: tf.Tensor3D,
  aT: boolean,
  bT: boolean,
  strategy: BatchStrategy,
): tf.Tensor3D {
  const [g] = a.shape;
  const m = aT ? a.shape[2] : a.shape[1];
  const k = aT ? a.shape[1] : a.shape[2];
  const n = bT ? b.shape[1] : b.shape[2];
  const t = (x: tf.Tensor3D) => tf.transpose(x, [0, 2, 1]);
  switch (strategy) {
    case 'mulsum': {
      if (!aT && bT) return tf.sum(tf.mul(a.reshape([g, m, 1, k]), b.reshape([g, 1, n, k])), 3);
      if (!aT && !bT) return tf.sum(tf.mul(a.reshape([g, m, k, 1]), b.reshape([g, 1, k, n])), 2);
      const bb = bT ? t(b) : b;
      return tf.sum(tf.mul(a.reshape([g, k, m, 1]), bb.reshape([g, k, 1, n])), 1);
    }
    case 'dwconv':
      return dwconvProduct(aT ? tf.transpose(a, [2, 1, 0]) : tf.transpose(a, [1, 2, 0]), b, bT, g, m, k, n);
    case 'split':
      return splitProduct(aT ? t(a) : a, bT ? t(b) : b);
    case 'batched':
      return batchMatMul3d(aT ? t(a) : a, bT ? t(b) : b);
  }
}

/**
 * Batched product through one depthwise convolution: the groups become channels, the contracted axis the
 * kernel width. On wasm this is XNNPACK's grouped GEMM, faster than its BatchMatMul.
 */
function dwconvProduct(
  aMKG: tf.Tensor3D,
  b: tf.Tensor3D,
  bT: boolean,
  g: number,
  m: number,
  k: number,
  n: number,
): tf.Tensor3D {
  const x = aMKG.reshape([m, 1, k, g]) as tf.Tensor4D;
  const f = (bT ? tf.transpose(b, [2, 0, 1]) : tf.transpose(b, [1, 0, 2])).reshape([
    1,
    k,
    g,
    n,
  ]) as tf.Tensor4D;
  const y = dwconvGrad(x, f);
  return tf.transpose(y.reshape([m, g, n]), [1, 0, 2]) as tf.Tensor3D;
}

/**
 * The g blocks of `x: [g, r, c]` as separate 2-D tensors. One read of the data: tf.unstack / tf.slice on wasm
 * copy the whole input for every slice (O(g²) traffic).
 */
function blocksOf(x: tf.Tensor3D): tf.Tensor2D[] {
  const [g, r, c] = x.shape;
  const values = x.dataSync() as Float32Array;
  const size = r * c;
  return Array.from({ length: g }, (_, i) => tf.tensor2d(values.slice(i * size, (i + 1) * size), [r, c]));
}

function blockProducts(a: tf.Tensor3D, b: tf.Tensor3D): tf.Tensor3D {
  const [g, m] = a.shape;
  const n = b.shape[2];
  const as = blocksOf(a);
  const bs = blocksOf(b);
  return tf.concat(as.map((x, i) => tf.matMul(x, bs[i]))).reshape([g, m, n]);
}

// g plain 2-D products on host-split blocks; the gradient is two more rounds of the same.
const splitProduct = productWithGrad<tf.Tensor3D>(blockProducts, (x) => tf.transpose(x, [0, 2, 1]));

// tfjs' depthwise gradients have no wasm kernels. Both gradients are again depthwise products, computed
// directly in the channels-last layout: wasm transposes that move the group axis are the costly part.
const dwconvGrad = tf.customGrad((x, f, save) => {
  const xx = x as tf.Tensor4D;
  const ff = f as tf.Tensor4D;
  (save as tf.GradSaveFunc)([xx, ff]);
  return {
    value: tf.depthwiseConv2d(xx, ff, 1, 'valid'),
    gradFunc: (dy, saved) => {
      const [sx, sf] = saved as tf.Tensor4D[];
      const [m, , k, g] = sx.shape;
      const n = sf.shape[3];
      // dx[m, k, g] = sum_n dy[m, g, n] f[k, g, n]
      const x1 = tf.transpose(dy.reshape([m, g, n]), [0, 2, 1]).reshape([m, 1, n, g]) as tf.Tensor4D;
      const f1 = tf.transpose(sf.reshape([k, g, n]), [2, 1, 0]).reshape([1, n, g, k]) as tf.Tensor4D;
      const dx = tf.transpose(tf.depthwiseConv2d(x1, f1, 1, 'valid').reshape([m, g, k]), [0, 2, 1]);
      // df[k, g, n] = sum_m x[m, k, g] dy[m, g, n]
      const x2 = tf.transpose(sx.reshape([m, k, g]), [1, 0, 2]).reshape([k, 1, m, g]) as tf.Tensor4D;
      const df = tf.depthwiseConv2d(x2, dy.reshape([1, m, g, n]) as tf.Tensor4D, 1, 'valid');
      return [dx.reshape(sx.shape), df.reshape(sf.shape)];
    },
  };
}) as (x: tf.Tensor4D, f: tf.Tensor4D) => tf.Tensor4D;
