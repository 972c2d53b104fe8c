import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import jpeg from 'jpeg-js';
import { PNG } from 'pngjs';
import { describe, expect, it } from 'vitest';
import { DataError } from '../../src/errors.js';
import { decodeImage, loadImage, sniffFormat } from '../../src/image/index.js';

/** Encodes RGBA pixels as a PNG with the given pngjs colour type (0 gray, 2 RGB, 4 gray+alpha, 6 RGBA). */
function makePng(width: number, height: number, rgba: number[], colorType: 0 | 2 | 4 | 6 = 6): Uint8Array {
  const png = new PNG({ width, height });
  png.data = Buffer.from(rgba);
  return PNG.sync.write(png, { colorType });
}

function rgbaGradient(width: number, height: number): number[] {
  const out: number[] = [];
  for (let y = 0; y < height; y++)
    for (let x = 0; x < width; x++) out.push((x * 40) % 256, (y * 50) % 256, (x * y * 7) % 256, 255);
  return out;
}

describe('decodeImage: PNG', () => {
  it('decodes RGBA PNG pixels exactly, dropping alpha', () => {
    const rgba = rgbaGradient(5, 3);
    const img = decodeImage(makePng(5, 3, rgba), 'grad.png');
    expect([img.width, img.height]).toEqual([5, 3]);
    const rgb = rgba.filter((_, i) => i % 4 !== 3);
    expect(Array.from(img.data)).toEqual(rgb);
  });

  it('expands grayscale PNG to three equal channels', () => {
    const rgba = [0, 0, 0, 255, 90, 90, 90, 255, 255, 255, 255, 255];
    const img = decodeImage(makePng(3, 1, rgba, 0), 'gray.png');
    expect(Array.from(img.data)).toEqual([0, 0, 0, 90, 90, 90, 255, 255, 255]);
  });

  it('drops alpha by default and composites on white on request', () => {
    // one pixel red at alpha 0, one blue at alpha 128
    const rgba = [255, 0, 0, 0, 0, 0, 255, 128];
    const bytes = makePng(2, 1, rgba, 6);
    expect(Array.from(decodeImage(bytes, 'a.png').data)).toEqual([255, 0, 0, 0, 0, 255]);
    const white = decodeImage(bytes, 'a.png', { alpha: 'white' });
    // 128/255 of colour + 127/255 of white: round(127*255/255)=127
    expect(Array.from(white.data)).toEqual([255, 255, 255, 127, 127, 255]);
  });

  it('rejects truncated PNGs with an DataError naming the file', () => {
    const bytes = makePng(16, 16, rgbaGradient(16, 16));
    for (const cut of [4, 20, 40, bytes.length - 20]) {
      expect(() => decodeImage(bytes.subarray(0, cut), 'cut.png')).toThrowError(DataError);
      expect(() => decodeImage(bytes.subarray(0, cut), 'cut.png')).toThrowError(/cut\.png/);
    }
  });

  it("says 'truncated' (not pngjs' read-request message) for a PNG cut anywhere after its header", () => {
    const bytes = makePng(16, 16, rgbaGradient(16, 16));
    for (let cut = 33; cut < bytes.length; cut += 7) {
      let message = '';
      try {
        decodeImage(bytes.subarray(0, cut), 'cut.png');
      } catch (e) {
        expect(e).toBeInstanceOf(DataError);
        message = (e as Error).message;
      }
      expect(message).toMatch(/^cut\.png: truncated PNG \(the file ends/);
      expect(message).not.toMatch(/read requests/);
    }
    const last = bytes.length - 1;
    expect(() => decodeImage(bytes.subarray(0, last), 'cut.png')).toThrowError(
      `cut.png: truncated PNG (the file ends inside its IEND chunk: ${last} bytes of ${bytes.length} needed)`,
    );
  });

  it("says 'corrupt' for a whole PNG with damaged data", () => {
    const bytes = makePng(16, 16, rgbaGradient(16, 16)).slice();
    bytes[60] ^= 0xff; // inside IDAT: the chunk CRC no longer matches
    expect(() => decodeImage(bytes, 'bad.png')).toThrowError(/^bad\.png: corrupt PNG \(/);
  });

  it('rejects PNGs above the megapixel limit before decoding', () => {
    const bytes = makePng(16, 16, rgbaGradient(16, 16));
    expect(() => decodeImage(bytes, 'big.png', { maxMegapixels: 0.0001 })).toThrowError(/big\.png.*16x16/);
  });
});

describe('decodeImage: JPEG', () => {
  const width = 16;
  const height = 8;
  const rgba = Buffer.alloc(width * height * 4);
  for (let i = 0; i < width * height; i++) rgba.set([200, 100, 50, 255], i * 4);
  const bytes = new Uint8Array(jpeg.encode({ width, height, data: rgba }, 95).data);

  it('decodes a JPEG to RGB near the encoded colour', () => {
    const img = decodeImage(bytes, 'flat.jpg');
    expect([img.width, img.height, img.data.length]).toEqual([16, 8, 16 * 8 * 3]);
    for (let i = 0; i < width * height; i++) {
      expect(Math.abs(img.data[i * 3] - 200)).toBeLessThanOrEqual(3);
      expect(Math.abs(img.data[i * 3 + 1] - 100)).toBeLessThanOrEqual(3);
      expect(Math.abs(img.data[i * 3 + 2] - 50)).toBeLessThanOrEqual(3);
    }
  });

  it('detects format from bytes, not from the name', () => {
    expect(sniffFormat(bytes)).toBe('jpeg');
    expect(decodeImage(bytes, 'misnamed.png').width).toBe(16);
  });

  it('rejects truncated JPEGs and oversized ones', () => {
    expect(() => decodeImage(bytes.subarray(0, 100), 'cut.jpg')).toThrowError(/cut\.jpg/);
    expect(() => decodeImage(bytes.subarray(0, 100), 'cut.jpg')).toThrowError(DataError);
    expect(() => decodeImage(bytes, 'big.jpg', { maxMegapixels: 0.00001 })).toThrowError(DataError);
    for (const cut of [100, bytes.length - 40, bytes.length - 1]) {
      expect(() => decodeImage(bytes.subarray(0, cut), 'cut.jpg')).toThrowError(
        /^cut\.jpg: truncated JPEG \(no end-of-image marker\)/,
      );
    }
  });
});

describe('decodeImage / loadImage errors', () => {
  it('rejects unknown formats and empty input', () => {
    expect(() => decodeImage(new TextEncoder().encode('GIF89a...'), 'x.gif')).toThrowError(
      /x\.gif: not a PNG or JPEG/,
    );
    expect(() => decodeImage(new Uint8Array(0), 'empty.png')).toThrowError(/empty/);
  });

  it('loads files and names missing ones', () => {
    const dir = mkdtempSync(join(tmpdir(), 'einvit-decode-'));
    const path = join(dir, 'px.png');
    writeFileSync(path, makePng(1, 1, [1, 2, 3, 255]));
    expect(Array.from(loadImage(path).data)).toEqual([1, 2, 3]);
    expect(() => loadImage(join(dir, 'nope.png'))).toThrowError(/nope\.png/);
    expect(() => loadImage(join(dir, 'nope.png'))).toThrowError(DataError);
  });
});
