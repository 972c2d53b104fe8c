import { readFileSync } from 'node:fs';
import { PNG } from 'pngjs';
import jpeg from 'jpeg-js';
import { DataError } from '../errors.js';

/** An 8-bit RGB image, row-major HWC: pixel (x, y) channel c is `data[(y * width + x) * 3 + c]`. */
export interface RgbImage {
  width: number;
  height: number;
  data: Uint8Array;
}

/** What to do with a PNG alpha channel. */
export type AlphaMode = 'drop' | 'white';

export interface DecodeOptions {
  /**
   * `'drop'` (default) keeps the colour under the alpha channel, which is what PIL's `convert('RGB')`
   * does and so what HuggingFace/timm preprocessing sees. `'white'` composites onto a white background,
   * which looks right for transparent icons and drawings.
   */
  alpha?: AlphaMode;
  /** Largest image accepted, in megapixels (default 100). Checked before pixels are allocated. */
  maxMegapixels?: number;
  /** JPEG decoder memory cap in MB (default 512), passed to jpeg-js. */
  maxMemoryMB?: number;
}

export type ImageFormat = 'png' | 'jpeg';

const PNG_MAGIC = [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a];

/**
 * Detects the format from the first bytes (never from the file name).
 *
 * @example
 * sniffFormat(readFileSync('cat.jpg')); // 'jpeg'
 */
export function sniffFormat(bytes: Uint8Array): ImageFormat | undefined {
  if (bytes.length >= 8 && PNG_MAGIC.every((b, i) => bytes[i] === b)) return 'png';
  if (bytes.length >= 3 && bytes[0] === 0xff && bytes[1] === 0xd8 && bytes[2] === 0xff) return 'jpeg';
  return undefined;
}

function describe(e: unknown): string {
  if (e instanceof Error) return e.message;
  return String(e);
}

/** Width and height from the IHDR chunk, so a huge PNG is rejected before pngjs allocates it. */
function pngHeaderSize(bytes: Uint8Array, name: string): { width: number; height: number } {
  // signature (8) + chunk length (4) + 'IHDR' (4) + width (4) + height (4)
  if (bytes.length < 24 || String.fromCharCode(...bytes.subarray(12, 16)) !== 'IHDR') {
    throw new DataError(`${name}: truncated or malformed PNG (no IHDR header)`, { rule: 'bad-image' });
  }
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  return { width: view.getUint32(16), height: view.getUint32(20) };
}

function checkSize(width: number, height: number, maxMp: number, name: string): void {
  if (width === 0 || height === 0) {
    throw new DataError(`${name}: image has zero size (${width}x${height})`, { rule: 'bad-image' });
  }
  if (width * height > maxMp * 1e6) {
    throw new DataError(
      `${name}: image is ${width}x${height} = ${((width * height) / 1e6).toFixed(1)} MP, above the ${maxMp} MP limit`,
      { rule: 'image-too-large' },
    );
  }
}

/**
 * Walks the PNG chunk list; returns why the file is cut short (a chunk running past the end, or no
 * IEND chunk), or undefined when every chunk is whole.
 */
function pngTruncation(bytes: Uint8Array): string | undefined {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  let at = 8;
  while (at + 8 <= bytes.length) {
    const length = view.getUint32(at);
    const type = String.fromCharCode(...bytes.subarray(at + 4, at + 8));
    const end = at + 12 + length; // length, type, data, CRC
    if (end > bytes.length) {
      return `the file ends inside its ${type} chunk: ${bytes.length} bytes of ${end} needed`;
    }
    if (type === 'IEND') return undefined;
    at = end;
  }
  return `the file ends after ${bytes.length} bytes without an IEND chunk`;
}

/** Whether a JPEG lacks its end-of-image marker (FF D9), allowing trailing zero padding. */
function jpegTruncated(bytes: Uint8Array): boolean {
  let end = bytes.length;
  while (end > 0 && bytes[end - 1] === 0) end--;
  return !(end >= 2 && bytes[end - 2] === 0xff && bytes[end - 1] === 0xd9);
}

