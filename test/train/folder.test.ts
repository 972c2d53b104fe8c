import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PNG } from 'pngjs';
import jpeg from 'jpeg-js';
import { afterAll, describe, expect, it } from 'vitest';
import { EinopsError } from '../../src/errors.js';
import { loadImageFolder, resizeBilinear } from '../../src/train/folder.js';

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

describe('resizeBilinear', () => {
  it('matches PyTorch align_corners=False values', () => {
    // F.interpolate(torch.tensor([[[[0., 1.], [2., 3.]]]]), size=4, mode='bilinear', align_corners=False)
    const out = resizeBilinear(new Float32Array([0, 1, 2, 3]), 1, 2, 2, 4, 4);
    const row = [0, 0.25, 0.75, 1];
    const expected = [0, 0.5, 1.5, 2].flatMap((base) => row.map((r) => base + r));
    expect([...out].map((v) => +v.toFixed(5))).toEqual(expected);
    // Downscale 4 -> 2 averages the centre pairs.
    const down = resizeBilinear(
      Float32Array.from({ length: 16 }, (_, i) => i),
      1,
      4,
      4,
      2,
      2,
    );
    expect([...down]).toEqual([2.5, 4.5, 10.5, 12.5]);
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
    const luma = (0.299 * 100 + 0.587 * 150 + 0.114 * 50) / 255;
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
    expect(() => loadImageFolder(broken, { testFraction: 0 })).toThrow(/zz\.png is neither a PNG nor a JPEG/);
    writeFileSync(join(broken, 'a', 'zz.png'), Buffer.from([0x89, 0x50, 0x4e, 0x47, 0, 0, 0, 0, 1, 2]));
    expect(() => loadImageFolder(broken, { testFraction: 0 })).toThrow(/cannot decode image .*zz\.png/);

    const empty = join(root, 'empty');
    makeTree(empty, { a: [[1, 2, 3]] });
    mkdirSync(join(empty, 'b'));
    expect(() => loadImageFolder(empty)).toThrow(/class folder .*b has no/);
    expect(() => loadImageFolder(join(root, 'missing'))).toThrow(EinopsError);
    expect(() => loadImageFolder(empty, { channels: 2 as 3 })).toThrow(/channels must be 1 or 3/);
  });
});
