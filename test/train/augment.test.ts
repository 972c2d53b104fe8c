import { describe, expect, it } from 'vitest';
import { affineWarp, makeAugment, shiftFlip } from '../../src/train/augment.js';
import { batches } from '../../src/train/batches.js';
import type { Dataset } from '../../src/train/data.js';
import { Rng } from '../../src/train/random.js';

const H = 5;
const W = 6;
const shape = { channels: 1, height: H, width: W };
/** Pixel (y, x) = y*W + x + 1. */
const ramp = Float32Array.from({ length: H * W }, (_, i) => i + 1);

// scipy.ndimage.affine_transform(img, M, offset=c - M @ (c + d), order=1, mode='grid-constant',
// cval=fill) on the same 5x6 ramp, with M = [[cos, -sin], [sin, cos]] / scale in (row, col) order
// and c the pixel centre: bilinear sampling where neighbours outside the image count as `fill`.
const SCIPY: Array<{ angle: number; scale: number; dx: number; dy: number; fill: number; out: number[] }> = [
  {
    angle: 30,
    scale: 1,
    dx: 0,
    dy: 0,
    fill: -1,
    out: [
      2.720372, 7.308657, 5.174682, 3.040708, 1.485658, -0.898317, 12.612677, 13.004809, 10.870835, 8.73686,
      6.602886, 4.44976, 20.834936, 18.700962, 16.566987, 14.433013, 12.299038, 10.165064, 22.721402,
      24.397114, 22.26314, 20.129165, 17.995191, 12.940227, -0.50936, 13.606665, 27.959292, 25.825318,
      23.691343, 6.332532,
    ],
  },
  {
    angle: -17,
    scale: 1.2,
    dx: 0.5,
    dy: -1,
    fill: 0,
    out: [
      4.185782, 6.444561, 8.70334, 10.962119, 13.220898, 15.479678, 8.723663, 10.982442, 13.241221, 15.5,
      17.758779, 20.017558, 11.595466, 15.520322, 17.779102, 20.037881, 22.29666, 24.555439, 11.305514,
      20.058203, 22.316982, 24.575761, 26.834541, 26.285779, 8.685591, 24.596084, 22.151158, 16.308738,
      10.077989, 3.458912,
    ],
  },
  {
    angle: 10,
    scale: 0.85,
    dx: 1,
    dy: 1,
    fill: -0.5,
    out: [
      -0.5, -0.5, -0.5, -0.5, -0.5, -0.5, -0.5, 0.01873, 1.333582, 1.864365, 1.921764, 1.505779, -0.5,
      3.337569, 8.444856, 8.377701, 8.310547, 8.243392, -0.5, 9.496713, 15.600732, 15.533577, 15.466423,
      15.399268, -0.5, 18.496162, 22.756608, 22.689453, 22.622299, 22.555144,
    ],
  },
];

function expectClose(actual: Float32Array, expected: ArrayLike<number>, tol = 1e-4): void {
  expect(actual.length).toBe(expected.length);
  for (let i = 0; i < actual.length; i++) expect(Math.abs(actual[i] - expected[i])).toBeLessThan(tol);
}

