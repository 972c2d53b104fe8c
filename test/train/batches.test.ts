import { describe, expect, it } from 'vitest';
import { augmentFor, makeAugment, shiftFlip } from '../../src/train/augment.js';
import { batchCount, batches } from '../../src/train/batches.js';
import { blackValue, type Dataset } from '../../src/train/data.js';
import { Rng } from '../../src/train/random.js';

/** n images of 2x3x4 where pixel (c, y, x) of image i is i*100 + c*20 + y*4 + x + 1 (never 0). */
function toy(n: number): Dataset {
  const images = new Float32Array(n * 24);
  for (let i = 0; i < n; i++)
    for (let c = 0; c < 2; c++)
      for (let y = 0; y < 3; y++)
        for (let x = 0; x < 4; x++) images[i * 24 + c * 12 + y * 4 + x] = i * 100 + c * 20 + y * 4 + x + 1;
  const labels = Int32Array.from({ length: n }, (_, i) => i % 3);
  return {
    name: 'toy',
    images,
    labels,
    count: n,
    channels: 2,
    height: 3,
    width: 4,
    numClasses: 3,
    classNames: ['a', 'b', 'c'],
  };
}

const shape = { channels: 2, height: 3, width: 4 };
const px = (img: Float32Array, c: number, y: number, x: number) => img[c * 12 + y * 4 + x];

describe('shiftFlip', () => {
  const src = toy(1).images;
  it('shift (+1, 0) moves content one pixel right and fills the left column', () => {
    const out = new Float32Array(24);
    shiftFlip(src, 0, out, 0, shape, 1, 0, false, [-7, -9]);
    for (let c = 0; c < 2; c++)
      for (let y = 0; y < 3; y++) {
        expect(px(out, c, y, 0)).toBe(c === 0 ? -7 : -9);
        for (let x = 1; x < 4; x++) expect(px(out, c, y, x)).toBe(px(src, c, y, x - 1));
      }
  });

  it('shift (-2, +1) moves left by 2 and down by 1', () => {
    const out = new Float32Array(24);
    shiftFlip(src, 0, out, 0, shape, -2, 1, false, [0, 0]);
    for (let c = 0; c < 2; c++)
      for (let y = 0; y < 3; y++)
        for (let x = 0; x < 4; x++) {
          const sy = y - 1;
          const sx = x + 2;
          expect(px(out, c, y, x)).toBe(sy >= 0 && sx < 4 ? px(src, c, sy, sx) : 0);
        }
  });

  it('flip mirrors after the shift; shifts of the full width fill everything', () => {
    const out = new Float32Array(24);
    shiftFlip(src, 0, out, 0, shape, 1, 0, true, [0, 0]);
    // shifted row = [f, a, b, c]; mirrored = [c, b, a, f]
    expect([0, 1, 2, 3].map((x) => px(out, 0, 1, x))).toEqual([7, 6, 5, 0]);
    shiftFlip(src, 0, out, 0, shape, 4, 0, false, [3, 3]);
    expect([...out].every((v) => v === 3)).toBe(true);
    shiftFlip(src, 0, out, 0, shape, 0, -3, false, [2, 2]);
    expect([...out].every((v) => v === 2)).toBe(true);
  });
});

