// Position embeddings: resampling a learned table to another patch grid (for other image sizes) and
// the fixed 2-D sin-cos table of MAE. Resampling is separable, so it is written as two small
// interpolation matrices applied with einsum; the matrices reproduce PyTorch's F.interpolate weights.
import { tf } from '../tf.js';
import { einsum, pack, rearrange, unpack } from '../ops.js';
import { EinopsError, UsageError } from '../errors.js';

/** Interpolation kernels: PyTorch `F.interpolate(mode, align_corners=False, antialias)`. */
export type ResampleMode = 'bicubic' | 'bilinear';

// Keys cubic convolution kernel with parameter a (PyTorch: -0.75 plain, -0.5 antialiased like PIL).
function cubic(x: number, a: number): number {
  const t = Math.abs(x);
  if (t < 1) return ((a + 2) * t - (a + 3)) * t * t + 1;
  if (t < 2) return ((a * t - 5 * a) * t + 8 * a) * t - 4 * a;
  return 0;
}

function triangle(x: number): number {
  const t = Math.abs(x);
  return t < 1 ? 1 - t : 0;
}

/**
 * The `[outSize, inSize]` matrix M with `out = M · in` along one axis, as PyTorch's
 * `F.interpolate(..., align_corners=False)` computes it. Without antialias: bicubic uses a = -0.75 and
 * clamps taps at the borders; bilinear clamps the source coordinate. With antialias (timm's default
 * for position embeddings): PIL-style filters (bicubic a = -0.5) whose support widens when
 * downsampling, cut at the borders and renormalised.
 *
 * @example
 * interpolationMatrix(2, 4, 'bilinear'); // [[1,0],[0.75,0.25],[0.25,0.75],[0,1]]
 */
export function interpolationMatrix(
  inSize: number,
  outSize: number,
  mode: ResampleMode,
  antialias = false,
): number[][] {
  if (!Number.isInteger(inSize) || !Number.isInteger(outSize) || inSize < 1 || outSize < 1) {
    throw new EinopsError(
      `interpolationMatrix: sizes must be positive integers, got ${inSize} -> ${outSize}`,
    );
  }
  const m = Array.from({ length: outSize }, () => new Array<number>(inSize).fill(0));
  const scale = inSize / outSize;
  if (antialias) {
    const filter = mode === 'bicubic' ? (x: number) => cubic(x, -0.5) : triangle;
    const radius = mode === 'bicubic' ? 2 : 1;
    const support = scale >= 1 ? radius * scale : radius;
    const invScale = scale >= 1 ? 1 / scale : 1;
    for (let i = 0; i < outSize; i++) {
      const center = scale * (i + 0.5);
      const lo = Math.max(Math.trunc(center - support + 0.5), 0);
      const hi = Math.min(Math.trunc(center + support + 0.5), inSize);
      let total = 0;
      const w: number[] = [];
      for (let j = lo; j < hi; j++) {
        const v = filter((j - center + 0.5) * invScale);
        w.push(v);
        total += v;
      }
      for (let j = lo; j < hi; j++) m[i][j] = total !== 0 ? w[j - lo] / total : 0;
    }
    return m;
  }
  for (let i = 0; i < outSize; i++) {
    if (mode === 'bicubic') {
      const src = scale * (i + 0.5) - 0.5;
      const base = Math.floor(src);
      const t = src - base;
      const taps = [cubic(t + 1, -0.75), cubic(t, -0.75), cubic(1 - t, -0.75), cubic(2 - t, -0.75)];
      for (let k = 0; k < 4; k++) {
        const j = Math.min(Math.max(base - 1 + k, 0), inSize - 1);
        m[i][j] += taps[k];
      }
    } else {
      const src = Math.max(scale * (i + 0.5) - 0.5, 0);
      const j0 = Math.floor(src);
      const j1 = Math.min(j0 + 1, inSize - 1);
      const l1 = src - j0;
      m[i][j0] += 1 - l1;
      m[i][j1] += l1;
    }
  }
  return m;
}

/** Options of {@link resamplePosEmbed}. */
export interface ResampleOptions {
  /** Grid of the table; default: square, from its length. */
  oldGrid?: [number, number];
  /** Leading class/register rows kept as they are (default 1). */
  numPrefixTokens?: number;
  /** Default 'bicubic'. */
  mode?: ResampleMode;
  /** PIL-style antialiased filters as timm's `resample_abs_pos_embed` (default true); HF's `interpolate_pos_encoding` uses false. */
  antialias?: boolean;
}

/**
 * Resamples a position table `[1, T, D]` to a `newGrid` of patches, keeping the prefix rows, as
 * timm's `resample_abs_pos_embed` (bicubic, align_corners=False, antialias by default).
 *
 * @example
 * const pe384 = resamplePosEmbed(pe224, [24, 24]); // [1, 197, D] -> [1, 577, D]
 */