describe('affineWarp', () => {
  it('matches scipy.ndimage.affine_transform (bilinear, constant fill) for rotations, zooms and shifts', () => {
    for (const { angle, scale, dx, dy, fill, out } of SCIPY) {
      const dst = new Float32Array(H * W);
      affineWarp(ramp, 0, dst, 0, shape, { angle, scale, dx, dy }, false, [fill]);
      expectClose(dst, out);
    }
  });

  it('equals shiftFlip exactly for integer shifts without rotation or zoom', () => {
    const src = Float32Array.from({ length: 2 * H * W }, (_, i) => (i * 7919) % 101);
    const two = { channels: 2, height: H, width: W };
    for (const dx of [-3, -1, 0, 2, 6])
      for (const dy of [-5, 0, 1, 4])
        for (const flip of [false, true]) {
          const a = new Float32Array(2 * H * W);
          const b = new Float32Array(2 * H * W);
          affineWarp(src, 0, a, 0, two, { angle: 0, scale: 1, dx, dy }, flip, [-2, -3]);
          shiftFlip(src, 0, b, 0, two, dx, dy, flip, [-2, -3]);
          expect([...a]).toEqual([...b]);
        }
  });

  it('turns the content clockwise on screen; 90 and 180 degrees are exact index maps', () => {
    const sq = Float32Array.from({ length: 16 }, (_, i) => i + 1);
    const s4 = { channels: 1, height: 4, width: 4 };
    const r90 = new Float32Array(16);
    affineWarp(sq, 0, r90, 0, s4, { angle: 90, scale: 1, dx: 0, dy: 0 }, false, [0]);
    // Clockwise: out[y][x] = in[3 - x][y] (the left column becomes the top row, read bottom-up).
    expectClose(
      r90,
      Array.from({ length: 16 }, (_, i) => sq[(3 - (i % 4)) * 4 + Math.floor(i / 4)]),
      1e-5,
    );
    const r180 = new Float32Array(16);
    affineWarp(sq, 0, r180, 0, s4, { angle: 180, scale: 1, dx: 0, dy: 0 }, false, [0]);
    expectClose(r180, [...sq].reverse(), 1e-5);
  });

  it('writes at the offsets and leaves the rest of the buffers alone', () => {
    const src = new Float32Array(3 + H * W);
    src.set(ramp, 3);
    const dst = new Float32Array(2 + H * W + 2).fill(99);
    affineWarp(src, 3, dst, 2, shape, { angle: 30, scale: 1, dx: 0, dy: 0 }, false, [-1]);
    expectClose(dst.subarray(2, 2 + H * W), SCIPY[0].out);
    expect([dst[0], dst[1], dst.at(-2), dst.at(-1)]).toEqual([99, 99, 99, 99]);
  });
});

describe('makeAugment with rotation and zoom', () => {
  const ds: Dataset = {
    name: 'ramp',
    images: Float32Array.from(
      { length: 4 * H * W },
      (_, i) => (i % (H * W)) + 1 + 100 * Math.floor(i / (H * W)),
    ),
    labels: Int32Array.of(0, 1, 0, 1),
    count: 4,
    channels: 1,
    height: H,
    width: W,
    numClasses: 2,
    classNames: ['a', 'b'],
  };

  it('draws dx, dy, angle, zoom per image from the rng, in that order, and warps with them', () => {
    const aug = makeAugment({ pad: 2, rotate: 15, scale: 0.1, fill: -1 });
    const [b] = [...batches(ds, { batchSize: 4, shuffle: false, rng: new Rng(5), augment: aug })];
    const rng = new Rng(5);
    for (let i = 0; i < 4; i++) {
      const dx = rng.nextInt(5) - 2;
      const dy = rng.nextInt(5) - 2;
      const angle = (2 * rng.nextFloat() - 1) * 15;
      const zoom = 1 + (2 * rng.nextFloat() - 1) * 0.1;
      expect(Math.abs(angle)).toBeLessThanOrEqual(15);
      const want = new Float32Array(H * W);
      affineWarp(ds.images, i * H * W, want, 0, shape, { angle, scale: zoom, dx, dy }, false, [-1]);
      expect([...b.images.subarray(i * H * W, (i + 1) * H * W)]).toEqual([...want]);
    }
    // Reproducible from the seed, different for another seed.
    const again = [...batches(ds, { batchSize: 4, shuffle: false, rng: new Rng(5), augment: aug })][0];
    expect([...again.images]).toEqual([...b.images]);
    const other = [...batches(ds, { batchSize: 4, shuffle: false, rng: new Rng(6), augment: aug })][0];
    expect([...other.images]).not.toEqual([...b.images]);
  });

  it('keeps the shift-only images (and rng use) when rotate and scale are 0', () => {
    const plain = makeAugment({ pad: 1, fill: 0 });
    const zero = makeAugment({ pad: 1, rotate: 0, scale: 0, fill: 0 });
    const r1 = new Rng(3);
    const r2 = new Rng(3);
    const a = [...batches(ds, { batchSize: 4, shuffle: true, rng: r1, augment: plain })];
    const b = [...batches(ds, { batchSize: 4, shuffle: true, rng: r2, augment: zero })];
    expect([...a[0].images]).toEqual([...b[0].images]);
    expect(r1.state).toBe(r2.state);
  });

  it('rejects a rotation or zoom out of range', () => {
    expect(() => makeAugment({ rotate: -1 })).toThrow(/rotate/);
    expect(() => makeAugment({ rotate: Number.NaN })).toThrow(/rotate/);
    expect(() => makeAugment({ scale: 1 })).toThrow(/scale/);
    expect(() => makeAugment({ scale: -0.1 })).toThrow(/scale/);
  });
});
