import { writeFileSync } from 'node:fs';
import { PNG } from 'pngjs';
import { CheckpointError, DataError, UsageError } from '../errors.js';
import type { RgbImage } from './decode.js';

/**
 * Encodes an 8-bit RGB image as a PNG (colour type 2, no alpha).
 *
 * @example
 * const bytes = encodePng({ width: 1, height: 1, data: new Uint8Array([255, 0, 0]) });
 */
export function encodePng(img: RgbImage): Uint8Array {
  const { width, height, data } = img;
  if (!Number.isInteger(width) || !Number.isInteger(height) || width < 1 || height < 1) {
    throw new UsageError(`encodePng: image size must be positive integers, got ${width}x${height}`, {
      rule: 'bad-size',
    });
  }
  if (data.length !== width * height * 3) {
    throw new DataError(
      `encodePng: image data has ${data.length} bytes, expected ${width}x${height}x3 = ${width * height * 3}`,
      { rule: 'bad-size' },
    );
  }
  // pngjs takes RGBA input; it writes RGB when told the input has no alpha.
  const png = new PNG({ width, height, colorType: 2, inputColorType: 2, inputHasAlpha: false });
  png.data = Buffer.from(data.buffer, data.byteOffset, data.byteLength);
  const out = PNG.sync.write(png, { colorType: 2, inputColorType: 2, inputHasAlpha: false });
  return new Uint8Array(out.buffer, out.byteOffset, out.byteLength);
}

/**
 * Writes an RGB image to `path` as PNG. Failures to write throw `CheckpointError` naming the path.
 *
 * @example
 * writePng('out/attention.png', overlayHeatmap(img, heat, 14, 14));
 */
export function writePng(path: string, img: RgbImage): void {
  const bytes = encodePng(img);
  try {
    writeFileSync(path, bytes);
  } catch (e) {
    throw new CheckpointError(`${path}: cannot write PNG (${e instanceof Error ? e.message : String(e)})`, {
      rule: 'write-failed',
      cause: e,
    });
  }
}