function decodePng(bytes: Uint8Array, name: string, opts: Required<DecodeOptions>): RgbImage {
  const head = pngHeaderSize(bytes, name);
  checkSize(head.width, head.height, opts.maxMegapixels, name);
  let png: { width: number; height: number; data: Uint8Array };
  try {
    // pngjs expands gray, gray+alpha, palette (with tRNS) and 16-bit to 8-bit RGBA.
    png = PNG.sync.read(Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength));
  } catch (e) {
    // pngjs reports a cut-off file as "There are some read requests waitng on finished stream".
    const cut = pngTruncation(bytes);
    const what = cut ? `truncated PNG (${cut})` : `corrupt PNG (${describe(e)})`;
    throw new DataError(`${name}: ${what}`, { rule: 'bad-image', cause: e });
  }
  const n = png.width * png.height;
  const out = new Uint8Array(n * 3);
  const src = png.data;
  if (opts.alpha === 'white') {
    for (let i = 0; i < n; i++) {
      const a = src[i * 4 + 3];
      for (let c = 0; c < 3; c++) {
        // a*v + (255-a)*255, divided by 255 with rounding
        out[i * 3 + c] = Math.round((a * src[i * 4 + c] + (255 - a) * 255) / 255);
      }
    }
  } else {
    for (let i = 0; i < n; i++) {
      out[i * 3] = src[i * 4];
      out[i * 3 + 1] = src[i * 4 + 1];
      out[i * 3 + 2] = src[i * 4 + 2];
    }
  }
  return { width: png.width, height: png.height, data: out };
}

function decodeJpeg(bytes: Uint8Array, name: string, opts: Required<DecodeOptions>): RgbImage {
  let img: { width: number; height: number; data: Uint8Array };
  try {
    img = jpeg.decode(bytes, {
      useTArray: true,
      formatAsRGBA: false, // 3 channels; grayscale is expanded, CMYK converted
      tolerantDecoding: false, // a truncated file is an error, not a half-grey picture
      maxResolutionInMP: opts.maxMegapixels,
      maxMemoryUsageInMB: opts.maxMemoryMB,
    });
  } catch (e) {
    // jpeg-js reports a cut-off file as "unknown JPEG marker 0" or "marker was not found".
    const what = jpegTruncated(bytes) ? 'truncated JPEG (no end-of-image marker)' : 'corrupt JPEG';
    throw new DataError(`${name}: ${what} (${describe(e)})`, { rule: 'bad-image', cause: e });
  }
  checkSize(img.width, img.height, opts.maxMegapixels, name);
  if (img.data.length !== img.width * img.height * 3) {
    throw new DataError(`${name}: JPEG decoded to an unexpected buffer size`, { rule: 'bad-image' });
  }
  return { width: img.width, height: img.height, data: img.data };
}

/**
 * Decodes PNG or JPEG bytes into an 8-bit RGB image. The format is detected from magic bytes; `name` is
 * only used in error messages. PNG gray/palette/16-bit inputs become 8-bit RGB; alpha is dropped by
 * default (like PIL's `convert('RGB')`) or composited on white with `{ alpha: 'white' }`. JPEG grayscale
 * and CMYK become RGB. Unknown, truncated, corrupt or oversized inputs throw `DataError` naming `name`.
 *
 * @example
 * const img = decodeImage(readFileSync('cat.png'), 'cat.png');
 * img.width; img.height; img.data.length === img.width * img.height * 3;
 */
export function decodeImage(bytes: Uint8Array, name: string, options: DecodeOptions = {}): RgbImage {
  const opts: Required<DecodeOptions> = {
    alpha: options.alpha ?? 'drop',
    maxMegapixels: options.maxMegapixels ?? 100,
    maxMemoryMB: options.maxMemoryMB ?? 512,
  };
  const format = sniffFormat(bytes);
  if (format === 'png') return decodePng(bytes, name, opts);
  if (format === 'jpeg') return decodeJpeg(bytes, name, opts);
  const head = Array.from(bytes.subarray(0, 8), (b) => b.toString(16).padStart(2, '0')).join(' ');
  throw new DataError(`${name}: not a PNG or JPEG file (first bytes: ${head || 'none, the file is empty'})`, {
    rule: 'unknown-image-format',
  });
}

/**
 * Reads and decodes a PNG or JPEG file (see {@link decodeImage}).
 *
 * @example
 * const img = loadImage('test/data/cat.jpg');
 */
export function loadImage(path: string, options: DecodeOptions = {}): RgbImage {
  let bytes: Uint8Array;
  try {
    bytes = readFileSync(path);
  } catch (e) {
    throw new DataError(`${path}: cannot read image file (${describe(e)})`, {
      rule: 'bad-image',
      cause: e,
    });
  }
  return decodeImage(bytes, path, options);
}
