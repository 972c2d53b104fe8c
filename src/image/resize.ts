import { UsageError } from '../errors.js';
import type { RgbImage } from './decode.js';

/*
 * Separable convolution resampling with a triangle (bilinear) kernel, following the algorithm Pillow
 * uses for Image.resize(..., BILINEAR): output pixel i samples around centre (i + 0.5) * scale in input
 * pixel coordinates; when shrinking (scale > 1) the kernel is widened by `scale`, which averages over
 * every input pixel it covers (antialiasing). For 8-bit images the weights are fixed point with 22
 * fractional bits and the horizontal pass is rounded to 8 bits before the vertical pass, as in Pillow,
 * so results are bit-identical to PIL rather than merely close.
 */

const PRECISION_BITS = 32 - 8 - 2;
const ONE = 2 ** PRECISION_BITS;
const HALF = 2 ** (PRECISION_BITS - 1);

interface Coeffs {
  /** First input index of each output pixel's window. */
  start: Int32Array;
  /** Window length for each output pixel. */
  count: Int32Array;
  /** Normalised weights, `ksize` per output pixel. */
  weights: Float64Array;
  ksize: number;
}

function triangle(x: number): number {
  const a = x < 0 ? -x : x;
  return a < 1 ? 1 - a : 0;
}

function computeCoeffs(inSize: number, outSize: number): Coeffs {
  const scale = inSize / outSize;
  const filterscale = scale < 1 ? 1 : scale;
  const support = 1 * filterscale; // triangle support is 1
  const ksize = Math.ceil(support) * 2 + 1;
  const start = new Int32Array(outSize);
  const count = new Int32Array(outSize);
  const weights = new Float64Array(outSize * ksize);
  const ss = 1 / filterscale;
  for (let xx = 0; xx < outSize; xx++) {
    const center = (xx + 0.5) * scale;
    let xmin = Math.trunc(center - support + 0.5);
    if (xmin < 0) xmin = 0;
    let xmax = Math.trunc(center + support + 0.5);
    if (xmax > inSize) xmax = inSize;
    xmax -= xmin;
    let total = 0;
    for (let x = 0; x < xmax; x++) {
      const w = triangle((x + xmin - center + 0.5) * ss);
      weights[xx * ksize + x] = w;
      total += w;
    }
    if (total !== 0) for (let x = 0; x < xmax; x++) weights[xx * ksize + x] /= total;
    start[xx] = xmin;
    count[xx] = xmax;
  }
  return { start, count, weights, ksize };
}

function fixedPoint(w: Float64Array): Float64Array {
  // Pillow rounds half away from zero when converting the double weights to ints.
  return w.map((v) => (v < 0 ? Math.trunc(-0.5 + v * ONE) : Math.trunc(0.5 + v * ONE)));
}

function clip8(v: number): number {
  if (v >= ONE * 256) return 255;
  if (v <= 0) return 0;
  return Math.floor(v / ONE);
}

type Pixels = Uint8Array | Float32Array;

/**
 * One 1-D pass over an HWC buffer. `horizontal` resamples along x (width inW -> out), otherwise along
 * y (height inH -> out). 8-bit input gives 8-bit output with Pillow's fixed-point rounding.
 */
function pass(src: Pixels, inW: number, inH: number, ch: number, out: number, horizontal: boolean): Pixels {
  const c = computeCoeffs(horizontal ? inW : inH, out);
  const quant = src instanceof Uint8Array;
  const k = quant ? fixedPoint(c.weights) : c.weights;
  const outW = horizontal ? out : inW;
  const outH = horizontal ? inH : out;
  const dst = quant ? new Uint8Array(outW * outH * ch) : new Float32Array(outW * outH * ch);
  const step = horizontal ? ch : inW * ch; // stride between neighbours along the resampled axis
  for (let y = 0; y < outH; y++) {
    for (let x = 0; x < outW; x++) {
      const i = horizontal ? x : y;
      const base = horizontal ? (y * inW + c.start[i]) * ch : (c.start[i] * inW + x) * ch;
      const n = c.count[i];
      const kOff = i * c.ksize;
      for (let ci = 0; ci < ch; ci++) {
        let s = quant ? HALF : 0;
        let p = base + ci;
        for (let t = 0; t < n; t++, p += step) s += src[p] * k[kOff + t];
        dst[(y * outW + x) * ch + ci] = quant ? clip8(s) : s;
      }
    }
  }
  return dst;
}

