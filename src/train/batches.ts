import { UsageError } from '../errors.js';
import type { Augment } from './augment.js';
import type { Dataset } from './data.js';
import type { Rng } from './random.js';

export interface BatchOptions {
  batchSize: number;
  /** Visit the samples in a fresh random order (drawn from `rng`). */
  shuffle: boolean;
  /** Needed when `shuffle` or `augment` is set. Advanced in place, so save `rng.state` for resuming. */
  rng?: Rng;
  /** Per-image augmentation (training only; leave unset for evaluation). */
  augment?: Augment;
  /** Skip the last batch if it is smaller than batchSize. Default false. */
  dropLast?: boolean;
  /**
   * Resume mid-epoch: do not yield the first `skipBatches` batches, but still draw their augmentation
   * randomness, so with the rng state saved at the start of the epoch the remaining batches are exactly
   * those of the uninterrupted run. Default 0.
   */
  skipBatches?: number;
}

export interface Batch {
  /** size*C*H*W values, NCHW; a fresh array per batch. */
  images: Float32Array;
  labels: Int32Array;
  size: number;
  /** Which dataset samples went into this batch. */
  indices: Int32Array;
}

/**
 * Number of batches one epoch yields.
 *
 * @example
 * batchCount(8000, 128, false); // 63
 */
export function batchCount(count: number, batchSize: number, dropLast = false): number {
  return dropLast ? Math.floor(count / batchSize) : Math.ceil(count / batchSize);
}

/**
 * Yields one epoch of `ds` as batches of copied images and labels. With `shuffle` the order is a
 * Fisher-Yates permutation drawn from `rng` at the start of the epoch; `augment` is applied per image,
 * in batch order, with the same `rng`, so the whole epoch is a function of the rng state at the start.
 *
 * @example
 * const rng = new Rng(1);
 * for (const { images, labels, size } of batches(split.train, { batchSize: 64, shuffle: true, rng })) {
 *   const x = tf.tensor4d(images, [size, 1, 28, 28]);
 * }
 */
export function* batches(ds: Dataset, opts: BatchOptions): Generator<Batch, void, undefined> {
  const { batchSize, shuffle, rng, augment } = opts;
  if (!(Number.isInteger(batchSize) && batchSize > 0)) {
    throw new UsageError(`batches: batchSize must be a positive integer, got ${batchSize}`);
  }
  if ((shuffle || augment) && !rng) {
    throw new UsageError('batches: shuffle and augment need an rng');
  }
  const order = Int32Array.from({ length: ds.count }, (_, i) => i);
  if (shuffle) rng!.shuffle(order);
  const shape = { channels: ds.channels, height: ds.height, width: ds.width };
  const imageSize = ds.channels * ds.height * ds.width;
  const n = batchCount(ds.count, batchSize, opts.dropLast ?? false);
  const skip = opts.skipBatches ?? 0;
  if (!(Number.isInteger(skip) && skip >= 0)) {
    throw new UsageError(`batches: skipBatches must be a non-negative integer, got ${skip}`);
  }
  const scratch = augment && skip > 0 ? new Float32Array(imageSize) : undefined;
  for (let b = 0; b < n; b++) {
    const start = b * batchSize;
    const size = Math.min(batchSize, ds.count - start);
    if (b < skip) {
      if (scratch)
        for (let i = 0; i < size; i++)
          augment!(ds.images, order[start + i] * imageSize, scratch, 0, shape, rng!);
      continue;
    }
    const images = new Float32Array(size * imageSize);
    const labels = new Int32Array(size);
    const indices = order.slice(start, start + size);
    for (let i = 0; i < size; i++) {
      const k = indices[i];
      labels[i] = ds.labels[k];
      if (augment) augment(ds.images, k * imageSize, images, i * imageSize, shape, rng!);
      else images.set(ds.images.subarray(k * imageSize, (k + 1) * imageSize), i * imageSize);
    }
    yield { images, labels, size, indices };
  }
}
