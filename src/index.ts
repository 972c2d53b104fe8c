/**
 * einvit: einops-style shape patterns compiled to TensorFlow.js, and a Vision Transformer written
 * with them.
 *
 * @example
 * import { rearrange, ready } from 'einvit';
 * await ready();
 * const y = rearrange(x, 'b h w c -> b c h w');
 */
export { rearrange, reduce, repeat, einsum, pack, unpack, parseShape } from './ops.js';
export type { Reduction, AxesLengths, Tensor } from './ops.js';
export { EinopsError } from './errors.js';
export { ready } from './backends/index.js';
export { tf } from './tf.js';
export { Rearrange, Reduce, EinMix } from './layers/index.js';
export type { RearrangeArgs, ReduceArgs, EinMixArgs } from './layers/index.js';
