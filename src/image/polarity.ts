// Image polarity: light strokes on a dark background (MNIST) or dark strokes on a light one (ink on
// paper). A model trained on one polarity sees the other as a different picture, so the training
// data's polarity is recorded with the model and `predict` inverts inputs of the other one.
import { UsageError } from '../errors.js';
import type { RgbImage } from './decode.js';

/** `'light-on-dark'`: a dark background (MNIST); `'dark-on-light'`: a light background (paper). */
export type Polarity = 'light-on-dark' | 'dark-on-light';

/** The values `einvit_polarity` may take in preprocessor_config.json. */
export const POLARITIES: readonly Polarity[] = ['light-on-dark', 'dark-on-light'];

/** Width of the border ring read for the background: 1/14 of the short side (2 px of a 28 px digit). */
function ringWidth(width: number, height: number): number {
  return Math.max(1, Math.round(Math.min(width, height) / 14));
}

/** Median of the values `at(i)` for the pixels of the border ring of a `width` x `height` grid. */
function borderMedian(width: number, height: number, at: (i: number) => number): number {
  const r = ringWidth(width, height);
  const values: number[] = [];
  for (let y = 0; y < height; y++) {
    const inner = y >= r && y < height - r;
    for (let x = 0; x < width; x++) {
      if (inner && x >= r && x < width - r) continue;
      values.push(at(y * width + x));
    }
  }
  values.sort((a, b) => a - b);
  const m = values.length >> 1;
  return values.length % 2 ? values[m] : (values[m - 1] + values[m]) / 2;
}

/**
 * Median brightness (0..255, mean of R, G, B) of the image's border ring, which for a centred digit or
 * object is its background.
 *
 * @example
 * borderBrightness(mnistDigitAsRgb); // 0
 */
export function borderBrightness(img: RgbImage): number {
  const d = img.data;
  return borderMedian(img.width, img.height, (i) => (d[i * 3] + d[i * 3 + 1] + d[i * 3 + 2]) / 3);
}

/**
 * The polarity of one image, from its background: a border darker than mid-gray (128) means light
 * strokes on a dark background.
 *
 * @example
 * imagePolarity(loadImage('digit-on-paper.png')); // 'dark-on-light'
 */
export function imagePolarity(img: RgbImage): Polarity {
  return borderBrightness(img) < 128 ? 'light-on-dark' : 'dark-on-light';
}

/**
 * The photographic negative, `255 - v` for every channel.
 *
 * @example
 * invertImage({ width: 1, height: 1, data: new Uint8Array([0, 128, 255]) }).data; // [255, 127, 0]
 */
export function invertImage(img: RgbImage): RgbImage {
  return { width: img.width, height: img.height, data: img.data.map((v) => 255 - v) };
}

/** Normalised NCHW images, as a data set holds them, and the statistics that undo the normalisation. */
export interface NormalisedImages {
  images: Float32Array;
  count: number;
  channels: number;
  height: number;
  width: number;
  mean: readonly number[];
  std: readonly number[];
}

/**
 * The polarity of a training set, when nearly all of it has one: the background (border median) of up
 * to `sample` evenly spaced images, un-normalised with `mean`/`std`; at least 90% dark backgrounds give
 * `'light-on-dark'` (MNIST), 90% light ones `'dark-on-light'`, anything else (photos, CIFAR) undefined.
 *
 * @example
 * datasetPolarity({ ...split.train, mean: split.mean, std: split.std }); // 'light-on-dark' for MNIST
 */
export function datasetPolarity(ds: NormalisedImages, sample = 512): Polarity | undefined {
  const { count, channels, height, width, mean, std } = ds;
  if (mean.length < channels || std.length < channels) {
    throw new UsageError(
      `datasetPolarity: need ${channels} mean/std values, got ${mean.length}/${std.length}`,
    );
  }
  if (count === 0) return undefined;
  const plane = height * width;
  const n = Math.min(count, sample);
  let dark = 0;
  for (let k = 0; k < n; k++) {
    const base = Math.floor((k * count) / n) * channels * plane;
    const brightness = (i: number): number => {
      let sum = 0;
      for (let c = 0; c < channels; c++) sum += ds.images[base + c * plane + i] * std[c] + mean[c];
      return (255 * sum) / channels;
    };
    if (borderMedian(width, height, brightness) < 128) dark++;
  }
  if (dark >= 0.9 * n) return 'light-on-dark';
  if (n - dark >= 0.9 * n) return 'dark-on-light';
  return undefined;
}
