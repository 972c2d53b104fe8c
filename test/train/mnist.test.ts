import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { loadMnist } from '../../src/train/mnist.js';

const digitsDir = join(
  dirname(createRequire(import.meta.url).resolve('mnist/package.json')),
  'src',
  'digits',
);

describe('loadMnist', () => {
  const split = loadMnist();

  it('has the documented 8000/2000 stratified split', () => {
    const { train, test } = split;
    expect([train.count, test.count]).toEqual([8000, 2000]);
    expect([train.channels, train.height, train.width]).toEqual([1, 28, 28]);
    expect(train.images.length).toBe(8000 * 784);
    expect(test.images.length).toBe(2000 * 784);
    const perClass = (labels: Int32Array) => {
      const c = new Array(10).fill(0);
      for (const l of labels) c[l]++;
      return c;
    };
    expect(perClass(test.labels)).toEqual([200, 225, 198, 206, 196, 173, 203, 214, 189, 196]);
    expect(perClass(train.labels)).toEqual([801, 902, 793, 826, 784, 690, 811, 856, 755, 782]);
    expect(split.mean).toEqual([0.1307]);
    expect(split.std).toEqual([0.3081]);
  });

  it('matches the package data: train = head of each digit file, test = tail, normalised', () => {
    const five = JSON.parse(readFileSync(join(digitsDir, '5.json'), 'utf8')).data as number[];
    const { train, test } = split;
    const firstTrain5 = train.labels.indexOf(5);
    const firstTest5 = test.labels.indexOf(5);
    for (let i = 0; i < 784; i++) {
      // The package rounds k/255 to 3 decimals; we restore k/255 exactly.
      expect(train.images[firstTrain5 * 784 + i] * 0.3081 + 0.1307).toBeCloseTo(five[i], 3);
      expect(test.images[firstTest5 * 784 + i] * 0.3081 + 0.1307).toBeCloseTo(five[690 * 784 + i], 3);
    }
    // Black pixels normalise to -mean/std.
    expect(train.images[0]).toBeCloseTo(-0.1307 / 0.3081, 6);
  });

  it('has pixel statistics close to the usual MNIST mean/std', () => {
    let sum = 0;
    let sq = 0;
    for (const v of split.train.images) {
      const x = v * 0.3081 + 0.1307;
      sum += x;
      sq += x * x;
    }
    const n = split.train.images.length;
    expect(sum / n).toBeCloseTo(0.1307, 2);
    expect(Math.sqrt(sq / n - (sum / n) ** 2)).toBeCloseTo(0.3081, 2);
  });

  it('returns fresh arrays each call', () => {
    const again = loadMnist();
    expect(again.train.images === split.train.images).toBe(false);
    let same = true;
    for (let i = 0; i < again.train.images.length; i++)
      same &&= again.train.images[i] === split.train.images[i];
    expect(same).toBe(true);
  });
});
