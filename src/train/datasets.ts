// `--data` specs: mnist | cifar10:<dir> | folder:<dir>.
import { UsageError } from '../errors.js';
import type { DataSplit, Dataset } from './data.js';
import { loadMnist } from './mnist.js';
import { loadCifar10 } from './cifar10.js';
import { loadImageFolder } from './folder.js';

export interface LoadOptions {
  limitTrain?: number;
  limitTest?: number;
  /** Image side and channels for folder data (from the model config). */
  imageSize?: number;
  channels?: 1 | 3;
}

/** Evenly spaced samples of a dataset (keeps class balance whatever the stored order). */
export function subset(ds: Dataset, n: number | undefined): Dataset {
  if (n === undefined || n >= ds.count) return ds;
  if (!Number.isSafeInteger(n) || n < 1) throw new UsageError(`limit must be a positive integer, got ${n}`);
  const per = ds.channels * ds.height * ds.width;
  const images = new Float32Array(n * per);
  const labels = new Int32Array(n);
  for (let i = 0; i < n; i++) {
    const src = Math.floor((i * ds.count) / n);
    images.set(ds.images.subarray(src * per, (src + 1) * per), i * per);
    labels[i] = ds.labels[src];
  }
  return { ...ds, images, labels, count: n };
}

/**
 * Loads the data a `--data` spec names.
 *
 * @example
 * const split = loadData('mnist');
 * const cifar = loadData('cifar10:data/cifar-10-batches-bin');
 */
export function loadData(spec: string, opts: LoadOptions = {}): DataSplit {
  let split: DataSplit;
  if (spec === 'mnist') {
    split = loadMnist();
  } else if (spec.startsWith('cifar10:')) {
    split = loadCifar10(spec.slice('cifar10:'.length), {
      limitTrain: opts.limitTrain,
      limitTest: opts.limitTest,
    });
  } else if (spec.startsWith('folder:')) {
    split = loadImageFolder(spec.slice('folder:'.length), { size: opts.imageSize, channels: opts.channels });
  } else {
    throw new UsageError(`--data '${spec}' must be mnist, cifar10:<dir> or folder:<dir>`);
  }
  return { ...split, train: subset(split.train, opts.limitTrain), test: subset(split.test, opts.limitTest) };
}
