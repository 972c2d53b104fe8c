// The single tfjs namespace einvit uses. The umbrella package registers every op's gradient,
// which tfjs-core's Node build alone does not; the wasm import registers the embedded backend.
import * as tf from '@tensorflow/tfjs';
import '@tensorflow/tfjs-backend-wasm';

export { tf };
export type Tensor = tf.Tensor;

/**
 * The seed to hand a tfjs random op for einvit's integer seed `n`. tfjs treats a falsy seed (0) as
 * "no seed" and draws from Math.random, so every integer is mapped to a distinct non-zero one.
 */
export function tfSeed(n: number): number {
  return n >= 0 ? n + 1 : n;
}
