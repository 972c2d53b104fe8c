// The ViT building blocks as functions of tfjs tensors, which the eager op surface (eager.ts) runs.
// Every reshape, split, merge, broadcast and pooling goes through einvit patterns (src/ops.ts); only
// elementwise math, softmax and moments call tfjs.
import { tf, tfSeed } from '../tf.js';
import { einsum, rearrange, reduce } from '../ops.js';
import { EinopsError, UsageError } from '../errors.js';

/** Activation names understood by {@link activation} (HF `hidden_act` values). */
export type ActivationName =
  'gelu' | 'gelu_new' | 'gelu_pytorch_tanh' | 'gelu_fast' | 'quick_gelu' | 'relu' | 'linear';

/**
 * A linear layer with a PyTorch-layout weight `[out, in]` applied to the last axis of a 2-D or 3-D
 * tensor: `y = x·Wᵀ + b`.
 *
 * @example
 * const y = linear(tf.ones([2, 5, 8]), tf.ones([4, 8]), tf.zeros([4])); // [2, 5, 4], every entry 8
 */
export function linear(x: tf.Tensor, weight: tf.Tensor, bias?: tf.Tensor): tf.Tensor {
  let y: tf.Tensor;
  if (x.rank === 3) y = einsum('b n k, e k -> b n e', x, weight);
  else if (x.rank === 2) y = einsum('b k, e k -> b e', x, weight);
  else throw new EinopsError(`linear: expected a 2-D or 3-D input, got shape [${x.shape.join(', ')}]`);
  return bias ? addBroadcast(y, bias) : y;
}

const AXES = 'abcdefghijklmnopqrstuvwxyz';

/**
 * Sums `dy` down to `shape` (numpy broadcasting, aligned right): the gradient of a broadcast
 * operand, as a reduce pattern such as `'a b c -> c'` or `'a b c -> 1 b c'`, which compiles to one
 * matMul over the leading axes instead of tfjs' transpose + sum.
 */
export function sumTo(dy: tf.Tensor, shape: readonly number[]): tf.Tensor {
  const n = dy.rank;
  const lead = n - shape.length;
  const left = AXES.slice(0, n).split('');
  const right = shape.map((d, j) => (d === dy.shape[lead + j] ? left[lead + j] : '1'));
  // A clone, never dy itself: tfjs disposes the upstream gradient after the gradient function runs.
  if (lead === 0 && right.every((r, j) => r === left[j])) return tf.clone(dy);
  return reduce(dy, `${left.join(' ')} -> ${right.join(' ')}`, 'sum');
}

/**
 * `x + b` with `b` broadcast over x's leading axes (bias, position table), with a gradient for `b`
 * that reduces in one matMul.
 *
 * @example
 * const y = addBroadcast(x, bias); // x [B, N, E], bias [E]
 */
export function addBroadcast(x: tf.Tensor, b: tf.Tensor): tf.Tensor {
  const op = tf.customGrad((xi, bi) => {
    const xs = xi as tf.Tensor;
    const bs = bi as tf.Tensor;
    return {
      value: tf.add(xs, bs),
      gradFunc: (dy) => [sumTo(dy as tf.Tensor, xs.shape), sumTo(dy as tf.Tensor, bs.shape)],
    };
  });
  return op(x, b);
}

/**
 * `x * gamma + beta` over the last axis (LayerNorm's affine part), with parameter gradients reduced
 * in one matMul each.
 */
function affine(x: tf.Tensor, gamma: tf.Tensor, beta: tf.Tensor): tf.Tensor {
  const op = tf.customGrad((xi, gi, bi, save) => {
    const [xs, gs, bs] = [xi, gi, bi] as tf.Tensor[];
    (save as tf.GradSaveFunc)([xs, gs]);
    return {
      value: tf.add(tf.mul(xs, gs), bs),
      gradFunc: (dy, saved) => {
        const g = dy as tf.Tensor;
        const [sx, sg] = saved as tf.Tensor[];
        return [tf.mul(g, sg), sumTo(tf.mul(g, sx), sg.shape), sumTo(g, bs.shape)];
      },
    };
  });
  return op(x, gamma, beta);
}

/**
 * LayerNorm over the last axis as PyTorch computes it: biased variance, `eps` inside the square root.
 *
 * @example
 * const y = layerNorm(tf.tensor2d([[1, 2, 3]]), tf.ones([3]), tf.zeros([3]), 1e-6); // ≈ [[-1.22, 0, 1.22]]
 */
export function layerNorm(x: tf.Tensor, gamma: tf.Tensor, beta: tf.Tensor, eps: number): tf.Tensor {
  return tf.tidy(() => {
    const mean = tf.mean(x, -1, true);
    const centred = tf.sub(x, mean);
    const variance = tf.mean(tf.square(centred), -1, true);
    const normed = tf.mul(centred, tf.rsqrt(tf.add(variance, eps)));
    return affine(normed, gamma, beta);
  });
}

const SQRT_2_OVER_PI = Math.sqrt(2 / Math.PI);
const INV_SQRT_2PI = 1 / Math.sqrt(2 * Math.PI);

/**
 * Exact GELU, x·Φ(x) with Φ(x) = (1 + erf(x/√2)) / 2, with a hand-written gradient
 * dy·(Φ(x) + x·φ(x)): a third of the kernels autodiff would run through erf (measured: GELU was
 * ~7% of a training step on wasm).
 */
