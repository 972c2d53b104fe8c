import { DataError, UsageError } from '../errors.js';
import type { RgbImage } from './decode.js';
import { resampleBilinear } from './resize.js';

export type Rgb = [number, number, number];
export type ColormapName = 'viridis' | 'inferno';

// Ten evenly spaced stops of matplotlib's perceptually uniform colormaps (0, 1/9, ..., 1).
const STOPS: Record<ColormapName, readonly string[]> = {
  viridis: [
    '440154',
    '482878',
    '3e4a89',
    '31688e',
    '26828e',
    '1f9e89',
    '35b779',
    '6dcd59',
    'b4de2c',
    'fde725',
  ],
  inferno: [
    '000004',
    '1b0c42',
    '4b0c6b',
    '781c6d',
    'a52c60',
    'cf4446',
    'ed6925',
    'fb9a06',
    'f7d03c',
    'fcffa4',
  ],
};

const TABLES: Record<ColormapName, Rgb[]> = {
  viridis: STOPS.viridis.map(hexToRgb),
  inferno: STOPS.inferno.map(hexToRgb),
};

function hexToRgb(hex: string): Rgb {
  return [0, 2, 4].map((i) => parseInt(hex.slice(i, i + 2), 16)) as Rgb;
}

function checkImage(img: RgbImage, what: string): void {
  if (img.data.length !== img.width * img.height * 3) {
    throw new DataError(
      `${what}: image data has ${img.data.length} bytes, expected ${img.width}x${img.height}x3`,
      { rule: 'bad-size' },
    );
  }
}

/**
 * Maps `v` in [0, 1] (clamped; NaN counts as 0) to a colour of a perceptual colormap, interpolating
 * linearly between ten stops. Values are rounded 0..255 integers.
 *
 * @example
 * heatmapColor(0); // [68, 1, 84]   (viridis dark purple)
 * heatmapColor(1); // [253, 231, 37] (viridis yellow)
 */
export function heatmapColor(v: number, colormap: ColormapName = 'viridis'): Rgb {
  const table = TABLES[colormap];
  const t = Number.isNaN(v) ? 0 : Math.min(1, Math.max(0, v));
  const pos = t * (table.length - 1);
  const i = Math.min(table.length - 2, Math.floor(pos));
  const f = pos - i;
  const a = table[i];
  const b = table[i + 1];
  return [0, 1, 2].map((c) => Math.round(a[c] + (b[c] - a[c]) * f)) as Rgb;
}

/**
 * Blends a colour-mapped heatmap over an image. `heat` is a `heatW` x `heatH` row-major grid (e.g. 14x14
 * attention over patches); it is upsampled bilinearly to the image size, min-max normalised to [0, 1]
 * (a constant map becomes all 0), coloured, and mixed as `(1 - alpha) * image + alpha * colour`.
 *
 * @example
 * const shown = overlayHeatmap(img224, attention14x14, 14, 14, 0.5);
 */
export function overlayHeatmap(
  img: RgbImage,
  heat: Float32Array,
  heatW: number,
  heatH: number,
  alpha = 0.5,
  colormap: ColormapName = 'viridis',
): RgbImage {
  checkImage(img, 'overlayHeatmap');
  if (!Number.isInteger(heatW) || !Number.isInteger(heatH) || heatW < 1 || heatH < 1) {
    throw new UsageError(`overlayHeatmap: heat size must be positive integers, got ${heatW}x${heatH}`, {
      rule: 'bad-size',
    });
  }
  if (heat.length !== heatW * heatH) {
    throw new UsageError(
      `overlayHeatmap: heat has ${heat.length} values, expected ${heatW}x${heatH} = ${heatW * heatH}`,
      { rule: 'bad-size' },
    );
  }
  if (!(alpha >= 0 && alpha <= 1)) {
    throw new UsageError(`overlayHeatmap: alpha must be in [0, 1], got ${alpha}`, { rule: 'bad-alpha' });
  }
  const bad = heat.findIndex((v) => !Number.isFinite(v));
  if (bad >= 0) {
    throw new DataError(`overlayHeatmap: heat[${bad}] is ${heat[bad]}, expected a finite number`, {
      rule: 'bad-value',
    });
  }
  const up = resampleBilinear(heat, heatW, heatH, 1, img.width, img.height);
  let lo = Infinity;
  let hi = -Infinity;
  for (const v of up) {
    if (v < lo) lo = v;
    if (v > hi) hi = v;
  }
  const range = hi - lo;
  const out = new Uint8Array(img.data.length);
  for (let i = 0; i < up.length; i++) {
    const col = heatmapColor(range > 0 ? (up[i] - lo) / range : 0, colormap);
    for (let c = 0; c < 3; c++) {
      out[i * 3 + c] = Math.round((1 - alpha) * img.data[i * 3 + c] + alpha * col[c]);
    }
  }
  return { width: img.width, height: img.height, data: out };
}

/**
 * Lays images out in a grid with `cols` columns. Every cell is as large as the largest image; smaller
 * images are centred in their cell. `pad` pixels of `background` separate cells and surround the grid.
 *
 * @example
 * const sheet = tileImages(digits.map((d) => upscaleNearest(d, 4)), 8);
 */
