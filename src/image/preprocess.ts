import { EinopsError } from '../errors.js';
import type { RgbImage } from './decode.js';
import { resizeBilinear } from './resize.js';

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
function luma(r: number, g: number, b: number): number {
  return (r * 19595 + g * 38470 + b * 7471 + 0x8000) >> 16;
}

/**
 * Resize (Pillow-exact bilinear) -> rescale by 1/255 -> normalise per channel, returning CHW float32.
 * With `channels: 1` the image is first reduced to luminance (rounded to 8 bits like PIL's `L` mode).
 *
 * @example
 * const { data, channels, height, width } = preprocess(img, { size: 224, mean: [0.5, 0.5, 0.5], std: [0.5, 0.5, 0.5] });
 * // data.length === 3 * 224 * 224, laid out channel-major
 */
export function preprocess(img: RgbImage, config: PreprocessConfig): PreprocessedImage {
  const channels = config.channels ?? 3;
  const [height, width] = typeof config.size === 'number' ? [config.size, config.size] : config.size;
  if (config.mean.length !== channels || config.std.length !== channels) {
    throw new EinopsError(
      `preprocess: mean and std need ${channels} values for ${channels} channel(s), got ${config.mean.length} and ${config.std.length}`,
      { rule: 'bad-normalisation' },
    );
  }
  if (config.std.some((s) => !(s !== 0 && Number.isFinite(s)))) {
    throw new EinopsError(`preprocess: std must be finite and non-zero, got [${config.std.join(', ')}]`, {
      rule: 'bad-normalisation',
    });
  }
  if (img.data.length !== img.width * img.height * 3) {
    throw new EinopsError(
      `preprocess: image data has ${img.data.length} bytes, expected ${img.width}x${img.height}x3`,
      { rule: 'bad-size' },
    );
  }
  const resized = img.width === width && img.height === height ? img : resizeBilinear(img, width, height);
  const n = width * height;
  const data = new Float32Array(channels * n);
  const px = resized.data;
  // As HuggingFace does it: rescale in float64 then cast to float32, then (x - mean) / std in float32.
  const scale = 1 / 255;
  for (let c = 0; c < channels; c++) {
    const mean = Math.fround(config.mean[c]);
    const std = Math.fround(config.std[c]);
    for (let i = 0; i < n; i++) {
      const v = channels === 3 ? px[i * 3 + c] : luma(px[i * 3], px[i * 3 + 1], px[i * 3 + 2]);
      const x = Math.fround(v * scale);
      data[c * n + i] = Math.fround(x - mean) / std;
    }
  }
  return { data, channels, height, width };
}