function geluExact(x: tf.Tensor): tf.Tensor {
  const op = tf.customGrad((xi, save) => {
    const xs = xi as tf.Tensor;
    const cdf = tf.mul(tf.add(tf.erf(tf.mul(xs, Math.SQRT1_2)), 1), 0.5);
    (save as tf.GradSaveFunc)([xs, cdf]);
    return {
      value: tf.mul(xs, cdf),
      gradFunc: (dy, saved) => {
        const [sx, scdf] = saved as tf.Tensor[];
        const pdf = tf.mul(tf.exp(tf.mul(tf.square(sx), -0.5)), INV_SQRT_2PI);
        return tf.mul(dy as tf.Tensor, tf.add(scdf, tf.mul(sx, pdf)));
      },
    };
  });
  return op(x);
}

/**
 * The activation named by HF's `hidden_act`: `gelu` is the exact erf form (also timm's and
 * torchvision's), `gelu_new` / `gelu_pytorch_tanh` / `gelu_fast` the tanh approximation.
 *
 * @example
 * const y = activation(tf.tensor1d([0, 1]), 'gelu'); // [0, 0.8413]
 */
export function activation(x: tf.Tensor, name: string): tf.Tensor {
  return tf.tidy(() => {
    switch (name) {
      case 'gelu':
        return geluExact(x);
      case 'gelu_new':
      case 'gelu_pytorch_tanh':
      case 'gelu_fast': {
        const inner = tf.mul(tf.add(x, tf.mul(tf.pow(x, 3), 0.044715)), SQRT_2_OVER_PI);
        return tf.mul(tf.mul(x, 0.5), tf.add(1, tf.tanh(inner)));
      }
      case 'quick_gelu':
        return tf.mul(x, tf.sigmoid(tf.mul(x, 1.702)));
      case 'relu':
        return tf.relu(x);
      case 'linear':
        return tf.clone(x);
      default:
        throw new UsageError(
          `Unknown hidden_act "${name}". Supported: gelu, gelu_new, gelu_pytorch_tanh, gelu_fast, quick_gelu, relu, linear.`,
        );
    }
  });
}

/** A source of distinct dropout seeds for one forward pass (undefined seed = unseeded randomness). */
export class SeedStream {
  private n = 0;
  constructor(private readonly base?: number) {}
  next(): number | undefined {
    this.n += 1;
    return this.base === undefined ? undefined : tfSeed(this.base * 7919 + this.n);
  }
}

/**
 * Inverted dropout when `rate > 0` and a seed stream is given (training), identity otherwise.
 *
 * @example
 * const y = dropout(tf.ones([4, 4]), 0.5, new SeedStream(1)); // entries 0 or 2
 */
export function dropout(x: tf.Tensor, rate: number, seeds?: SeedStream): tf.Tensor {
  if (!seeds || !(rate > 0)) return x;
  return tf.dropout(x, rate, undefined, seeds.next());
}

/**
 * `rearrange(pixels, 'b c (h p1) (w p2) -> b (h w) (c p1 p2)')`: patch vectors in (c, p1, p2) order,
 * row-major over the grid (the order of the conv weight `[D, C, p, p]`).
 *
 * @example
 * const patches = patchify(tf.zeros([2, 3, 224, 224]), 16); // [2, 196, 768]
 */
export function patchify(pixels: tf.Tensor, patch: number): tf.Tensor {
  return tf.tidy(() => {
    if (pixels.rank !== 4) {
      throw new EinopsError(`patchify: expected [N, C, H, W] pixels, got shape [${pixels.shape.join(', ')}]`);
    }
    // One pattern; the compiler runs its rank-6 permutation as rank-4 block swaps (fast on wasm).
    return rearrange(pixels, 'b c (h p1) (w p2) -> b (h w) (c p1 p2)', { p1: patch, p2: patch });
  });
}

/**
 * Patch embedding as patterns: cut `[N, C, H, W]` into `(c p1 p2)` patch vectors in row-major grid
 * order, then multiply by the conv weight `[D, C, p, p]` flattened the same way. Equals a conv with
 * kernel = stride = p, and trains on wasm (which lacks the conv weight-gradient kernel).
 *
 * @example
 * const tokens = patchEmbed(tf.zeros([1, 3, 32, 32]), tf.zeros([48, 3, 4, 4]), tf.zeros([48]), 4); // [1, 64, 48]
 */
export function patchEmbed(
  pixels: tf.Tensor,
  weight: tf.Tensor,
  bias: tf.Tensor | undefined,
  patch: number,
): tf.Tensor {
  return tf.tidy(() => {
    const patches = patchify(pixels, patch);
    const kernel = rearrange(weight, 'e c p1 p2 -> e (c p1 p2)');
    return linear(patches, kernel, bias);
  });
}

/**
 * Patch embedding as the classic strided convolution (`tf.conv2d`, NHWC), kept to cross-check
 * {@link patchEmbed}. Its weight gradient has no wasm kernel, so it is not the default.
 *
 * @example
 * const tokens = patchEmbedConv(tf.zeros([1, 3, 32, 32]), tf.zeros([48, 3, 4, 4]), tf.zeros([48]), 4); // [1, 64, 48]
 */
export function patchEmbedConv(
  pixels: tf.Tensor,
  weight: tf.Tensor,
  bias: tf.Tensor | undefined,
  patch: number,
): tf.Tensor {
  return tf.tidy(() => {
    const nhwc = rearrange(pixels, 'b c h w -> b h w c') as tf.Tensor4D;
    const filter = rearrange(weight, 'e c p1 p2 -> p1 p2 c e') as tf.Tensor4D;
    let y: tf.Tensor = tf.conv2d(nhwc, filter, patch, 'valid');
    if (bias) y = tf.add(y, bias);
    return rearrange(y, 'b h w e -> b (h w) e');
  });
}
