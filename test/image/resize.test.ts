import { describe, expect, it } from 'vitest';
import { UsageError } from '../../src/errors.js';
import {
  centerCrop,
  resampleBilinear,
  resizeBilinear,
  resizeShortSide,
  type RgbImage,
} from '../../src/image/index.js';

function image(width: number, height: number, f: (x: number, y: number, c: number) => number): RgbImage {
  const data = new Uint8Array(width * height * 3);
  for (let y = 0; y < height; y++)
    for (let x = 0; x < width; x++) for (let c = 0; c < 3; c++) data[(y * width + x) * 3 + c] = f(x, y, c);
  return { width, height, data };
}

describe('resizeBilinear (Pillow BILINEAR)', () => {
  it('keeps a constant image constant when shrinking and enlarging', () => {
    const flat = image(37, 23, (_x, _y, c) => [17, 128, 250][c]);
    for (const [w, h] of [
      [5, 3],
      [224, 224],
      [37, 1],
      [1, 23],
    ]) {
      const r = resizeBilinear(flat, w, h);
      expect(r.data.length).toBe(w * h * 3);
      const wrong = Array.from(r.data).filter((v, i) => v !== [17, 128, 250][i % 3]);
      expect(wrong).toEqual([]);
    }
  });

  it('averages all four pixels of a 2x2 image into 1x1 (antialiasing)', () => {
    const g = {
      width: 2,
      height: 2,
      data: Uint8Array.from([0, 10, 20, 40, 50, 60, 80, 90, 100, 120, 130, 250]),
    };
    // means 60, 70, 107.5 (rounded half up by the fixed-point arithmetic)
    expect(Array.from(resizeBilinear(g, 1, 1).data)).toEqual([60, 70, 108]);
  });

  it('matches a hand-derived Pillow result for 4 -> 2 pixels', () => {
    // scale 2 widens the triangle to support 2: output 0 centres at 1.0 with weights 3/7, 3/7, 1/7 on
    // inputs 0..2 -> 500/7 = 71.4; output 1 centres at 3.0 with 1/7, 3/7, 3/7 on inputs 1..3 -> 209.3
    const row = image(4, 1, (x) => [0, 100, 200, 255][x]);
    expect(Array.from(resizeBilinear(row, 2, 1).data)).toEqual([71, 71, 71, 209, 209, 209]);
  });

  it('is bit-identical to Pillow 9.4 on a 7x5 -> 3x2 image and a 2x2 -> 4x3 upscale', () => {
    // expected values produced by PIL.Image.resize((w, h), Image.BILINEAR) on the same inputs
    const a = image(7, 5, (x, y, c) => (x * 37 + y * 91 + c * 53) % 256);
    expect(Array.from(resizeBilinear(a, 3, 2).data)).toEqual([
      99, 127, 137, 129, 154, 131, 129, 126, 137, 106, 134, 147, 118, 132, 127, 128, 141, 127,
    ]);
    const g = {
      width: 2,
      height: 2,
      data: Uint8Array.from([0, 10, 20, 40, 50, 60, 80, 90, 100, 120, 130, 250]),
    };
    expect(Array.from(resizeBilinear(g, 4, 3).data)).toEqual([
      0, 10, 20, 10, 20, 30, 30, 40, 50, 40, 50, 60, 40, 50, 60, 50, 60, 84, 70, 80, 132, 80, 90, 155, 80, 90,
      100, 90, 100, 138, 110, 120, 213, 120, 130, 250,
    ]);
  });

  it('returns a copy when the size is unchanged', () => {
    const a = image(3, 2, (x, y, c) => x + y + c);
    const r = resizeBilinear(a, 3, 2);
    expect(Array.from(r.data)).toEqual(Array.from(a.data));
    expect(r.data).not.toBe(a.data);
  });

  it('rejects bad sizes with UsageError', () => {
    const a = image(3, 2, () => 0);
    expect(() => resizeBilinear(a, 0, 2)).toThrowError(UsageError);
    expect(() => resizeBilinear(a, 2.5, 2)).toThrowError(/2\.5x2/);
    expect(() => resizeBilinear({ width: 3, height: 3, data: a.data }, 2, 2)).toThrowError(UsageError);
  });
});

describe('resampleBilinear on float data', () => {
  it('interpolates a 2-pixel ramp without rounding', () => {
    const r = resampleBilinear(new Float32Array([0, 1]), 2, 1, 1, 4, 1);
    expect(Array.from(r)).toEqual([0, 0.25, 0.75, 1]);
  });
});

describe('resizeShortSide / centerCrop', () => {
  it('scales the short side and keeps aspect like torchvision', () => {
    const a = image(64, 48, () => 9);
    const r = resizeShortSide(a, 24);
    expect([r.width, r.height]).toEqual([32, 24]);
    const t = resizeShortSide(
      image(10, 31, () => 0),
      7,
    );
    expect([t.width, t.height]).toEqual([7, 21]);
  });

  it('crops the centre with floor offsets', () => {
    const a = image(5, 4, (x, y) => y * 10 + x);
    const c = centerCrop(a, 2, 2);
    // left = floor(3/2) = 1, top = floor(2/2) = 1
    expect(Array.from(c.data).filter((_, i) => i % 3 === 0)).toEqual([11, 12, 21, 22]);
    expect(() => centerCrop(a, 6, 2)).toThrowError(/larger than the image 5x4/);
  });
});