function checkTarget(width: number, height: number, what: string): void {
  if (!Number.isInteger(width) || !Number.isInteger(height) || width < 1 || height < 1) {
    throw new UsageError(`${what}: target size must be positive integers, got ${width}x${height}`, {
      rule: 'bad-size',
    });
  }
}

/**
 * Resamples an HWC buffer with `channels` channels: `Uint8Array` input matches Pillow's 8-bit BILINEAR
 * exactly; `Float32Array` input uses the same weights without rounding (for heatmaps and masks).
 *
 * @example
 * const big = resampleBilinear(new Float32Array([0, 1, 1, 0]), 2, 2, 1, 224, 224);
 */
export function resampleBilinear<T extends Pixels>(
  data: T,
  width: number,
  height: number,
  channels: number,
  outWidth: number,
  outHeight: number,
): T {
  checkTarget(outWidth, outHeight, 'resampleBilinear');
  if (data.length !== width * height * channels) {
    throw new UsageError(
      `resampleBilinear: buffer has ${data.length} values, expected ${width}x${height}x${channels} = ${width * height * channels}`,
      { rule: 'bad-size' },
    );
  }
  let cur: Pixels = data;
  // Pillow skips a pass when that dimension is unchanged.
  if (outWidth !== width) cur = pass(cur, width, height, channels, outWidth, true);
  if (outHeight !== height) cur = pass(cur, outWidth, height, channels, outHeight, false);
  if (cur === data) cur = data.slice();
  return cur as T;
}

/**
 * Resizes like Pillow's `img.resize((width, height), Image.BILINEAR)`, which is what HuggingFace's
 * ViTImageProcessor does (antialiased when shrinking, pixel-centre aligned). Output is bit-identical to
 * Pillow for 8-bit RGB.
 *
 * @example
 * const small = resizeBilinear(loadImage('cat.jpg'), 224, 224);
 */
export function resizeBilinear(img: RgbImage, width: number, height: number): RgbImage {
  checkTarget(width, height, 'resizeBilinear');
  const data = resampleBilinear(img.data, img.width, img.height, 3, width, height);
  return { width, height, data };
}

/**
 * Resizes so the shorter side becomes `size`, keeping the aspect ratio (the longer side is truncated
 * like torchvision's `Resize(int)`), e.g. before a {@link centerCrop} in timm-style evaluation.
 *
 * @example
 * resizeShortSide({ width: 640, height: 480, data }, 256); // 341x256
 */
export function resizeShortSide(img: RgbImage, size: number): RgbImage {
  const { width: w, height: h } = img;
  if (w <= h) return resizeBilinear(img, size, Math.trunc((size * h) / w));
  return resizeBilinear(img, Math.trunc((size * w) / h), size);
}

/**
 * Cuts the central `width` x `height` window; the offset is `floor((W - width) / 2)` as in
 * HuggingFace's `center_crop`. Throws `UsageError` when the crop is larger than the image.
 *
 * @example
 * centerCrop(resizeShortSide(img, 256), 224, 224);
 */
export function centerCrop(img: RgbImage, width: number, height: number): RgbImage {
  checkTarget(width, height, 'centerCrop');
  if (width > img.width || height > img.height) {
    throw new UsageError(
      `centerCrop: crop ${width}x${height} is larger than the image ${img.width}x${img.height}`,
      { rule: 'bad-size' },
    );
  }
  const left = Math.floor((img.width - width) / 2);
  const top = Math.floor((img.height - height) / 2);
  const data = new Uint8Array(width * height * 3);
  for (let y = 0; y < height; y++) {
    const from = ((top + y) * img.width + left) * 3;
    data.set(img.data.subarray(from, from + width * 3), y * width * 3);
  }
  return { width, height, data };
}
