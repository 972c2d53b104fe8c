import { UsageError } from '../errors.js';
import { blackValue, type DataSplit } from './data.js';
import type { Rng } from './random.js';

/** Image layout of one NCHW sample. */
export interface ImageShape {
  channels: number;
  height: number;
  width: number;
}

/**
 * Writes one augmented copy of the image at `src[srcOffset..]` into `dst[dstOffset..]`, drawing any
 * randomness from `rng`.
 */
export type Augment = (
  src: Float32Array,
  srcOffset: number,
  dst: Float32Array,
  dstOffset: number,
  shape: ImageShape,
  rng: Rng,
) => void;

export interface AugmentOptions {
  /** Random crop with this much padding, i.e. a random shift in [-pad, pad] on both axes. Default 0. */
  pad?: number;
  /** Horizontal flip with probability 0.5 (leave off for digits). Default false. */
  flip?: boolean;
  /** Value shifted in at the borders, per channel or one for all. Default 0; use `blackValue(mean, std)`. */
  fill?: number | number[];
}

/**
 * Copies one CHW image shifted by (dx, dy), i.e. `out[y][x] = in[y - dy][x - dx]` (content moves right
 * by dx and down by dy), then mirrored left-right if `flip`; pixels from outside the image get `fill[c]`.
 * A shift of (dx, dy) equals torchvision's RandomCrop with padding p at offset (p - dy, p - dx).
 *
 * @example
 * const out = new Float32Array(4);
 * shiftFlip(new Float32Array([1, 2, 3, 4]), 0, out, 0, { channels: 1, height: 2, width: 2 }, 1, 0, false, [0]);
 * // out = [0, 1, 0, 3]
 */
export function shiftFlip(
  src: Float32Array,
  srcOffset: number,
  dst: Float32Array,
  dstOffset: number,
  shape: ImageShape,
  dx: number,
  dy: number,
  flip: boolean,
  fill: number[],
): void {
  const { channels, height: h, width: w } = shape;
  for (let c = 0; c < channels; c++) {
    const sp = srcOffset + c * h * w;
    const dp = dstOffset + c * h * w;
    const f = fill[c];
    for (let y = 0; y < h; y++) {
      const sy = y - dy;
      const drow = dp + y * w;
      if (sy < 0 || sy >= h) {
        dst.fill(f, drow, drow + w);
        continue;
      }
      const srow = sp + sy * w;
      if (!flip) {
        // out[x] = in[x - dx]: a contiguous copy plus fill at one edge.
        const lo = Math.max(0, dx);
        const hi = Math.min(w, w + dx);
        if (lo > 0) dst.fill(f, drow, drow + lo);
        if (hi > lo) dst.set(src.subarray(srow + lo - dx, srow + hi - dx), drow + lo);
        if (hi < w) dst.fill(f, drow + Math.max(hi, lo), drow + w);
      } else {
        // Crop then flip: out[x] = shifted[w - 1 - x] = in[w - 1 - x - dx].
        for (let x = 0; x < w; x++) {
          const sx = w - 1 - x - dx;
          dst[drow + x] = sx >= 0 && sx < w ? src[srow + sx] : f;
        }
      }
    }
  }
}

/**
 * Builds the standard training augmentation: random shift (crop with padding) and optional horizontal
 * flip, driven by the batch iterator's seeded rng. Per image it draws dx, then dy (if pad > 0), then the
 * flip coin (if flip).
 *
 * @example
 * const aug = makeAugment({ pad: 4, flip: true, fill: blackValue(split.mean, split.std) });
 * for (const b of batches(split.train, { batchSize: 128, shuffle: true, rng, augment: aug })) { ... }
 */
export function makeAugment(opts: AugmentOptions = {}): Augment {
  const pad = opts.pad ?? 0;
  const flip = opts.flip ?? false;
  if (!(Number.isInteger(pad) && pad >= 0)) {
    throw new UsageError(`augment: pad must be a non-negative integer, got ${pad}`);
  }
  return (src, srcOffset, dst, dstOffset, shape, rng) => {
    const fill = Array.isArray(opts.fill)
      ? opts.fill
      : new Array<number>(shape.channels).fill(opts.fill ?? 0);
    if (fill.length !== shape.channels) {
      throw new UsageError(`augment: fill has ${fill.length} values for ${shape.channels} channels`);
    }
    const dx = pad > 0 ? rng.nextInt(2 * pad + 1) - pad : 0;
    const dy = pad > 0 ? rng.nextInt(2 * pad + 1) - pad : 0;
    const mirror = flip && rng.nextFloat() < 0.5;
    shiftFlip(src, srcOffset, dst, dstOffset, shape, dx, dy, mirror, fill);
  };
}

/**
 * `makeAugment` with the border fill set to black for `split`'s normalisation.
 *
 * @example
 * const aug = augmentFor(loadCifar10(dir), { pad: 4, flip: true });
 */
export function augmentFor(
  split: Pick<DataSplit, 'mean' | 'std'>,
  opts: Omit<AugmentOptions, 'fill'>,
): Augment {
  return makeAugment({ ...opts, fill: blackValue(split.mean, split.std) });
}
