// The one way einvit writes a file it must not tear: model weights, configs, optimizer and trainer
// state, exported graphs. Readers see either the old file or the complete new one.
import { closeSync, fsyncSync, openSync, renameSync, rmSync, writeSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { CheckpointError } from '../errors.js';

/** What {@link writeFileAtomic} writes: text (UTF-8), bytes, or byte chunks written in order. */
export type FileContent = string | Uint8Array | Iterable<Uint8Array>;

function writeAll(fd: number, bytes: Uint8Array): void {
  // writeSync may write less than asked (and at most 2 GB at once).
  const CHUNK = 1 << 30;
  let off = 0;
  while (off < bytes.length) off += writeSync(fd, bytes, off, Math.min(CHUNK, bytes.length - off));
}

/**
 * Writes `data` to `path` so readers see either the old file or the complete new one, never a torn
 * write: the bytes go to a temporary file in the same folder, which is fsynced and then renamed over
 * `path` (rename is atomic within one file system). The folder is fsynced afterwards where the platform
 * allows, so the rename survives a crash. A failure leaves no temporary file and throws a
 * CheckpointError naming the path.
 *
 * @example
 * writeFileAtomic('runs/mnist/model.safetensors', [header, ...tensorBytes]);
 */
export function writeFileAtomic(path: string, data: FileContent): void {
  const dir = dirname(path);
  const tmp = join(dir, `.${basename(path)}.${process.pid}.${randomBytes(4).toString('hex')}.tmp`);
  const chunks: Iterable<Uint8Array> =
    typeof data === 'string' ? [Buffer.from(data, 'utf8')] : data instanceof Uint8Array ? [data] : data;
  try {
    const fd = openSync(tmp, 'w');
    try {
      for (const chunk of chunks) writeAll(fd, chunk);
      fsyncSync(fd);
    } finally {
      closeSync(fd);
    }
    renameSync(tmp, path);
  } catch (e) {
    rmSync(tmp, { force: true });
    throw new CheckpointError(`cannot write ${path}: ${(e as Error).message}`, {
      cause: e,
      rule: 'file-write',
    });
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