describe('batches', () => {
  it('covers every sample exactly once, in order without shuffle', () => {
    const ds = toy(10);
    const got = [...batches(ds, { batchSize: 4, shuffle: false })];
    expect(got.map((b) => b.size)).toEqual([4, 4, 2]);
    expect(batchCount(10, 4)).toBe(3);
    expect(batchCount(10, 4, true)).toBe(2);
    expect([...got[2].indices]).toEqual([8, 9]);
    expect([...got[1].labels]).toEqual([1, 2, 0, 1]);
    expect(got[1].images[24]).toBe(501); // sample 5, first pixel
    expect(got[0].images.length).toBe(4 * 24);
    expect([...batches(ds, { batchSize: 4, shuffle: false, dropLast: true })].length).toBe(2);
  });

  it('shuffles deterministically by seed and copies the data', () => {
    const ds = toy(10);
    const run = (seed: number) => [...batches(ds, { batchSize: 3, shuffle: true, rng: new Rng(seed) })];
    const a = run(1);
    const idx = a.flatMap((b) => [...b.indices]);
    expect([...idx].sort((p, q) => p - q)).toEqual([0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
    expect(run(1).flatMap((b) => [...b.indices])).toEqual(idx);
    expect(run(2).flatMap((b) => [...b.indices])).not.toEqual(idx);
    for (const b of a)
      for (let i = 0; i < b.size; i++) {
        expect(b.labels[i]).toBe(ds.labels[b.indices[i]]);
        expect(b.images[i * 24 + 13]).toBe(ds.images[b.indices[i] * 24 + 13]);
      }
    a[0].images[0] = -1;
    expect(ds.images.includes(-1)).toBe(false);
  });

  it('augments reproducibly with the seeded rng, and resumes from a saved state', () => {
    const ds = toy(16);
    const aug = makeAugment({ pad: 1, flip: true, fill: [0, 0] });
    const run = (rng: Rng) => [...batches(ds, { batchSize: 8, shuffle: true, rng, augment: aug })];
    const rng = new Rng(9);
    const e1 = run(rng);
    const saved = rng.state;
    const e2 = run(rng);
    expect(run(new Rng(9)).map((b) => [...b.images])).toEqual(e1.map((b) => [...b.images]));
    expect(run(Rng.fromState(saved)).map((b) => [...b.images])).toEqual(e2.map((b) => [...b.images]));
    // Each augmented image is some shift in [-1, 1]^2 (and maybe a flip) of its source image.
    let shifted = 0;
    let flipped = 0;
    for (const b of e1)
      for (let i = 0; i < b.size; i++) {
        const img = b.images.subarray(i * 24, (i + 1) * 24);
        const src = ds.images.subarray(b.indices[i] * 24, (b.indices[i] + 1) * 24);
        let match: [number, number, boolean] | undefined;
        const out = new Float32Array(24);
        for (const dx of [-1, 0, 1])
          for (const dy of [-1, 0, 1])
            for (const f of [false, true]) {
              shiftFlip(src, 0, out, 0, shape, dx, dy, f, [0, 0]);
              if (!match && out.every((v, k) => v === img[k])) match = [dx, dy, f];
            }
        expect(match).toBeDefined();
        if (match![0] !== 0 || match![1] !== 0) shifted++;
        if (match![2]) flipped++;
      }
    expect(shifted).toBeGreaterThan(4);
    expect(flipped).toBeGreaterThan(2);
    expect(flipped).toBeLessThan(14);
  });

  it('skipBatches resumes mid-epoch with the same batches as the uninterrupted run', () => {
    const ds = toy(20);
    const aug = makeAugment({ pad: 2, flip: true, fill: [0, 0] });
    const full = [...batches(ds, { batchSize: 6, shuffle: true, rng: new Rng(4), augment: aug })];
    const rest = [
      ...batches(ds, { batchSize: 6, shuffle: true, rng: new Rng(4), augment: aug, skipBatches: 2 }),
    ];
    expect(rest.length).toBe(2);
    expect(rest.map((b) => [...b.images])).toEqual(full.slice(2).map((b) => [...b.images]));
    expect(rest.map((b) => [...b.indices])).toEqual(full.slice(2).map((b) => [...b.indices]));
  });

  it('pads with normalised black from the split statistics', () => {
    const ds = toy(1);
    const aug = augmentFor({ mean: [0.5, 0.25], std: [0.5, 0.25] }, { pad: 3 });
    expect(blackValue([0.5, 0.25], [0.5, 0.25])).toEqual([-1, -1]);
    const seen = new Set<number>();
    for (let s = 0; s < 20; s++) {
      const [b] = [...batches(ds, { batchSize: 1, shuffle: false, rng: new Rng(s), augment: aug })];
      for (const v of b.images) if (v < 1) seen.add(v);
    }
    expect([...seen]).toEqual([-1]);
  });

  it('rejects bad options', () => {
    expect(() => [...batches(toy(2), { batchSize: 0, shuffle: false })]).toThrow(/batchSize/);
    expect(() => [...batches(toy(2), { batchSize: 1, shuffle: true })]).toThrow(/rng/);
    expect(() => makeAugment({ pad: -1 })).toThrow(/pad/);
  });
});