export function tileImages(
  images: RgbImage[],
  cols: number,
  pad = 4,
  background: Rgb | readonly number[] = [255, 255, 255],
): RgbImage {
  if (images.length === 0) {
    throw new UsageError('tileImages: no images to tile', { rule: 'empty-input' });
  }
  if (!Number.isInteger(cols) || cols < 1 || !Number.isInteger(pad) || pad < 0) {
    throw new UsageError(`tileImages: cols must be >= 1 and pad >= 0 integers, got cols=${cols} pad=${pad}`, {
      rule: 'bad-size',
    });
  }
  images.forEach((im, i) => checkImage(im, `tileImages: image ${i}`));
  const cellW = Math.max(...images.map((im) => im.width));
  const cellH = Math.max(...images.map((im) => im.height));
  const ncols = Math.min(cols, images.length);
  const nrows = Math.ceil(images.length / ncols);
  const width = ncols * cellW + (ncols + 1) * pad;
  const height = nrows * cellH + (nrows + 1) * pad;
  const data = new Uint8Array(width * height * 3);
  for (let i = 0; i < width * height; i++) data.set(background.slice(0, 3), i * 3);
  images.forEach((im, k) => {
    const x0 = pad + (k % ncols) * (cellW + pad) + Math.floor((cellW - im.width) / 2);
    const y0 = pad + Math.floor(k / ncols) * (cellH + pad) + Math.floor((cellH - im.height) / 2);
    for (let y = 0; y < im.height; y++) {
      const row = im.data.subarray(y * im.width * 3, (y + 1) * im.width * 3);
      data.set(row, ((y0 + y) * width + x0) * 3);
    }
  });
  return { width, height, data };
}

/**
 * Enlarges by an integer factor, each pixel becoming a `factor` x `factor` block (keeps MNIST's hard
 * pixel edges visible).
 *
 * @example
 * upscaleNearest(digit28, 8); // 224x224
 */
export function upscaleNearest(img: RgbImage, factor: number): RgbImage {
  checkImage(img, 'upscaleNearest');
  if (!Number.isInteger(factor) || factor < 1) {
    throw new UsageError(`upscaleNearest: factor must be a positive integer, got ${factor}`, {
      rule: 'bad-size',
    });
  }
  const width = img.width * factor;
  const height = img.height * factor;
  const data = new Uint8Array(width * height * 3);
  for (let y = 0; y < height; y++) {
    const sy = Math.floor(y / factor);
    for (let x = 0; x < width; x++) {
      const s = (sy * img.width + Math.floor(x / factor)) * 3;
      const d = (y * width + x) * 3;
      data[d] = img.data[s];
      data[d + 1] = img.data[s + 1];
      data[d + 2] = img.data[s + 2];
    }
  }
  return { width, height, data };
}

function toByte(v: number): number {
  return Math.min(255, Math.max(0, Math.round(v * 255)));
}

/**
 * Undoes normalisation of a CHW model input (`x = (pixel / 255 - mean) / std`) and returns a displayable
 * RGB image. One channel (length `w*h`) is shown as gray; three channels (length `3*w*h`) as RGB.
 *
 * @example
 * const shown = chwToRgb(input.data, 224, 224, [0.5, 0.5, 0.5], [0.5, 0.5, 0.5]);
 */
export function chwToRgb(
  chw: Float32Array,
  width: number,
  height: number,
  mean: readonly number[] = [0, 0, 0],
  std: readonly number[] = [1, 1, 1],
): RgbImage {
  const n = width * height;
  const channels = chw.length / n;
  if (!Number.isInteger(width) || !Number.isInteger(height) || n < 1 || (channels !== 1 && channels !== 3)) {
    throw new UsageError(`chwToRgb: ${chw.length} values is not 1 or 3 channels of ${width}x${height}`, {
      rule: 'bad-size',
    });
  }
  if (mean.length < channels || std.length < channels) {
    throw new UsageError(`chwToRgb: need ${channels} mean/std values, got ${mean.length}/${std.length}`, {
      rule: 'bad-normalisation',
    });
  }
  const data = new Uint8Array(n * 3);
  for (let i = 0; i < n; i++) {
    for (let c = 0; c < 3; c++) {
      const src = channels === 1 ? 0 : c;
      data[i * 3 + c] = toByte(chw[src * n + i] * std[src] + mean[src]);
    }
  }
  return { width, height, data };
}

/**
 * Turns a normalised single-channel input (e.g. an MNIST digit, `w*h` values) into a gray RGB image.
 *
 * @example
 * const digit = grayToRgb(x, 28, 28, 0.1307, 0.3081);
 */
export function grayToRgb(
  chw: Float32Array,
  width: number,
  height: number,
  mean: number | readonly number[] = 0,
  std: number | readonly number[] = 1,
): RgbImage {
  if (chw.length !== width * height) {
    throw new UsageError(`grayToRgb: ${chw.length} values, expected ${width}x${height} = ${width * height}`, {
      rule: 'bad-size',
    });
  }
  const m = typeof mean === 'number' ? mean : mean[0];
  const s = typeof std === 'number' ? std : std[0];
  return chwToRgb(chw, width, height, [m], [s]);
}
