import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { PNG } from 'pngjs';
import jpeg from 'jpeg-js';
import { afterAll, describe, expect, it } from 'vitest';
import { DataError } from '../../src/errors.js';
import { loadImageFolder } from '../../src/train/folder.js';
import { loadImage, preprocess, type RgbImage } from '../../src/image/index.js';
import { PREPROCESSOR_FILE, preprocessingFor, preprocessorJson } from '../../src/vit/preprocessor.js';
import { PRESETS } from '../../src/vit/config.js';

const root = mkdtempSync(join(tmpdir(), 'einvit-folder-'));
afterAll(() => rmSync(root, { recursive: true, force: true }));

/** Writes a w x h PNG whose every pixel is (r, g, b). */
function png(path: string, w: number, h: number, rgb: [number, number, number]): void {
  const img = new PNG({ width: w, height: h });
  for (let i = 0; i < w * h; i++) img.data.set([...rgb, 255], 4 * i);
  writeFileSync(path, PNG.sync.write(img));
}

function makeTree(dir: string, classes: Record<string, [number, number, number][]>, w = 4, h = 4): void {
  for (const [name, colours] of Object.entries(classes)) {
    mkdirSync(join(dir, name), { recursive: true });
    colours.forEach((c, i) => png(join(dir, name, `img${i}.png`), w, h, c));
  }
}

/** Writes an RGB image as a PNG file. */
function writeRgb(path: string, img: RgbImage): void {
  const out = new PNG({ width: img.width, height: img.height });
  for (let k = 0; k < img.width * img.height; k++)
    out.data.set([...img.data.subarray(3 * k, 3 * k + 3), 255], 4 * k);
  mkdirSync(dirname(path), { recursive: true });
  writeFileSync(path, PNG.sync.write(out));
}

function pattern(width: number, height: number, f: (x: number, y: number, c: number) => number): RgbImage {
  const data = new Uint8Array(width * height * 3);
  for (let y = 0; y < height; y++)
    for (let x = 0; x < width; x++) for (let c = 0; c < 3; c++) data[(y * width + x) * 3 + c] = f(x, y, c);
  return { width, height, data };
}

const bytesOf = (a: Float32Array): Buffer => Buffer.from(a.buffer, a.byteOffset, a.byteLength);

describe('one pipeline for folder training and predict', () => {
  it('resizes folder images exactly as Pillow does (the references of test/image/resize.test.ts)', () => {
    const dir = join(root, 'pillow');
    // Pillow 9.4 Image.resize((3, 2), BILINEAR) of this 7x5 image (HWC bytes)
    writeRgb(
      join(dir, 'a', 'p.png'),
      pattern(7, 5, (x, y, c) => (x * 37 + y * 91 + c * 53) % 256),
    );
    const pillow = [99, 127, 137, 129, 154, 131, 129, 126, 137, 106, 134, 147, 118, 132, 127, 128, 141, 127];
    const split = loadImageFolder(dir, { size: [2, 3], channels: 3, testFraction: 0 });
    const x = split.train.images;
    const bytes = Array.from({ length: 18 }, (_, k) => {
      const [pix, c] = [Math.floor(k / 3), k % 3];
      return Math.round((x[c * 6 + pix] * split.std[c] + split.mean[c]) * 255);
    });
    expect(bytes).toEqual(pillow);
  });

  it('feeds training the same float32 bits predict computes from the saved preprocessor config', () => {
    const dir = join(root, 'same');
    const files = [
      join(dir, 'seven', 'a.png'),
      join(dir, 'seven', 'b.png'),
      join(dir, 'three', 'a.png'),
      join(dir, 'three', 'b.png'),
    ];
    files.forEach((f, k) =>
      writeRgb(
        f,
        pattern(37 + k, 23 + 2 * k, (x, y, c) => (x * (13 + k) + y * 29 + c * 71 + k * 40) % 256),
      ),
    );
    for (const channels of [1, 3] as const) {
      const split = loadImageFolder(dir, { size: 28, channels, testFraction: 0 });
      const cfg = { ...PRESETS.tiny, num_channels: channels };
      const saved = join(root, `saved-${channels}`);
      mkdirSync(saved, { recursive: true });
      writeFileSync(
        join(saved, PREPROCESSOR_FILE),
        JSON.stringify(preprocessorJson(cfg, split.mean, split.std)),
      );
      const pre = preprocessingFor(saved, cfg);
      const per = channels * 28 * 28;
      // train order: class folders sorted, files sorted
      files.forEach((f, k) => {
        const served = preprocess(loadImage(f), pre).data;
        const trained = split.train.images.subarray(k * per, (k + 1) * per);
        expect(bytesOf(trained).equals(bytesOf(served))).toBe(true);
      });
    }
  });
});

