import { readdirSync, readFileSync, statSync } from 'node:fs';
import { extname, join } from 'node:path';
import { PNG } from 'pngjs';
import jpeg from 'jpeg-js';
import { EinopsError } from '../errors.js';
import { normalizeInPlace, type DataSplit, type Dataset } from './data.js';
import { Rng } from './random.js';

export interface ImageFolderOptions {
  /** Target size (square side or [height, width]); images of another size are resized bilinearly. If
   * omitted, every image must have the size of the first one. */
  size?: number | [number, number];
  /** 3 (RGB, alpha dropped) or 1 (luma 0.299 R + 0.587 G + 0.114 B). Default 3. */
  channels?: 1 | 3;
  /** Share of each class held out for testing, in [0, 1). Default 0.2. */
  testFraction?: number;
  /** Seed of the split. Default 0. */
  seed?: number;
}

/** A decoded image: interleaved RGBA bytes. */
interface Rgba {
  width: number;
  height: number;
  data: Uint8Array;
}

const IMAGE_EXTENSIONS = new Set(['.png', '.jpg', '.jpeg']);

/** Decodes a PNG or JPEG file (by its magic bytes) to RGBA, throwing an EinopsError naming the file. */
export function decodeImage(path: string): Rgba {
  let bytes: Buffer;
  try {
    bytes = readFileSync(path);
  } catch (e) {
    throw new EinopsError(`cannot read image ${path}: ${(e as Error).message}`, { cause: e });
  }
  try {
    if (bytes.length >= 8 && bytes.readUInt32BE(0) === 0x89504e47) {
      const png = PNG.sync.read(bytes);
      return { width: png.width, height: png.height, data: png.data };
    }
    if (bytes.length >= 3 && bytes[0] === 0xff && bytes[1] === 0xd8) {
      const img = jpeg.decode(bytes, { useTArray: true, formatAsRGBA: true });
      return { width: img.width, height: img.height, data: img.data };
    }
  } catch (e) {
    throw new EinopsError(`cannot decode image ${path}: ${(e as Error).message}`, { cause: e });
  }
  throw new EinopsError(`image ${path} is neither a PNG nor a JPEG file`, { rule: 'image-format' });
}

/**
 * Converts RGBA bytes to planar float channels in [0,1] (CHW), written into `out` at `offset`.
 */
function toPlanes(img: Rgba, channels: 1 | 3, out: Float32Array, offset: number): void {
  const n = img.width * img.height;
  const d = img.data;
  if (channels === 3) {
    for (let i = 0; i < n; i++) {
      out[offset + i] = d[4 * i] / 255;
      out[offset + n + i] = d[4 * i + 1] / 255;
      out[offset + 2 * n + i] = d[4 * i + 2] / 255;
    }
  } else {
    for (let i = 0; i < n; i++) {
      out[offset + i] = (0.299 * d[4 * i] + 0.587 * d[4 * i + 1] + 0.114 * d[4 * i + 2]) / 255;
    }
  }
}

/**
 * Bilinear resize of a CHW float image with half-pixel centres and no antialiasing (the semantics of
 * PyTorch `F.interpolate(mode='bilinear', align_corners=False)`).
 *
 * @example
 * const up = resizeBilinear(new Float32Array([0, 1, 2, 3]), 1, 2, 2, 4, 4); // 1x4x4
 */
export function resizeBilinear(
  src: Float32Array,
  channels: number,
  height: number,
  width: number,
  outHeight: number,
  outWidth: number,
): Float32Array {
  const out = new Float32Array(channels * outHeight * outWidth);
  const sy = height / outHeight;
  const sx = width / outWidth;
  // Precompute the column taps once; they are the same for every row and channel.
  const x0s = new Int32Array(outWidth);
  const x1s = new Int32Array(outWidth);
  const fxs = new Float32Array(outWidth);
  for (let x = 0; x < outWidth; x++) {
    const fx = Math.max(0, (x + 0.5) * sx - 0.5);
    const x0 = Math.min(Math.floor(fx), width - 1);
    x0s[x] = x0;
    x1s[x] = Math.min(x0 + 1, width - 1);
    fxs[x] = fx - x0;
  }
  for (let c = 0; c < channels; c++) {
    const plane = c * height * width;
    const outPlane = c * outHeight * outWidth;
    for (let y = 0; y < outHeight; y++) {
      const fy = Math.max(0, (y + 0.5) * sy - 0.5);
      const y0 = Math.min(Math.floor(fy), height - 1);
      const y1 = Math.min(y0 + 1, height - 1);
      const wy = fy - y0;
      const r0 = plane + y0 * width;
      const r1 = plane + y1 * width;
      for (let x = 0; x < outWidth; x++) {
        const wx = fxs[x];
        const top = src[r0 + x0s[x]] * (1 - wx) + src[r0 + x1s[x]] * wx;
        const bottom = src[r1 + x0s[x]] * (1 - wx) + src[r1 + x1s[x]] * wx;
        out[outPlane + y * outWidth + x] = top * (1 - wy) + bottom * wy;
      }
    }
  }
  return out;
}

