import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { EinopsError } from '../../src/errors.js';
import { loadCifar10 } from '../../src/train/cifar10.js';

const root = mkdtempSync(join(tmpdir(), 'einvit-cifar-'));
afterAll(() => rmSync(root, { recursive: true, force: true }));

/** One record: label, then R, G, B planes where pixel (y, x) of channel c is (seed + c*50 + y + x) % 256. */
function record(label: number, seed: number): Uint8Array {
  const r = new Uint8Array(3073);
  r[0] = label;
  for (let c = 0; c < 3; c++)
    for (let y = 0; y < 32; y++)
      for (let x = 0; x < 32; x++) r[1 + c * 1024 + y * 32 + x] = (seed + c * 50 + y + x) % 256;
  return r;
}

function writeBatch(dir: string, name: string, recs: [number, number][]): void {
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, name), Buffer.concat(recs.map(([l, s]) => record(l, s))));
}

const MEAN = [0.4914, 0.4822, 0.4465];
const STD = [0.247, 0.2435, 0.2616];

describe('loadCifar10', () => {
  const ok = join(root, 'ok');
  writeBatch(ok, 'data_batch_2.bin', [
    [7, 9],
    [8, 10],
  ]);
  writeBatch(ok, 'data_batch_1.bin', [
    [3, 1],
    [4, 2],
    [5, 3],
  ]);
  writeBatch(ok, 'test_batch.bin', [
    [9, 100],
    [0, 200],
  ]);

  it('reads batches in numeric order as normalised CHW', () => {
    const split = loadCifar10(ok);
    expect(split.train.count).toBe(5);
    expect([...split.train.labels]).toEqual([3, 4, 5, 7, 8]);
    expect([...split.test.labels]).toEqual([9, 0]);
    expect(split.train.classNames[3]).toBe('cat');
    expect(split.mean).toEqual(MEAN);
    // image 3 (seed 9), channel 1, (y=2, x=5): byte (9 + 50 + 7) = 66
    const v = split.train.images[3 * 3072 + 1 * 1024 + 2 * 32 + 5];
    expect(v).toBeCloseTo((66 / 255 - MEAN[1]) / STD[1], 5);
    // test image 1 (seed 200), channel 2, (31, 31): (200 + 100 + 62) % 256 = 106
    expect(split.test.images[3072 + 2 * 1024 + 31 * 32 + 31]).toBeCloseTo((106 / 255 - MEAN[2]) / STD[2], 5);
  });

  it('applies limits', () => {
    const split = loadCifar10(ok, { limitTrain: 4, limitTest: 1 });
    expect([split.train.count, split.test.count]).toEqual([4, 1]);
    expect([...split.train.labels]).toEqual([3, 4, 5, 7]);
    expect(split.train.images.length).toBe(4 * 3072);
    // A limit met by the first file leaves later files unread.
    const partial = join(root, 'partial');
    writeBatch(partial, 'data_batch_1.bin', [
      [1, 1],
      [2, 2],
    ]);
    writeBatch(partial, 'test_batch.bin', [[1, 1]]);
    writeFileSync(join(partial, 'data_batch_2.bin'), new Uint8Array(7));
    expect(loadCifar10(partial, { limitTrain: 2 }).train.count).toBe(2);
    expect(() => loadCifar10(partial)).toThrow(/data_batch_2\.bin has 7 bytes/);
  });

  it('finds a nested cifar-10-batches-bin folder', () => {
    const outer = join(root, 'outer');
    writeBatch(join(outer, 'cifar-10-batches-bin'), 'data_batch_1.bin', [[1, 1]]);
    writeBatch(join(outer, 'cifar-10-batches-bin'), 'test_batch.bin', [[2, 2]]);
    expect(loadCifar10(outer).train.count).toBe(1);
  });

  it('names the folder or file in errors', () => {
    expect(() => loadCifar10(join(root, 'nope'))).toThrow(/nope.*does not exist/);
    const noTrain = join(root, 'notrain');
    writeBatch(noTrain, 'test_batch.bin', [[1, 1]]);
    expect(() => loadCifar10(noTrain)).toThrow(/no data_batch/);
    const noTest = join(root, 'notest');
    writeBatch(noTest, 'data_batch_1.bin', [[1, 1]]);
    expect(() => loadCifar10(noTest)).toThrow(/test_batch\.bin is missing/);

    const badSize = join(root, 'badsize');
    writeBatch(badSize, 'test_batch.bin', [[1, 1]]);
    mkdirSync(badSize, { recursive: true });
    writeFileSync(join(badSize, 'data_batch_1.bin'), new Uint8Array(3073 + 5));
    expect(() => loadCifar10(badSize)).toThrow(
      /data_batch_1\.bin has 3078 bytes, not a positive multiple of 3073/,
    );

    const badLabel = join(root, 'badlabel');
    writeBatch(badLabel, 'data_batch_1.bin', [
      [1, 1],
      [10, 1],
    ]);
    writeBatch(badLabel, 'test_batch.bin', [[1, 1]]);
    expect(() => loadCifar10(badLabel)).toThrow(/data_batch_1\.bin: record 1 has label 10/);
    expect(() => loadCifar10(badLabel)).toThrow(EinopsError);
    expect(() => loadCifar10(ok, { limitTrain: 0 })).toThrow(EinopsError);
  });
});