describe('loadImageFolder', () => {
  it('loads classes from sorted folders, splits per class by seed, normalises with train stats', () => {
    const dir = join(root, 'basic');
    makeTree(dir, {
      red: [
        [255, 0, 0],
        [200, 0, 0],
        [150, 0, 0],
        [100, 0, 0],
        [50, 0, 0],
      ],
      blue: [
        [0, 0, 255],
        [0, 0, 200],
        [0, 0, 150],
        [0, 0, 100],
        [0, 0, 50],
      ],
    });
    writeFileSync(join(dir, 'red', 'notes.txt'), 'ignored');
    const split = loadImageFolder(dir, { channels: 3, testFraction: 0.4, seed: 3 });
    expect(split.train.classNames).toEqual(['blue', 'red']);
    expect([split.train.count, split.test.count]).toEqual([6, 4]);
    expect([split.train.channels, split.train.height, split.train.width]).toEqual([3, 4, 4]);
    expect([...split.test.labels]).toEqual([0, 0, 1, 1]);

    // Undo the normalisation and check that mean/std are those of the train pixels.
    const raw = (ds: typeof split.train, i: number, c: number) =>
      ds.images[i * 48 + c * 16] * split.std[c] + split.mean[c];
    const redTrain = [0, 1, 2, 3, 4, 5]
      .filter((i) => split.train.labels[i] === 1)
      .map((i) => raw(split.train, i, 0));
    const blueTrain = [0, 1, 2, 3, 4, 5]
      .filter((i) => split.train.labels[i] === 0)
      .map((i) => raw(split.train, i, 2));
    const mean0 = redTrain.reduce((a, b) => a + b, 0) / 6;
    expect(split.mean[0]).toBeCloseTo(mean0, 5);
    expect(split.mean[1]).toBe(0);
    expect(split.std[1]).toBe(1); // constant channel: std falls back to 1
    expect(blueTrain.length).toBe(3);
    // Every train+test value is one of the written bytes / 255.
    const all = [
      ...redTrain,
      ...[0, 1, 2, 3].filter((i) => split.test.labels[i] === 1).map((i) => raw(split.test, i, 0)),
    ]
      .map((v) => Math.round(v * 255))
      .sort((a, b) => a - b);
    expect(all).toEqual([50, 100, 150, 200, 255]);

    // Same seed, same split; another seed, (here) another split.
    const again = loadImageFolder(dir, { channels: 3, testFraction: 0.4, seed: 3 });
    expect([...again.test.images]).toEqual([...split.test.images]);
    const other = [1, 2, 4, 5, 6, 7].map((seed) => loadImageFolder(dir, { testFraction: 0.4, seed }).mean[0]);
    expect(other.some((m) => Math.abs(m - split.mean[0]) > 1e-6)).toBe(true);
  });

  it('converts to gray and resizes to the requested size', () => {
    const dir = join(root, 'gray');
    makeTree(dir, { a: [[255, 255, 255]], b: [[0, 0, 0]] }, 3, 5);
    png(join(dir, 'a', 'big.png'), 8, 8, [100, 150, 50]);
    const split = loadImageFolder(dir, { size: [2, 3], channels: 1, testFraction: 0 });
    expect([split.train.count, split.test.count]).toEqual([3, 0]);
    expect([split.train.channels, split.train.height, split.train.width]).toEqual([1, 2, 3]);
    // Files in class a sorted: big.png, img0.png.
    const luma = 124 / 255; // PIL's convert('L'): (100*19595 + 150*38470 + 50*7471 + 32768) >> 16
    expect(split.train.images[0] * split.std[0] + split.mean[0]).toBeCloseTo(luma, 5);
    expect(split.train.images[6] * split.std[0] + split.mean[0]).toBeCloseTo(1, 5);
  });

  it('reads JPEG files', () => {
    const dir = join(root, 'jpeg');
    mkdirSync(join(dir, 'x'), { recursive: true });
    const data = new Uint8Array(8 * 8 * 4).fill(255);
    writeFileSync(join(dir, 'x', 'white.jpg'), jpeg.encode({ width: 8, height: 8, data }, 95).data);
    const split = loadImageFolder(dir, { testFraction: 0 });
    expect(split.train.count).toBe(1);
    expect(split.mean[0]).toBeGreaterThan(0.98);
  });

  it('names the offending file or folder', () => {
    const mixed = join(root, 'mixed');
    makeTree(mixed, { a: [[1, 2, 3]] }, 4, 4);
    makeTree(mixed, { b: [[1, 2, 3]] }, 5, 4);
    expect(() => loadImageFolder(mixed, { testFraction: 0 })).toThrow(
      /b[/\\]img0\.png is 5x4 .* pass a size/,
    );

    const broken = join(root, 'broken');
    makeTree(broken, { a: [[1, 2, 3]] });
    writeFileSync(join(broken, 'a', 'zz.png'), 'not a png');
    expect(() => loadImageFolder(broken, { testFraction: 0 })).toThrow(/zz\.png: not a PNG or JPEG/);
    png(join(broken, 'a', 'zz.png'), 8, 8, [9, 9, 9]);
    const whole = readFileSync(join(broken, 'a', 'zz.png'));
    writeFileSync(join(broken, 'a', 'zz.png'), whole.subarray(0, whole.length - 20)); // cut download
    expect(() => loadImageFolder(broken, { testFraction: 0 })).toThrow(
      /zz\.png: truncated PNG \(the file ends/,
    );

    const empty = join(root, 'empty');
    makeTree(empty, { a: [[1, 2, 3]] });
    mkdirSync(join(empty, 'b'));
    expect(() => loadImageFolder(empty)).toThrow(/class folder .*b has no/);
    expect(() => loadImageFolder(join(root, 'missing'))).toThrow(DataError);
    expect(() => loadImageFolder(empty, { channels: 2 as 3 })).toThrow(/channels must be 1 or 3/);
  });
});
