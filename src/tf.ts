// The single tfjs namespace einvit uses. The umbrella package registers every op's gradient,
// which tfjs-core's Node build alone does not; the wasm import registers the embedded backend.
import * as tf from '@tensorflow/tfjs';
import '@tensorflow/tfjs-backend-wasm';

export { tf };
export type Tensor = tf.Tensor;
