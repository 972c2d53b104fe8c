// Stands in for node:fs, node:fs/promises and node:path in the browser bundle (see vite.config.ts).
// The page builds models from bytes (web/src/model.ts); the library's path-based helpers are
// unreachable from it, and if one is ever called it fails with an einvit error, not a TypeError.
import { CheckpointError } from '../../src/errors.js';

function unavailable(name: string): never {
  throw new CheckpointError(
    `${name}: there is no file system in the browser; load checkpoints from bytes (loadViTFromFiles)`,
    { rule: 'no-file-system' },
  );
}

const stub =
  (name: string) =>
  (..._args: unknown[]): never =>
    unavailable(name);

export const existsSync = (): boolean => false;
export const readFileSync = stub('readFileSync');
export const readdirSync = stub('readdirSync');
export const statSync = stub('statSync');
export const openSync = stub('openSync');
export const fstatSync = stub('fstatSync');
export const readSync = stub('readSync');
export const closeSync = stub('closeSync');
export const writeSync = stub('writeSync');
export const fsyncSync = stub('fsyncSync');
export const writeFileSync = stub('writeFileSync');
export const appendFileSync = stub('appendFileSync');
export const mkdirSync = stub('mkdirSync');
export const renameSync = stub('renameSync');
export const rmSync = stub('rmSync');
export const readFile = stub('readFile');
export const writeFile = stub('writeFile');
export const mkdir = stub('mkdir');
export const rename = stub('rename');
// Path joining is harmless and is used to build error messages before any file access.
export const join = (...parts: string[]): string => parts.filter((p) => p !== '').join('/');
export const dirname = (p: string): string => p.replace(/\/[^/]*$/, '') || '.';
export const basename = (p: string): string => p.replace(/^.*\//, '');
export const extname = (p: string): string => /\.[^./]*$/.exec(p)?.[0] ?? '';
export const resolve = (...parts: string[]): string => join(...parts);
export default { existsSync, readFileSync, join, dirname, basename, extname, resolve };
