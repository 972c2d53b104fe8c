import { describe, expect, it } from 'vitest';
import { DataError, UsageError } from '../../src/errors.js';
import {
  chwToRgb,
  decodeImage,
  encodePng,
  grayToRgb,
  heatmapColor,
  overlayHeatmap,
  preprocess,
  tileImages,
  upscaleNearest,
  type RgbImage,
} from '../../src/image/index.js';

function flat(width: number, height: number, rgb: number[]): RgbImage {
  const data = new Uint8Array(width * height * 3);
  for (let i = 0; i < width * height; i++) data.set(rgb, i * 3);
  return { width, height, data };
}

function pixel(img: RgbImage, x: number, y: number): number[] {
  const i = (y * img.width + x) * 3;
  return Array.from(img.data.subarray(i, i + 3));
}

describe('heatmapColor', () => {
  it('hits the viridis and inferno end stops and clamps', () => {
    expect(heatmapColor(0)).toEqual([68, 1, 84]);
    expect(heatmapColor(1)).toEqual([253, 231, 37]);
    expect(heatmapColor(-3)).toEqual([68, 1, 84]);
    expect(heatmapColor(7)).toEqual([253, 231, 37]);
    expect(heatmapColor(0, 'inferno')).toEqual([0, 0, 4]);
    expect(heatmapColor(1, 'inferno')).toEqual([252, 255, 164]);
  });

  it('interpolates halfway between stops 4 and 5', () => {
    // stops #26828e and #1f9e89 at 4/9 and 5/9
    expect(heatmapColor(4.5 / 9)).toEqual([35, 144, 140]);
  });

  it('gets brighter monotonically (perceptual luminance)', () => {
    const lum = (c: number[]) => 0.2126 * c[0] + 0.7152 * c[1] + 0.0722 * c[2];
    for (let i = 0; i < 20; i++)
      expect(lum(heatmapColor((i + 1) / 20))).toBeGreaterThan(lum(heatmapColor(i / 20)));
  });
});

describe('overlayHeatmap', () => {
  it('keeps the image size and blends the normalised heat', () => {
    const img = flat(8, 6, [100, 100, 100]);
    const heat = new Float32Array([5, 7, 7, 9]); // min 5 -> 0, max 9 -> 1
    const out = overlayHeatmap(img, heat, 2, 2, 0.5);
    expect([out.width, out.height, out.data.length]).toEqual([8, 6, 8 * 6 * 3]);
    // the top-left corner copies heat 5 (normalised 0), the bottom-right heat 9 (normalised 1)
    expect(pixel(out, 0, 0)).toEqual([84, 51, 92]);
    expect(pixel(out, 7, 5)).toEqual([177, 166, 69]);
  });

  it('alpha 0 returns the image and a constant map uses the low colour', () => {
    const img = flat(4, 4, [10, 20, 30]);
    expect(Array.from(overlayHeatmap(img, new Float32Array(4).fill(1), 2, 2, 0).data)).toEqual(
      Array.from(img.data),
    );
    expect(pixel(overlayHeatmap(img, new Float32Array(4).fill(3), 2, 2, 1), 2, 2)).toEqual([68, 1, 84]);
  });

  it('rejects mismatched heat sizes, NaN and bad alpha', () => {
    const img = flat(4, 4, [0, 0, 0]);
    expect(() => overlayHeatmap(img, new Float32Array(3), 2, 2)).toThrowError(/3 values, expected 2x2/);
    expect(() => overlayHeatmap(img, new Float32Array([0, NaN, 0, 0]), 2, 2)).toThrowError(/heat\[1\]/);
    expect(() => overlayHeatmap(img, new Float32Array(4), 2, 2, 2)).toThrowError(UsageError);
  });
});

describe('tileImages / upscaleNearest', () => {
  it('lays out a grid with padding and background', () => {
    const a = flat(2, 2, [255, 0, 0]);
    const b = flat(2, 2, [0, 255, 0]);
    const c = flat(2, 2, [0, 0, 255]);
    const t = tileImages([a, b, c], 2, 1, [9, 9, 9]);
    // 2 cols x 2 rows of 2x2 cells, 1px padding: 2*2 + 3 = 7 both ways
    expect([t.width, t.height]).toEqual([7, 7]);
    expect(pixel(t, 0, 0)).toEqual([9, 9, 9]);
    expect(pixel(t, 1, 1)).toEqual([255, 0, 0]);
    expect(pixel(t, 4, 2)).toEqual([0, 255, 0]);
    expect(pixel(t, 2, 5)).toEqual([0, 0, 255]);
    expect(pixel(t, 5, 5)).toEqual([9, 9, 9]); // empty cell
    expect(() => tileImages([], 3)).toThrowError(UsageError);
  });

  it('centres smaller images in their cells', () => {
    const t = tileImages([flat(3, 3, [1, 1, 1]), flat(1, 1, [200, 0, 0])], 2, 0);
    expect([t.width, t.height]).toEqual([6, 3]);
    expect(pixel(t, 4, 1)).toEqual([200, 0, 0]);
    expect(pixel(t, 3, 0)).toEqual([255, 255, 255]);
  });

  it('enlarges by whole pixel blocks', () => {
    const img = { width: 2, height: 1, data: Uint8Array.from([1, 2, 3, 4, 5, 6]) };
    const u = upscaleNearest(img, 3);
    expect([u.width, u.height]).toEqual([6, 3]);
    expect(pixel(u, 2, 2)).toEqual([1, 2, 3]);
    expect(pixel(u, 3, 0)).toEqual([4, 5, 6]);
    expect(() => upscaleNearest(img, 0)).toThrowError(UsageError);
  });
});

describe('chwToRgb / grayToRgb', () => {
  it('inverts preprocess normalisation', () => {
    const img = { width: 2, height: 1, data: Uint8Array.from([0, 128, 255, 64, 32, 16]) };
    const mean = [0.485, 0.456, 0.406];
    const std = [0.229, 0.224, 0.225];
    const x = preprocess(img, { size: [1, 2], mean, std });
    expect(Array.from(chwToRgb(x.data, 2, 1, mean, std).data)).toEqual(Array.from(img.data));
  });

  it('shows a normalised MNIST digit as gray and clamps out-of-range values', () => {
    const m = 0.1307;
    const s = 0.3081;
    const x = new Float32Array([(0 - m) / s, (1 - m) / s, 5]);
    expect(Array.from(grayToRgb(x, 3, 1, m, s).data)).toEqual([0, 0, 0, 255, 255, 255, 255, 255, 255]);
    expect(() => grayToRgb(x, 2, 2)).toThrowError(UsageError);
    expect(() => chwToRgb(new Float32Array(8), 2, 2)).toThrowError(/not 1 or 3 channels/);
  });
});

describe('encodePng', () => {
  it('round-trips through decodeImage', () => {
    const img = { width: 3, height: 2, data: Uint8Array.from({ length: 18 }, (_, i) => i * 13) };
    const bytes = encodePng(img);
    expect(Array.from(bytes.subarray(1, 4))).toEqual([0x50, 0x4e, 0x47]);
    expect(decodeImage(bytes, 'rt.png')).toEqual({ width: 3, height: 2, data: img.data });
    expect(() => encodePng({ width: 2, height: 2, data: new Uint8Array(5) })).toThrowError(DataError);
  });
});
