import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { CIFAR10_LABELS } from '../vit/config.js';
import { join } from 'node:path';
import { EinopsError } from '../errors.js';
import { byteLut, type DataSplit, type Dataset } from './data.js';

/** Standard CIFAR-10 per-channel statistics of [0,1] pixels (training set). */
export const CIFAR10_MEAN = [0.4914, 0.4822, 0.4465];
export const CIFAR10_STD = [0.247, 0.2435, 0.2616];
/** CIFAR-10's class names in label order (shared with the `cifar-tiny` preset's id2label). */
export const CIFAR10_CLASSES: readonly string[] = CIFAR10_LABELS;

const SIDE = 32;
const PLANE = SIDE * SIDE;
const PIXELS = 3 * PLANE;
const RECORD = 1 + PIXELS;

export interface Cifar10Options {
  /** Keep only the first N training records (in file order; later files are not read). */
  limitTrain?: number;
  /** Keep only the first N test records. */
  limitTest?: number;
}

/** Reads one binary batch file, checking its size and labels; returns the file bytes and record count. */
function readBatch(path: string): { bytes: Buffer; records: number } {
  let bytes: Buffer;
  try {
    bytes = readFileSync(path);
  } catch (e) {
    throw new EinopsError(`cannot read CIFAR-10 file ${path}: ${(e as Error).message}`, { cause: e });
  }
  if (bytes.length === 0 || bytes.length % RECORD !== 0) {
    throw new EinopsError(
      `CIFAR-10 file ${path} has ${bytes.length} bytes, not a positive multiple of ${RECORD} (1 label byte + 3072 pixel bytes)`,
      { rule: 'cifar-size' },
    );
  }
  const records = bytes.length / RECORD;
  for (let r = 0; r < records; r++) {
    const label = bytes[r * RECORD];
    if (label > 9) {
      throw new EinopsError(`CIFAR-10 file ${path}: record ${r} has label ${label}, expected 0-9`, {
        rule: 'cifar-label',
      });
    }
  }
  return { bytes, records };
}

function toDataset(name: string, files: string[], limit: number | undefined): Dataset {
  // With a limit, files past the one that fills it are neither read nor checked.
  const batches: { bytes: Buffer; records: number }[] = [];
  let available = 0;
  for (const f of files) {
    if (limit !== undefined && available >= limit) break;
    const batch = readBatch(f);
    batches.push(batch);
    available += batch.records;
  }
  const count = limit === undefined ? available : Math.min(available, limit);
  const images = new Float32Array(count * PIXELS);
  const labels = new Int32Array(count);
  const lut = byteLut(CIFAR10_MEAN, CIFAR10_STD);
  let n = 0;
  for (const { bytes, records } of batches) {
    for (let r = 0; r < records && n < count; r++, n++) {
      const off = r * RECORD;
      labels[n] = bytes[off];
      const base = n * PIXELS;
      // The record's 3072 bytes are already R, G, B planes of 32x32 in row-major order: exactly CHW.
      for (let c = 0; c < 3; c++) {
        const start = c * PLANE;
        const lutBase = c * 256;
        for (let i = start; i < start + PLANE; i++) images[base + i] = lut[lutBase + bytes[off + 1 + i]];
      }
    }
  }
  return {
    name,
    images,
    labels,
    count,
    channels: 3,
    height: SIDE,
    width: SIDE,
    numClasses: 10,
    classNames: [...CIFAR10_CLASSES],
  };
}

function checkLimit(name: string, value: number | undefined): void {
  if (value !== undefined && !(Number.isInteger(value) && value > 0)) {
    throw new EinopsError(`loadCifar10: ${name} must be a positive integer, got ${value}`);
  }
}

/**
 * Loads CIFAR-10 from the official binary version (the `cifar-10-batches-bin` folder): training images
 * from whichever `data_batch_<n>.bin` files exist (in numeric order, at least one), test images from
 * `test_batch.bin`. Each record is 1 label byte followed by 3072 bytes: the R, G and B planes of a 32x32
 * image. If `dir` itself holds no batches but has a `cifar-10-batches-bin` sub-folder, that is used.
 *
 * Pixels are scaled to [0,1] and normalised with mean (0.4914, 0.4822, 0.4465) and std (0.2470, 0.2435,
 * 0.2616). All 60,000 images take 737 MB as float32.
 *
 * @example
 * const { train, test } = loadCifar10('data/cifar-10-batches-bin', { limitTrain: 5000 });
 * train.channels; // 3
 */
export function loadCifar10(dir: string, opts: Cifar10Options = {}): DataSplit {
  checkLimit('limitTrain', opts.limitTrain);
  checkLimit('limitTest', opts.limitTest);
  if (!existsSync(dir) || !statSync(dir).isDirectory()) {
    throw new EinopsError(`CIFAR-10 folder ${dir} does not exist or is not a folder`, {
      rule: 'cifar-missing',
    });
  }
  const isBatch = (f: string) => /^data_batch_\d+\.bin$/.test(f);
  let root = dir;
  const nested = join(dir, 'cifar-10-batches-bin');
  if (!readdirSync(dir).some(isBatch) && existsSync(nested) && statSync(nested).isDirectory()) root = nested;

  const trainFiles = readdirSync(root)
    .filter(isBatch)
    .sort((a, b) => Number(a.match(/\d+/)![0]) - Number(b.match(/\d+/)![0]))
    .map((f) => join(root, f));
  if (trainFiles.length === 0) {
    throw new EinopsError(`CIFAR-10 folder ${root} has no data_batch_<n>.bin training files`, {
      rule: 'cifar-missing',
    });
  }
  const testFile = join(root, 'test_batch.bin');
  if (!existsSync(testFile)) {
    throw new EinopsError(`CIFAR-10 test file ${testFile} is missing`, { rule: 'cifar-missing' });
  }
  return {
    train: toDataset('cifar10-train', trainFiles, opts.limitTrain),
    test: toDataset('cifar10-test', [testFile], opts.limitTest),
    mean: [...CIFAR10_MEAN],
    std: [...CIFAR10_STD],
  };
}