export function resamplePosEmbed(
  posEmbed: tf.Tensor,
  newGrid: [number, number],
  opts: ResampleOptions = {},
): tf.Tensor {
  const prefix = opts.numPrefixTokens ?? 1;
  if (posEmbed.rank !== 3 || posEmbed.shape[0] !== 1) {
    throw new EinopsError(`resamplePosEmbed: expected a [1, T, D] table, got [${posEmbed.shape.join(', ')}]`);
  }
  const rows = (posEmbed.shape[1] as number) - prefix;
  const oldGrid = opts.oldGrid ?? [Math.round(Math.sqrt(rows)), Math.round(Math.sqrt(rows))];
  if (oldGrid[0] * oldGrid[1] !== rows) {
    throw new EinopsError(
      `resamplePosEmbed: ${rows} grid rows (T=${posEmbed.shape[1]} minus ${prefix} prefix) do not form a ${oldGrid[0]}x${oldGrid[1]} grid`,
    );
  }
  const [gh, gw] = newGrid;
  if (!Number.isInteger(gh) || !Number.isInteger(gw) || gh < 1 || gw < 1) {
    throw new EinopsError(`resamplePosEmbed: new grid must be positive integers, got ${gh}x${gw}`);
  }
  if (gh === oldGrid[0] && gw === oldGrid[1]) return tf.clone(posEmbed);
  const mode = opts.mode ?? 'bicubic';
  const antialias = opts.antialias ?? true;
  return tf.tidy(() => {
    const [head, gridRows] =
      prefix > 0 ? unpack(posEmbed, [[prefix], [rows]], 'b * d') : [undefined, posEmbed];
    const mh = tf.tensor2d(interpolationMatrix(oldGrid[0], gh, mode, antialias));
    const mw = tf.tensor2d(interpolationMatrix(oldGrid[1], gw, mode, antialias));
    const grid = rearrange(gridRows, 'b (h w) d -> b h w d', { h: oldGrid[0], w: oldGrid[1] });
    const alongH = einsum('y h, b h w d -> b y w d', mh, grid);
    const alongW = einsum('x w, b y w d -> b y x d', mw, alongH);
    const flat = rearrange(alongW, 'b y x d -> b (y x) d');
    return head ? pack([head, flat], 'b * d')[0] : flat;
  });
}

/**
 * The fixed 2-D sin-cos position table of MAE (`get_2d_sincos_pos_embed`) for a `gridH x gridW`
 * grid, as row-major `[T, dim]` data: the first half of the features encodes the column, the second
 * half the row, each as `[sin(pos·ω), cos(pos·ω)]` with `ω_i = 10000^(-i/(dim/4))`. With
 * `prefixTokens`, that many zero rows come first (MAE's class token row). The one implementation of
 * the table: the model computes it, checkpoint export writes it.
 *
 * @example
 * const data = sincosTable(192, 14, 14, 1); // 197 * 192 values, row 0 all zeros
 */
export function sincosTable(dim: number, gridH: number, gridW: number, prefixTokens = 1): Float32Array {
  if (!Number.isInteger(dim) || dim % 4 !== 0 || dim <= 0) {
    throw new UsageError(`sin-cos positions: hidden size must be a positive multiple of 4, got ${dim}`, {
      rule: 'vit-config',
    });
  }
  const quarter = dim / 4;
  const tokens = prefixTokens + gridH * gridW;
  const data = new Float32Array(tokens * dim);
  const omega = Array.from({ length: quarter }, (_, i) => 1 / 10000 ** (i / quarter));
  for (let r = 0; r < gridH; r++) {
    for (let c = 0; c < gridW; c++) {
      const row = (prefixTokens + r * gridW + c) * dim;
      for (let i = 0; i < quarter; i++) {
        data[row + i] = Math.sin(c * omega[i]);
        data[row + quarter + i] = Math.cos(c * omega[i]);
        data[row + 2 * quarter + i] = Math.sin(r * omega[i]);
        data[row + 3 * quarter + i] = Math.cos(r * omega[i]);
      }
    }
  }
  return data;
}

/**
 * {@link sincosTable} as a `[1, T, dim]` tensor.
 *
 * @example
 * const pe = sincosPosEmbed2d(192, 14, 14, 1); // [1, 197, 192], row 0 all zeros
 */
export function sincosPosEmbed2d(dim: number, gridH: number, gridW: number, prefixTokens = 1): tf.Tensor {
  const data = sincosTable(dim, gridH, gridW, prefixTokens);
  return tf.tensor3d(data, [1, data.length / dim, dim]);
}
