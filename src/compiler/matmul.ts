// Matrix products whose forward AND backward passes use only plain 2-D `tf.matMul(a, b)` (no transpose
// flags): on the wasm backend that is the one fast kernel (~25 GFLOP/s); tfjs' own matMul gradient uses
// transposed matmuls, which run about 10x slower there.
import { tf } from '../tf.js';

/**
 * Wraps a product `a @ b` in a custom gradient dA = dY @ Bᵀ, dB = Aᵀ @ dY computed by the same
 * product after explicit transposes, so the backward pass never uses transpose flags.
 *
 * @example
 * const mm = productWithGrad((a, b) => tf.matMul(a, b), (x) => tf.transpose(x));
 */
export function productWithGrad<T extends tf.Tensor>(
  product: (a: T, b: T) => T,
  transpose: (x: T) => T,
): (a: T, b: T) => T {
  return tf.customGrad((a, b, save) => {
    const x = a as T;
    const y = b as T;
    (save as tf.GradSaveFunc)([x, y]);
    return {
      value: product(x, y),
      gradFunc: (dy, saved) => {
        const [sa, sb] = saved as T[];
        const g = dy as T;
        return [product(g, transpose(sb)), product(transpose(sa), g)];
      },
    };
  }) as (a: T, b: T) => T;
}

const matMul2dGrad = productWithGrad<tf.Tensor2D>(
  (a, b) => tf.matMul(a, b),
  (x) => tf.transpose(x),
);

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

const batchMatMul3dGrad = productWithGrad<tf.Tensor3D>(
  (a, b) => tf.matMul(a, b),
  (x) => tf.transpose(x, [0, 2, 1]),
);

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
