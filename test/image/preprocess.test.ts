import { describe, expect, it } from 'vitest';
import { UsageError } from '../../src/errors.js';
import {
  HF_VIT_PREPROCESSING,
  IMAGENET_DEFAULT_MEAN,
  IMAGENET_DEFAULT_STD,
  preprocess,
  type RgbImage,
} from '../../src/image/index.js';

function image(width: number, height: number, f: (x: number, y: number, c: number) => number): RgbImage {
  const data = new Uint8Array(width * height * 3);
  for (let y = 0; y < height; y++)
    for (let x = 0; x < width; x++) for (let c = 0; c < 3; c++) data[(y * width + x) * 3 + c] = f(x, y, c);
  return { width, height, data };
}

describe('preprocess', () => {
  it('maps 0 and 255 to -1 and 1 with the HF ViT settings, CHW layout', () => {
    const img = image(2, 1, (x, _y, c) => (c === 0 ? 255 * x : c === 1 ? 255 : 0));
    const out = preprocess(img, { ...HF_VIT_PREPROCESSING, size: [1, 2] });
    expect(out).toMatchObject({ channels: 3, height: 1, width: 2 });
    expect(Array.from(out.data)).toEqual([-1, 1, 1, 1, -1, -1]);
  });

  it('matches HuggingFace (PIL resize, float64 rescale, float32 normalise) with ImageNet stats', () => {
    // reference computed with PIL 9.4 + numpy exactly as transformers' ViTImageProcessor does
    const a = image(7, 5, (x, y, c) => (x * 37 + y * 91 + c * 53) % 256);
    const out = preprocess(a, { size: [2, 3], mean: IMAGENET_DEFAULT_MEAN, std: IMAGENET_DEFAULT_STD });
    const expected = [
      -0.42255333065986633, 0.09118937700986862, 0.09118937700986862, -0.3026800751686096,
      -0.09718302637338638, 0.07406462728977203, 0.18767505884170532, 0.6603642106056213, 0.17016805708408356,
      0.3102242052555084, 0.2752102017402649, 0.4327732026576996, 0.5833553075790405, 0.4787801504135132,
      0.5833553075790405, 0.7576472163200378, 0.4090632498264313, 0.4090632498264313,
    ];
    expect(Array.from(out.data)).toEqual(expected);
  });

  it('produces 3x224x224 for the HF config', () => {
    const out = preprocess(
      image(40, 30, () => 128),
      HF_VIT_PREPROCESSING,
    );
    expect(out.data.length).toBe(3 * 224 * 224);
    expect(out.data[0]).toBeCloseTo((128 / 255 - 0.5) / 0.5, 6);
  });

  it('converts to luminance for one channel like PIL convert("L")', () => {
    const img = image(
      4,
      1,
      (x, _y, c) =>
        [
          [200, 30, 90],
          [1, 2, 255],
          [128, 128, 128],
          [255, 255, 255],
        ][x][c],
    );
    const out = preprocess(img, { size: [1, 4], mean: [0], std: [1 / 255], channels: 1 });
    expect(Array.from(out.data).map((v) => Math.round(v))).toEqual([88, 31, 128, 255]);
  });

  it('rejects mismatched mean/std and zero std', () => {
    const img = image(2, 2, () => 0);
    expect(() => preprocess(img, { size: 2, mean: [0.5], std: [0.5, 0.5, 0.5] })).toThrowError(UsageError);
    expect(() => preprocess(img, { size: 2, mean: [0, 0, 0], std: [1, 0, 1] })).toThrowError(/non-zero/);
  });
});
