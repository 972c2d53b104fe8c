import { DataError, UsageError } from '../errors.js';
import type { RgbImage } from './decode.js';
import { resizeBilinear } from './resize.js';
import { imagePolarity, invertImage, type Polarity } from './polarity.js';

/** Settings of an image-classification preprocessor: resize, then `(x / 255 - mean) / std`. */
export interface PreprocessConfig {
  /** Target size: one number for a square, or `[height, width]`. */
  size: number | [number, number];
  /** Per-channel mean subtracted after rescaling to [0, 1] (3 values, or 1 when `channels` is 1). */
  mean: readonly number[];
  /** Per-channel standard deviation divided by after the mean (same length as `mean`). */
  std: readonly number[];
  /** 3 (default) keeps RGB; 1 converts to luminance first (for MNIST-style models). */
  channels?: 1 | 3;
  /**
   * The polarity of the images the model was trained on (`einvit_polarity` in preprocessor_config.json):
   * `'light-on-dark'` for MNIST-style white strokes on black. {@link prepareImage} inverts inputs of the
   * other polarity. Undefined: mixed or unknown, nothing is inverted.
   */
  polarity?: Polarity;
}

/** A model input: CHW float32 values. */
export interface PreprocessedImage {
  data: Float32Array;
  channels: number;
  height: number;
  width: number;
}

/**
 * What `google/vit-base-patch16-224`'s preprocessor_config.json asks for (HuggingFace ViTImageProcessor):
 * resize to 224x224 with PIL bilinear (resample=2), rescale by 1/255, normalise with mean 0.5 and std 0.5
 * per channel, so pixels land in [-1, 1]. No centre crop.
 *
 * @example
 * const x = preprocess(loadImage('cat.jpg'), HF_VIT_PREPROCESSING);
 */
export const HF_VIT_PREPROCESSING = {
  size: 224,
  resample: 'bilinear',
  rescale: 1 / 255,
  mean: [0.5, 0.5, 0.5],
  std: [0.5, 0.5, 0.5],
} as const;

/** ImageNet channel means used by most timm models (`IMAGENET_DEFAULT_MEAN`). */
export const IMAGENET_DEFAULT_MEAN = [0.485, 0.456, 0.406] as const;
/** ImageNet channel standard deviations used by most timm models (`IMAGENET_DEFAULT_STD`). */
export const IMAGENET_DEFAULT_STD = [0.229, 0.224, 0.225] as const;

/**
 * Preprocessing for timm ViTs trained with ImageNet statistics: 224x224 bilinear resize, rescale 1/255,
 * mean (0.485, 0.456, 0.406), std (0.229, 0.224, 0.225). (timm's own eval transform first resizes the
 * short side to 248 and centre-crops 224; use `resizeShortSide` + `centerCrop` beforehand for that.)
 *
 * @example
 * const x = preprocess(img, IMAGENET_PREPROCESSING);
 */
export const IMAGENET_PREPROCESSING = {
  size: 224,
  resample: 'bilinear',
  rescale: 1 / 255,
  mean: IMAGENET_DEFAULT_MEAN,
  std: IMAGENET_DEFAULT_STD,
} as const;

/** ITU-R 601-2 luma in 16-bit fixed point, as PIL's `convert('L')` computes it. */
export function luma(r: number, g: number, b: number): number {
  return (r * 19595 + g * 38470 + b * 7471 + 0x8000) >> 16;
}

/** 8-bit pixels after resizing and channel conversion, before normalisation. */
export interface PixelBytes {
  /** CHW bytes. */
  data: Uint8Array;
  channels: number;
  height: number;
  width: number;
}

function targetSize(config: Pick<PreprocessConfig, 'size'>): [number, number] {
  return typeof config.size === 'number' ? [config.size, config.size] : config.size;
}

/**
 * The first half of {@link preprocess}: resize (Pillow-exact bilinear) and, with `channels: 1`, reduce
 * to 8-bit luminance as PIL's `L` mode does. Returns CHW bytes. Training on image folders keeps these
 * bytes to compute the normalisation statistics, then normalises them with {@link normalizePixels}, so
 * training and `predict` feed the model identical values.
 *
 * @example
 * const px = toPixels(loadImage('7.png'), { size: 28, channels: 1 }); // px.data.length === 784
 */
export function toPixels(img: RgbImage, config: Pick<PreprocessConfig, 'size' | 'channels'>): PixelBytes {
  const channels = config.channels ?? 3;
  const [height, width] = targetSize(config);
  if (img.data.length !== img.width * img.height * 3) {
    throw new DataError(
      `preprocess: image data has ${img.data.length} bytes, expected ${img.width}x${img.height}x3`,
      { rule: 'bad-size' },
    );
  }
  const resized = img.width === width && img.height === height ? img : resizeBilinear(img, width, height);
  const n = width * height;
  const px = resized.data;
  const data = new Uint8Array(channels * n);
  if (channels === 3) {
    for (let i = 0; i < n; i++) {
      data[i] = px[i * 3];
      data[n + i] = px[i * 3 + 1];
      data[2 * n + i] = px[i * 3 + 2];
    }
  } else {
    for (let i = 0; i < n; i++) data[i] = luma(px[i * 3], px[i * 3 + 1], px[i * 3 + 2]);
  }
  return { data, channels, height, width };
}

