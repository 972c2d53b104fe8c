import { closeSync, fsyncSync, openSync, renameSync, rmSync, writeSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { EinopsError } from '../errors.js';

/**
 * Writes `data` to `path` so readers see either the old file or the complete new one, never a torn
 * write: the bytes go to a temporary file in the same folder, which is fsynced and then renamed over
 * `path` (rename is atomic within one file system). The folder is fsynced afterwards where the platform
 * allows, so the rename survives a crash.
 *
 * @example
 * writeFileAtomic('runs/mnist/checkpoint.safetensors', bytes);
 */
export function writeFileAtomic(path: string, data: string | Uint8Array): void {
  const dir = dirname(path);
  const tmp = join(dir, `.${basename(path)}.${process.pid}.${randomBytes(4).toString('hex')}.tmp`);
  const bytes = typeof data === 'string' ? Buffer.from(data, 'utf8') : data;
  try {
    const fd = openSync(tmp, 'w');
    try {
      let off = 0;
      while (off < bytes.length) off += writeSync(fd, bytes, off, bytes.length - off);
      fsyncSync(fd);
    } finally {
      closeSync(fd);
    }
    renameSync(tmp, path);
  } catch (e) {
    rmSync(tmp, { force: true });
    throw new EinopsError(`cannot write ${path}: ${(e as Error).message}`, { cause: e });
  }
  try {
    const dfd = openSync(dir, 'r');
    try {
      fsyncSync(dfd);
    } finally {
      closeSync(dfd);
    }
  } catch {
    // Some platforms (Windows) cannot open or fsync a folder; the file itself is already durable.
  }
}

/**
 * `writeFileAtomic` of `JSON.stringify(value, null, indent)` plus a final newline.
 *
 * @example
 * writeJsonAtomic('runs/mnist/state.json', { epoch: 3, rng: rng.state });
 */
export function writeJsonAtomic(path: string, value: unknown, indent = 2): void {
  writeFileAtomic(path, JSON.stringify(value, null, indent) + '\n');
}
