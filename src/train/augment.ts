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
  /** Random rotation about the image centre, uniform in [-rotate, rotate] degrees. Default 0. */
  rotate?: number;
  /** Random zoom, a factor uniform in [1 - scale, 1 + scale] (0 <= scale < 1). Default 0. */
  scale?: number;
}

/** One random affine warp: rotation (degrees), zoom factor and shift (pixels), all about the centre. */
export interface AffineParams {
  /** Degrees; positive turns the content clockwise on screen (x right, y down). */
  angle: number;
  /** Zoom factor (> 1 enlarges the content). */
  scale: number;
  dx: number;
  dy: number;
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
 * Copies one CHW image warped by `a` and sampled bilinearly: the content is rotated by `a.angle` and
 * zoomed by `a.scale` about the pixel centre `((w-1)/2, (h-1)/2)`, then shifted by `(a.dx, a.dy)`, so
 * `out(q) = in(p)` with `p = R(-angle)·(q - c - d)/scale + c`; then mirrored left-right if `flip`. A
 * sample between pixels blends its four neighbours, a neighbour outside the image counting as
 * `fill[c]`. With angle 0, scale 1 and integer shifts it equals `shiftFlip` exactly.
 *
 * @example
 * const out = new Float32Array(9);
 * const src = new Float32Array([0, 0, 0, 1, 2, 3, 0, 0, 0]); // a horizontal bar
 * affineWarp(src, 0, out, 0, { channels: 1, height: 3, width: 3 }, { angle: 90, scale: 1, dx: 0, dy: 0 }, false, [0]);
 * // out ≈ [0, 1, 0, 0, 2, 0, 0, 3, 0]: the bar turned clockwise into a vertical one
 */
export function affineWarp(
  src: Float32Array,
  srcOffset: number,
  dst: Float32Array,
  dstOffset: number,
  shape: ImageShape,
  a: AffineParams,
  flip: boolean,
  fill: number[],
): void {
  const { channels, height: h, width: w } = shape;
  const cx = (w - 1) / 2;
  const cy = (h - 1) / 2;
  const t = (a.angle * Math.PI) / 180;
  // Inverse map: p = R(-t)·(q - c - d)/s + c, with R(t) = [[cos, -sin], [sin, cos]] in (x, y-down).
  const cos = Math.cos(t) / a.scale;
  const sin = Math.sin(t) / a.scale;
  for (let c = 0; c < channels; c++) {
    const sp = srcOffset + c * h * w;
    const dp = dstOffset + c * h * w;
    const f = fill[c];
    const at = (x: number, y: number) => (x >= 0 && x < w && y >= 0 && y < h ? src[sp + y * w + x] : f);
    for (let y = 0; y < h; y++) {
      const qy = y - cy - a.dy;
      // Same arithmetic (and rounding) as the per-pixel form `cos*qx + sin*qy + cx`.
      const sinQy = sin * qy;
      const cosQy = cos * qy;
      for (let x = 0; x < w; x++) {
        const qx = x - cx - a.dx;
        const px = cos * qx + sinQy + cx;
        const py = -sin * qx + cosQy + cy;
        const x0 = Math.floor(px);
        const y0 = Math.floor(py);
        const fx = px - x0;
        const fy = py - y0;
        let v: number;
        if (x0 >= 0 && x0 < w - 1 && y0 >= 0 && y0 < h - 1) {
          // All four neighbours inside (most pixels): no bounds checks.
          const i = sp + y0 * w + x0;
          const top = src[i] * (1 - fx) + src[i + 1] * fx;
          const bottom = src[i + w] * (1 - fx) + src[i + w + 1] * fx;
          v = top * (1 - fy) + bottom * fy;
        } else if (x0 < -1 || x0 >= w || y0 < -1 || y0 >= h) v = f;
        else {
          const top = at(x0, y0) * (1 - fx) + (fx === 0 ? 0 : at(x0 + 1, y0) * fx);
          const bottom = fy === 0 ? 0 : at(x0, y0 + 1) * (1 - fx) + (fx === 0 ? 0 : at(x0 + 1, y0 + 1) * fx);
          v = top * (1 - fy) + bottom * fy;
        }
        dst[dp + y * w + (flip ? w - 1 - x : x)] = v;
      }
    }
  }
}

/**
 * Builds the training augmentation, driven by the batch iterator's seeded rng: random shift (crop with
 * padding), optional horizontal flip, and optional random rotation and zoom (a bilinear affine warp,
 * `affineWarp`). Per image it draws dx, then dy (if pad > 0), then the flip coin (if flip), then the
 * angle (if rotate > 0), then the zoom (if scale > 0); without rotation or zoom the images are exactly
 * those of the shift-only augmentation, so older runs resume unchanged.
 *
 * @example
 * const aug = makeAugment({ pad: 4, flip: true, fill: blackValue(split.mean, split.std) });
 * for (const b of batches(split.train, { batchSize: 128, shuffle: true, rng, augment: aug })) { ... }
 */
export function makeAugment(opts: AugmentOptions = {}): Augment {
  const pad = opts.pad ?? 0;
  const flip = opts.flip ?? false;
  const rotate = opts.rotate ?? 0;
  const scale = opts.scale ?? 0;
  if (!(Number.isInteger(pad) && pad >= 0)) {
    throw new UsageError(`augment: pad must be a non-negative integer, got ${pad}`);
  }
  if (!(Number.isFinite(rotate) && rotate >= 0 && rotate <= 180)) {
    throw new UsageError(`augment: rotate must be in [0, 180] degrees, got ${rotate}`);
  }
  if (!(Number.isFinite(scale) && scale >= 0 && scale < 1)) {
    throw new UsageError(`augment: scale must be in [0, 1), got ${scale}`);
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
    if (rotate === 0 && scale === 0) {
      shiftFlip(src, srcOffset, dst, dstOffset, shape, dx, dy, mirror, fill);
      return;
    }
    const angle = rotate > 0 ? (2 * rng.nextFloat() - 1) * rotate : 0;
    const zoom = scale > 0 ? 1 + (2 * rng.nextFloat() - 1) * scale : 1;
    affineWarp(src, srcOffset, dst, dstOffset, shape, { angle, scale: zoom, dx, dy }, mirror, fill);
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
