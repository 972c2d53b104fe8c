// Image-folder data sets: one sub-folder per class. Images go through the same pipeline as `predict`
// (src/image: decode, Pillow-exact resize, PIL luma, HF normalisation), so a model trained on a folder
// is served with exactly the preprocessing it was trained with.
import { readdirSync, statSync } from 'node:fs';
import { extname, join } from 'node:path';
import { DataError, UsageError } from '../errors.js';
import { loadImage } from '../image/decode.js';
import { normalizePixels, toPixels } from '../image/preprocess.js';
import type { DataSplit, Dataset } from './data.js';
import { Rng } from './random.js';

export interface ImageFolderOptions {
  /** Target size (square side or [height, width]); images of another size are resized with Pillow's
   * bilinear filter. If omitted, every image must have the size of the first one. */
  size?: number | [number, number];
  /** 3 (RGB, alpha dropped as PIL's `convert('RGB')`) or 1 (PIL's `L` luma). Default 3. */
  channels?: 1 | 3;
  /** Share of each class held out for testing, in [0, 1). Default 0.2. */
  testFraction?: number;
  /** Seed of the split. Default 0. */
  seed?: number;
}

const IMAGE_EXTENSIONS = new Set(['.png', '.jpg', '.jpeg']);

function listClasses(dir: string): { name: string; files: string[] }[] {
  let entries: string[];
  try {
    if (!statSync(dir).isDirectory()) throw new Error('not a folder');
    entries = readdirSync(dir);
  } catch (e) {
    throw new DataError(`image folder ${dir} cannot be read: ${(e as Error).message}`, { cause: e });
  }
  const classes = entries
    .filter((e) => !e.startsWith('.') && statSync(join(dir, e)).isDirectory())
    .sort()
    .map((name) => {
      const files = readdirSync(join(dir, name))
        .filter((f) => !f.startsWith('.') && IMAGE_EXTENSIONS.has(extname(f).toLowerCase()))
        .sort()
        .map((f) => join(dir, name, f));
      if (files.length === 0) {
        throw new DataError(`class folder ${join(dir, name)} has no .png/.jpg/.jpeg images`, {
          rule: 'empty-class',
        });
      }
      return { name, files };
    });
  if (classes.length === 0) {
    throw new DataError(`image folder ${dir} has no class sub-folders (expected one folder per class)`, {
      rule: 'empty-class',
    });
  }
  return classes;
}

/** Per-channel mean and population std of CHW bytes scaled to [0, 1] (exact integer sums). */
export function byteStats(
  images: readonly Uint8Array[],
  channels: number,
): { mean: number[]; std: number[] } {
  const mean: number[] = [];
  const std: number[] = [];
  for (let c = 0; c < channels; c++) {
    let sum = 0;
    let sq = 0;
    let n = 0;
    for (const img of images) {
      const plane = img.length / channels;
      for (let i = c * plane, end = i + plane; i < end; i++) {
        sum += img[i];
        sq += img[i] * img[i];
      }
      n += plane;
    }
    const m = n > 0 ? sum / n / 255 : 0;
    const s = n > 0 ? Math.sqrt(Math.max(0, sq / n / (255 * 255) - m * m)) : 0;
    mean.push(m);
    std.push(s > 1e-12 ? s : 1);
  }
  return { mean, std };
}

/**
 * Loads an image-folder dataset: one sub-folder per class (classes are the sorted folder names, hidden
 * entries skipped), PNG or JPEG files inside. Each class is split on its own (stratified): a seeded
 * shuffle puts `round(n * testFraction)` of its images in the test set (never all of them), kept in file
 * order. Images are decoded and resized by `src/image` ({@link toPixels}); mean and std per channel are
 * those of the train pixels (population std; 1 if 0), and both sets are normalised with
 * {@link normalizePixels}: the values `predict` computes for the same file with the saved
 * preprocessor_config.json, bit for bit.
 *
 * @example
 * const split = loadImageFolder('data/flowers', { size: 32, channels: 3, testFraction: 0.2, seed: 1 });
 * split.train.classNames; // ['daisy', 'rose', ...]
 */
export function loadImageFolder(dir: string, opts: ImageFolderOptions = {}): DataSplit {
  const channels = opts.channels ?? 3;
  const testFraction = opts.testFraction ?? 0.2;
  if (channels !== 1 && channels !== 3) {
    throw new UsageError(`loadImageFolder: channels must be 1 or 3, got ${channels}`);
  }
  if (!(testFraction >= 0 && testFraction < 1)) {
    throw new UsageError(`loadImageFolder: testFraction must be in [0, 1), got ${testFraction}`);
  }
  let target: [number, number] | undefined;
  if (opts.size !== undefined) {
    target = typeof opts.size === 'number' ? [opts.size, opts.size] : opts.size;
    if (!target.every((s) => Number.isInteger(s) && s > 0)) {
      throw new UsageError(`loadImageFolder: size must be positive integers, got ${String(opts.size)}`);
    }
  }

  const classes = listClasses(dir);
  const rng = new Rng(opts.seed ?? 0);
  const train: { path: string; label: number }[] = [];
  const test: { path: string; label: number }[] = [];
  classes.forEach(({ files }, label) => {
    const nTest = Math.min(Math.round(files.length * testFraction), files.length - 1);
    const order = rng.shuffle(Array.from(files.keys()));
    const isTest = new Set(order.slice(0, nTest));
    files.forEach((path, i) => (isTest.has(i) ? test : train).push({ path, label }));
  });

  const pixels = (path: string): Uint8Array => {
    const img = loadImage(path);
    if (!target) target = [img.height, img.width];
    const [height, width] = target;
    if (opts.size === undefined && (img.height !== height || img.width !== width)) {
      throw new DataError(
        `image ${path} is ${img.width}x${img.height} but ${train[0].path} is ${width}x${height}; pass a size to resize`,
        { rule: 'image-size' },
      );
    }
    return toPixels(img, { size: target, channels }).data;
  };
  const trainBytes = train.map((it) => pixels(it.path));
  const testBytes = test.map((it) => pixels(it.path));
  const [height, width] = target!;
  const { mean, std } = byteStats(trainBytes, channels);
  const classNames = classes.map((c) => c.name);
  const dataset = (name: string, items: typeof train, bytes: Uint8Array[]): Dataset => {
    const size = channels * height * width;
    const images = new Float32Array(items.length * size);
    bytes.forEach((b, i) => normalizePixels(b, channels, mean, std, images, i * size));
    const labels = Int32Array.from(items, (it) => it.label);
    return {
      name,
      images,
      labels,
      count: items.length,
      channels,
      height,
      width,
      numClasses: classNames.length,
      classNames,
    };
  };
  return {
    train: dataset('folder-train', train, trainBytes),
    test: dataset('folder-test', test, testBytes),
    mean,
    std,
  };
}