function listClasses(dir: string): { name: string; files: string[] }[] {
  let entries: string[];
  try {
    if (!statSync(dir).isDirectory()) throw new Error('not a folder');
    entries = readdirSync(dir);
  } catch (e) {
    throw new EinopsError(`image folder ${dir} cannot be read: ${(e as Error).message}`, { cause: e });
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
        throw new EinopsError(`class folder ${join(dir, name)} has no .png/.jpg/.jpeg images`, {
          rule: 'empty-class',
        });
      }
      return { name, files };
    });
  if (classes.length === 0) {
    throw new EinopsError(`image folder ${dir} has no class sub-folders (expected one folder per class)`, {
      rule: 'empty-class',
    });
  }
  return classes;
}

function makeDataset(
  name: string,
  items: { path: string; label: number }[],
  load: (path: string, out: Float32Array, offset: number) => void,
  shape: { channels: number; height: number; width: number },
  classNames: string[],
): Dataset {
  const size = shape.channels * shape.height * shape.width;
  const images = new Float32Array(items.length * size);
  const labels = new Int32Array(items.length);
  items.forEach((it, i) => {
    load(it.path, images, i * size);
    labels[i] = it.label;
  });
  return { name, images, labels, count: items.length, ...shape, numClasses: classNames.length, classNames };
}

/**
 * Loads an image-folder dataset: one sub-folder per class (classes are the sorted folder names, hidden
 * entries skipped), PNG or JPEG files inside. Each class is split on its own (stratified): a seeded
 * shuffle puts `round(n * testFraction)` of its images in the test set (never all of them), kept in file
 * order. Mean and std per channel are computed over the train images (population std; 1 if 0) and used
 * to normalise both sets.
 *
 * @example
 * const split = loadImageFolder('data/flowers', { size: 32, channels: 3, testFraction: 0.2, seed: 1 });
 * split.train.classNames; // ['daisy', 'rose', ...]
 */
export function loadImageFolder(dir: string, opts: ImageFolderOptions = {}): DataSplit {
  const channels = opts.channels ?? 3;
  const testFraction = opts.testFraction ?? 0.2;
  if (channels !== 1 && channels !== 3) {
    throw new EinopsError(`loadImageFolder: channels must be 1 or 3, got ${channels}`);
  }
  if (!(testFraction >= 0 && testFraction < 1)) {
    throw new EinopsError(`loadImageFolder: testFraction must be in [0, 1), got ${testFraction}`);
  }
  let target: [number, number] | undefined;
  if (opts.size !== undefined) {
    target = typeof opts.size === 'number' ? [opts.size, opts.size] : opts.size;
    if (!target.every((s) => Number.isInteger(s) && s > 0)) {
      throw new EinopsError(`loadImageFolder: size must be positive integers, got ${String(opts.size)}`);
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

  if (!target) {
    const first = decodeImage(train[0].path);
    target = [first.height, first.width];
  }
  const [height, width] = target;
  const load = (path: string, out: Float32Array, offset: number) => {
    const img = decodeImage(path);
    if (img.height === height && img.width === width) {
      toPlanes(img, channels, out, offset);
    } else if (opts.size === undefined) {
      throw new EinopsError(
        `image ${path} is ${img.width}x${img.height} but ${train[0].path} is ${width}x${height}; pass a size to resize`,
        { rule: 'image-size' },
      );
    } else {
      const planes = new Float32Array(channels * img.height * img.width);
      toPlanes(img, channels, planes, 0);
      out.set(resizeBilinear(planes, channels, img.height, img.width, height, width), offset);
    }
  };
  const classNames = classes.map((c) => c.name);
  const shape = { channels, height, width };
  const trainSet = makeDataset('folder-train', train, load, shape, classNames);
  const testSet = makeDataset('folder-test', test, load, shape, classNames);

  const { mean, std } = channelStats(trainSet.images, channels, height * width);
  normalizeInPlace(trainSet.images, channels, height * width, mean, std);
  normalizeInPlace(testSet.images, channels, height * width, mean, std);
  return { train: trainSet, test: testSet, mean, std };
}

/** Per-channel mean and population std of NCHW data (accumulated in float64). */
export function channelStats(
  images: Float32Array,
  channels: number,
  planeSize: number,
): { mean: number[]; std: number[] } {
  const mean: number[] = [];
  const std: number[] = [];
  const imageSize = channels * planeSize;
  const n = images.length / channels;
  for (let c = 0; c < channels; c++) {
    let sum = 0;
    let sq = 0;
    for (let base = c * planeSize; base < images.length; base += imageSize) {
      for (let i = base, end = base + planeSize; i < end; i++) {
        sum += images[i];
        sq += images[i] * images[i];
      }
    }
    const m = n > 0 ? sum / n : 0;
    const s = n > 0 ? Math.sqrt(Math.max(0, sq / n - m * m)) : 0;
    mean.push(m);
    std.push(s > 1e-12 ? s : 1);
  }
  return { mean, std };
}
