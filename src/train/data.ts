/**
 * In-memory image classification datasets shared by the MNIST, CIFAR-10 and image-folder loaders.
 * Everything is held as one flat NCHW `Float32Array`, already normalised, so batching and augmentation
 * are plain array copies with no tensors involved.
 */
export interface Dataset {
  name: string;
  /** N*C*H*W values in NCHW order, already normalised with the split's mean/std. */
  images: Float32Array;
  labels: Int32Array;
  count: number;
  channels: number;
  height: number;
  width: number;
  numClasses: number;
  classNames: string[];
}

/** A train/test pair plus the per-channel mean and std (of [0,1] pixels) used to normalise both. */
export interface DataSplit {
  train: Dataset;
  test: Dataset;
  mean: number[];
  std: number[];
}

/**
 * Normalises `images` (NCHW, values in [0,1]) in place: `(x - mean[c]) / std[c]`, where each image has
 * `channels` planes of `planeSize` (= H*W) values.
 *
 * @example
 * const x = new Float32Array([0, 1]);
 * normalizeInPlace(x, 1, 2, [0.5], [0.5]); // x = [-1, 1]
 */
export function normalizeInPlace(
  images: Float32Array,
  channels: number,
  planeSize: number,
  mean: number[],
  std: number[],
): void {
  const imageSize = channels * planeSize;
  for (let c = 0; c < channels; c++) {
    const m = mean[c];
    const inv = 1 / std[c];
    for (let base = c * planeSize; base < images.length; base += imageSize) {
      for (let i = base, end = base + planeSize; i < end; i++) images[i] = (images[i] - m) * inv;
    }
  }
}

/**
 * The normalised value of a black (0) pixel per channel, `(0 - mean) / std`: the fill value for padding
 * so a shifted-in border looks like black in the original image.
 *
 * @example
 * blackValue([0.1307], [0.3081]); // [-0.4242...]
 */
export function blackValue(mean: number[], std: number[]): number[] {
  return mean.map((m, c) => (0 - m) / std[c]);
}

/**
 * Lookup table of normalised values for every byte of every channel: `lut[c * 256 + b] = (b/255 - mean[c]) / std[c]`.
 * Converting bytes through it does scaling and normalisation in one pass.
 *
 * @example
 * byteLut([0.5], [0.5])[255]; // 1
 */
export function byteLut(mean: number[], std: number[]): Float32Array {
  const lut = new Float32Array(mean.length * 256);
  mean.forEach((m, c) => {
    for (let b = 0; b < 256; b++) lut[c * 256 + b] = (b / 255 - m) / std[c];
  });
  return lut;
}
