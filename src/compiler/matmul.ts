// Matrix products whose forward AND backward passes use only plain 2-D `tf.matMul(a, b)` (no transpose
// flags): on the wasm backend that is the one fast kernel (~25 GFLOP/s); tfjs' own matMul gradient uses
// transposed matmuls, which run about 10x slower there.
import { tf } from '../tf.js';

function plainMatMul(a: tf.Tensor2D, b: tf.Tensor2D): tf.Tensor2D {
  return tf.matMul(a, b);
}

const matMul2dGrad = tf.customGrad((a, b, save) => {
  const x = a as tf.Tensor2D;
  const y = b as tf.Tensor2D;
  (save as tf.GradSaveFunc)([x, y]);
  return {
    value: plainMatMul(x, y),
    gradFunc: (dy, saved) => {
      const [sa, sb] = saved as tf.Tensor2D[];
      const g = dy as tf.Tensor2D;
      // dA = dY·Bᵀ, dB = Aᵀ·dY, each as an explicit transpose followed by a plain product.
      return [plainMatMul(g, tf.transpose(sb)), plainMatMul(tf.transpose(sa), g)];
    },
  };
}) as (a: tf.Tensor2D, b: tf.Tensor2D) => tf.Tensor2D;

/**
 * `a @ b` for 2-D float32 tensors `[m, k] @ [k, n] -> [m, n]`, with a gradient built from explicit
 * transposes and plain 2-D products (fast on wasm, unlike tfjs' built-in matMul gradient).
 *
 * @example
 * const y = matMul2d(tf.ones([2, 3]), tf.ones([3, 4])); // shape [2, 4], every entry 3
 */
export function matMul2d(a: tf.Tensor2D, b: tf.Tensor2D): tf.Tensor2D {
  return matMul2dGrad(a, b);
}

const batchMatMul3dGrad = tf.customGrad((a, b, save) => {
  const x = a as tf.Tensor3D;
  const y = b as tf.Tensor3D;
  (save as tf.GradSaveFunc)([x, y]);
  return {
    value: tf.matMul(x, y),
    gradFunc: (dy, saved) => {
      const [sa, sb] = saved as tf.Tensor3D[];
      const g = dy as tf.Tensor3D;
      return [tf.matMul(g, tf.transpose(sb, [0, 2, 1])), tf.matMul(tf.transpose(sa, [0, 2, 1]), g)];
    },
  };
}) as (a: tf.Tensor3D, b: tf.Tensor3D) => tf.Tensor3D;

/**
 * Batched product `[g, m, k] @ [g, k, n] -> [g, m, n]` (same batch length on both sides) whose gradient
 * also uses batched products without transpose flags (explicit transposes instead).
 *
 * @example
 * const y = batchMatMul3d(tf.ones([5, 2, 3]), tf.ones([5, 3, 4])); // shape [5, 2, 4]
 */
export function batchMatMul3d(a: tf.Tensor3D, b: tf.Tensor3D): tf.Tensor3D {
  return batchMatMul3dGrad(a, b);
}