function checkNormalisation(config: Pick<PreprocessConfig, 'mean' | 'std'>, channels: number): void {
  if (config.mean.length !== channels || config.std.length !== channels) {
    throw new UsageError(
      `preprocess: mean and std need ${channels} values for ${channels} channel(s), got ${config.mean.length} and ${config.std.length}`,
      { rule: 'bad-normalisation' },
    );
  }
  if (config.std.some((s) => !(s !== 0 && Number.isFinite(s)))) {
    throw new UsageError(`preprocess: std must be finite and non-zero, got [${config.std.join(', ')}]`, {
      rule: 'bad-normalisation',
    });
  }
}

/**
 * The second half of {@link preprocess}: `(byte / 255 - mean[c]) / std[c]` per channel, with
 * HuggingFace's rounding (rescale in float64, cast to float32, then subtract and divide in float32).
 * Writes into `out` at `offset` when given.
 *
 * @example
 * normalizePixels(new Uint8Array([0, 255]), 1, [0.5], [0.5]); // Float32Array [-1, 1]
 */
export function normalizePixels(
  bytes: Uint8Array,
  channels: number,
  mean: readonly number[],
  std: readonly number[],
  out = new Float32Array(bytes.length),
  offset = 0,
): Float32Array {
  checkNormalisation({ mean, std }, channels);
  const n = bytes.length / channels;
  const scale = 1 / 255;
  for (let c = 0; c < channels; c++) {
    const m = Math.fround(mean[c]);
    const s = Math.fround(std[c]);
    for (let i = c * n, end = i + n; i < end; i++) {
      out[offset + i] = Math.fround(Math.fround(bytes[i] * scale) - m) / s;
    }
  }
  return out;
}

/**
 * Resize (Pillow-exact bilinear) -> rescale by 1/255 -> normalise per channel, returning CHW float32.
 * With `channels: 1` the image is first reduced to luminance (rounded to 8 bits like PIL's `L` mode).
 * The same two stages ({@link toPixels}, {@link normalizePixels}) prepare image-folder training data.
 *
 * @example
 * const { data, channels, height, width } = preprocess(img, { size: 224, mean: [0.5, 0.5, 0.5], std: [0.5, 0.5, 0.5] });
 * // data.length === 3 * 224 * 224, laid out channel-major
 */
export function preprocess(img: RgbImage, config: PreprocessConfig): PreprocessedImage {
  const channels = config.channels ?? 3;
  checkNormalisation(config, channels);
  const px = toPixels(img, config);
  return { ...px, data: normalizePixels(px.data, channels, config.mean, config.std) };
}

/** Whether {@link prepareImage} may invert an input: `'auto'` when its polarity differs from training. */
export type InvertMode = 'auto' | 'always' | 'never';

/** A model input plus what was done to get it. */
export interface PreparedImage extends PreprocessedImage {
  /** Whether the image was inverted (255 - v) before preprocessing. */
  inverted: boolean;
  /** The input image's polarity, from its border (see {@link imagePolarity}). */
  polarity: Polarity;
  /** One line saying what was done and why, when something was inverted or could have been. */
  note?: string;
}

/**
 * {@link preprocess} for serving: first inverts the image when `invert` is `'always'`, or when it is
 * `'auto'` (default), the config records the training data's polarity, and this image's polarity (read
 * from its border) is the other one: a dark digit on white paper shown to an MNIST model.
 *
 * @example
 * const x = prepareImage(loadImage('digit-on-paper.png'), { ...pre, polarity: 'light-on-dark' });
 * x.inverted; // true
 * x.note; // 'inverted: dark-on-light image, the model was trained on light-on-dark (--invert never to keep it)'
 */
export function prepareImage(
  img: RgbImage,
  config: PreprocessConfig,
  invert: InvertMode = 'auto',
): PreparedImage {
  const polarity = imagePolarity(img);
  const trained = config.polarity;
  let inverted = false;
  let note: string | undefined;
  if (invert === 'always') {
    inverted = true;
    note = 'inverted (--invert always)';
  } else if (trained !== undefined && polarity !== trained) {
    inverted = invert === 'auto';
    note = inverted
      ? `inverted: ${polarity} image, the model was trained on ${trained} (--invert never to keep it)`
      : `not inverted (--invert never): ${polarity} image, the model was trained on ${trained}`;
  }
  const x = preprocess(inverted ? invertImage(img) : img, config);
  return { ...x, inverted, polarity, note };
}
