// Safetensors reader and writer. The reader parses and checks only the JSON header up front and reads
// one tensor's bytes at a time (fs.readSync at its offset), so multi-GB checkpoints never sit in memory
// whole. Layout: u64 little-endian header length N, N bytes of JSON, then the data section; every
// data_offsets pair is relative to the start of the data section.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { tf } from '../tf.js';
import { CheckpointError } from '../errors.js';

/** Dtype strings of the safetensors format, with their item sizes in bytes. */
const ITEM_SIZE: Readonly<Record<string, number>> = {
  BOOL: 1,
  U8: 1,
  I8: 1,
  F8_E5M2: 1,
  F8_E4M3: 1,
  F8_E8M0: 1,
  I16: 2,
  U16: 2,
  F16: 2,
  BF16: 2,
  I32: 4,
  U32: 4,
  F32: 4,
  C64: 8,
  F64: 8,
  I64: 8,
  U64: 8,
};

/**
 * Item size of a safetensors dtype, or undefined. Own properties only: `constructor`, `toString` or
 * `__proto__` are names a hostile header may use, and `in` would find them on Object.prototype.
 */
function itemSize(dtype: string): number | undefined {
  return Object.hasOwn(ITEM_SIZE, dtype) ? ITEM_SIZE[dtype] : undefined;
}

/** A dtype this module knows the size of. Only F32, F16, BF16 and F64 convert to float32. */
export type SafetensorsDtype = string;

/** What the header says about one tensor. */
export interface TensorInfo {
  dtype: SafetensorsDtype;
  shape: number[];
}

/** A float32 tensor as plain data: what the writer takes and the checkpoint converters pass around. */
export interface TensorData {
  shape: number[];
  data: Float32Array;
}

/** An opened safetensors file (or byte buffer) whose header has been checked. */
export interface SafetensorsFile {
  /** File path, or `<bytes>` for an in-memory buffer; used in every error message. */
  readonly name: string;
  /** The `__metadata__` map (empty when the file has none). */
  readonly metadata: Record<string, string>;
  /** Tensor names in header order. */
  keys(): string[];
  has(key: string): boolean;
  /** Dtype and shape of `key`; throws CheckpointError for an unknown key. */
  info(key: string): TensorInfo;
  /** Reads only this tensor's bytes and converts F32/F16/BF16/F64 to a fresh Float32Array. */
  readFloat32(key: string): Float32Array;
  /** `readFloat32` wrapped in a float32 tf.Tensor of the stored shape (the caller disposes it). */
  readTensor(key: string): tf.Tensor;
  /** Closes the file descriptor; later reads throw. Safe to call twice. */
  close(): void;
}

/** Largest header accepted (the official library uses the same 100 MB limit). */
export const MAX_HEADER_BYTES = 100_000_000;

/**
 * Deepest nesting of arrays and objects accepted in the header. A valid header needs 3 levels; the
 * official library parses with serde_json, whose recursion limit is 128, so it is the bound here too.
 */
export const MAX_HEADER_DEPTH = 128;

/**
 * Most entries (tensors, plus `__metadata__`) a header may have. Far above real checkpoints (ViT-H/14
 * has 390 tensors, a shard of a 70B-parameter LLM under 1,000); a header of a million entries takes
 * JSON.parse tens of seconds and over a gigabyte.
 */
export const MAX_HEADER_ENTRIES = 100_000;

/**
 * Most JSON values (counted as commas outside strings) in the whole header: 20 per entry at the entry
 * bound. 30 million empty arrays fit in 100 MB and take JSON.parse minutes; this rejects them at once.
 */
export const MAX_HEADER_VALUES = 20 * MAX_HEADER_ENTRIES;

interface Entry {
  key: string;
  dtype: string;
  shape: number[];
  begin: number;
  end: number;
}

const LITTLE_ENDIAN = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;

function fail(name: string, message: string, rule = 'safetensors'): never {
  throw new CheckpointError(`safetensors ${name}: ${message}`, { rule });
}

function isPlainObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function isNonNegativeSafeInt(v: unknown): v is number {
  return typeof v === 'number' && Number.isSafeInteger(v) && v >= 0;
}

/** Byte reader over either a file descriptor or an in-memory buffer. */
interface Source {
  size: number;
  /** Fills `into` from absolute position `pos`; throws if the source ends first. */
  read(into: Uint8Array, pos: number): void;
  close(): void;
}

function fileSource(file: string): Source {
  let fd: number;
  try {
    fd = fs.openSync(file, 'r');
  } catch (e) {
    fail(file, `cannot open: ${(e as Error).message}`, 'file-open');
  }
  let size: number;
  try {
    const stat = fs.fstatSync(fd);
    // Linux opens a directory for reading; the first read would then throw a raw EISDIR.
    if (!stat.isFile()) {
      const what = stat.isDirectory() ? 'a directory' : 'not a regular file';
      throw new CheckpointError(`safetensors ${file}: is ${what}, not a safetensors file`, {
        rule: 'file-open',
      });
    }
    size = stat.size;
  } catch (e) {
    fs.closeSync(fd);
    if (e instanceof CheckpointError) throw e;
    fail(file, `cannot stat: ${(e as Error).message}`, 'file-open');
  }
  let open = true;
  return {
    size,
    read(into, pos) {
      if (!open) fail(file, 'file is closed', 'closed');
      // readSync may return fewer bytes than asked (and caps one call near 2 GB): loop in chunks.
      const CHUNK = 1 << 30;
      let done = 0;
      while (done < into.length) {
        const want = Math.min(CHUNK, into.length - done);
        let got: number;
        try {
          got = fs.readSync(fd, into, done, want, pos + done);
        } catch (e) {
          fail(file, `cannot read at byte ${pos + done}: ${(e as Error).message}`, 'file-read');
        }
        if (got <= 0) fail(file, `unexpected end of file at byte ${pos + done}`, 'truncated');
        done += got;
      }
    },
    close() {
      if (open) {
        open = false;
        fs.closeSync(fd);
      }
    },
  };
}

function bytesSource(bytes: Uint8Array): Source {
  let open = true;
  return {
    size: bytes.length,
    read(into, pos) {
      if (!open) fail('<bytes>', 'buffer is closed', 'closed');
      if (pos + into.length > bytes.length)
        fail('<bytes>', `unexpected end of buffer at byte ${bytes.length}`, 'truncated');
      into.set(bytes.subarray(pos, pos + into.length));
    },
    close() {
      open = false;
    },
  };
}

function parseHeader(
  name: string,
  src: Source,
): { entries: Entry[]; metadata: Record<string, string>; dataStart: number } {
  if (src.size < 8)
    fail(name, `file is ${src.size} bytes, shorter than the 8-byte header length`, 'header-length');
  const lenBytes = new Uint8Array(8);
  src.read(lenBytes, 0);
  const declared = new DataView(lenBytes.buffer).getBigUint64(0, true);
  if (declared > BigInt(MAX_HEADER_BYTES)) {
    fail(
      name,
      `declared header length ${declared} exceeds the ${MAX_HEADER_BYTES}-byte limit`,
      'header-length',
    );
  }
  const headerLen = Number(declared);
  if (8 + headerLen > src.size) {
    fail(
      name,
      `declared header length ${headerLen} runs past the end of the file (${src.size} bytes)`,
      'header-length',
    );
  }
  const headerBytes = new Uint8Array(headerLen);
  const scan = headerScanner(name);
  const CHUNK = 1 << 20;
  for (let at = 0; at < headerLen; at += CHUNK) {
    const chunk = headerBytes.subarray(at, Math.min(headerLen, at + CHUNK));
    src.read(chunk, 8 + at);
    scan(chunk, at);
  }
  let json: unknown;
  try {
    json = JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(headerBytes));
  } catch (e) {
    fail(name, `header is not valid UTF-8 JSON: ${(e as Error).message}`, 'header-json');
  }
  if (!isPlainObject(json)) fail(name, 'header JSON is not an object', 'header-json');

  const dataStart = 8 + headerLen;
  const dataSize = src.size - dataStart;
  const entries: Entry[] = [];
  let metadata: Record<string, string> = {};
  for (const [key, value] of Object.entries(json)) {
    if (key === '__metadata__') {
      if (!isPlainObject(value)) fail(name, '__metadata__ is not an object', 'metadata');
      for (const [mk, mv] of Object.entries(value)) {
        if (typeof mv !== 'string')
          fail(name, `__metadata__ value for "${mk}" is ${typeof mv}, not a string`, 'metadata');
      }
      metadata = value as Record<string, string>;
      continue;
    }
    const where = `tensor "${key}"`;
    if (!isPlainObject(value)) fail(name, `${where}: entry is not an object`, 'tensor-entry');
    const own = (field: string): unknown => (Object.hasOwn(value, field) ? value[field] : undefined);
    const dtype = own('dtype');
    const shape = own('shape');
    const offsets = own('data_offsets');
    const size = typeof dtype === 'string' ? itemSize(dtype) : undefined;
    if (typeof dtype !== 'string' || size === undefined) {
      fail(name, `${where}: unknown dtype ${JSON.stringify(dtype)}`, 'dtype');
    }
    if (!Array.isArray(shape) || !shape.every(isNonNegativeSafeInt)) {
      fail(
        name,
        `${where}: shape ${JSON.stringify(shape)} is not an array of non-negative integers`,
        'shape',
      );
    }
    if (!Array.isArray(offsets) || offsets.length !== 2 || !offsets.every(isNonNegativeSafeInt)) {
      fail(
        name,
        `${where}: data_offsets ${JSON.stringify(offsets)} is not a [begin, end] pair of non-negative integers`,
        'offsets',
      );
    }
    const [begin, end] = offsets as [number, number];
    if (end < begin) fail(name, `${where}: data_offsets end ${end} < begin ${begin}`, 'offsets');
    if (end > dataSize) {
      fail(
        name,
        `${where}: data_offsets [${begin}, ${end}] lie outside the data section of ${dataSize} bytes`,
        'offsets',
      );
    }
    // BigInt so a hostile shape cannot overflow into a false match.
    const numel = (shape as number[]).reduce((a, d) => a * BigInt(d), 1n);
    const expected = numel * BigInt(size);
    if (expected !== BigInt(end - begin)) {
      fail(
        name,
        `${where}: byte length ${end - begin} != ${numel} elements x ${size} bytes (${dtype} [${(shape as number[]).join(', ')}])`,
        'byte-length',
      );
    }
    entries.push({ key, dtype, shape: [...(shape as number[])], begin, end });
  }
  const sorted = [...entries].sort((a, b) => a.begin - b.begin || a.end - b.end);
  for (let i = 1; i < sorted.length; i++) {
    const prev = sorted[i - 1];
    const cur = sorted[i];
    if (cur.begin < prev.end) {
      fail(
        name,
        `tensor "${cur.key}" [${cur.begin}, ${cur.end}] overlaps tensor "${prev.key}" [${prev.begin}, ${prev.end}]`,
        'overlap',
      );
    }
  }
  // As the official library: the tensors cover the data section exactly, with no gap and nothing after.
  let covered = 0;
  for (const e of sorted) {
    if (e.begin > covered) {
      fail(
        name,
        `bytes [${covered}, ${e.begin}) of the data section belong to no tensor (before tensor "${e.key}")`,
        'gap',
      );
    }
    covered = e.end;
  }
  if (covered !== dataSize) {
    fail(
      name,
      `${dataSize - covered} bytes after the last tensor (the data section is ${dataSize} bytes, tensors end at ${covered})`,
      'trailing-bytes',
    );
  }
  return { entries, metadata, dataStart };
}

/**
 * Bounds what JSON.parse will be asked to build, in one pass over the bytes (strings skipped): nesting
 * depth, top-level entries and values. JSON.parse of a 100 MB header of tiny values takes minutes and
 * gigabytes; this scan takes a fraction of a second, and runs chunk by chunk as the header is read so
 * that a hostile header fails at its first megabyte.
 */
function headerScanner(name: string): (chunk: Uint8Array, offset: number) => void {
  const QUOTE = 0x22;
  const BACKSLASH = 0x5c;
  const COMMA = 0x2c;
  let depth = 0;
  let inString = false;
  let escaped = false;
  let entries = 1;
  let values = 0;
  return (chunk, offset) => {
    for (let i = 0; i < chunk.length; i++) {
      const b = chunk[i];
      if (inString) {
        if (escaped) escaped = false;
        else if (b === BACKSLASH) escaped = true;
        else if (b === QUOTE) inString = false;
      } else if (b === QUOTE) inString = true;
      else if (b === COMMA) {
        if (depth === 1 && ++entries > MAX_HEADER_ENTRIES) {
          fail(name, `header has more than ${MAX_HEADER_ENTRIES} entries (tensors)`, 'header-size');
        }
        if (++values > MAX_HEADER_VALUES) {
          fail(name, `header has more than ${MAX_HEADER_VALUES} JSON values`, 'header-size');
        }
      } else if (b === 0x5b || b === 0x7b) {
        if (++depth > MAX_HEADER_DEPTH) {
          fail(
            name,
            `header JSON is nested more than ${MAX_HEADER_DEPTH} levels deep (at byte ${8 + offset + i})`,
            'header-json',
          );
        }
      } else if (b === 0x5d || b === 0x7d) depth--;
    }
  };
}

function swapBytes(bytes: Uint8Array, size: number): void {
  for (let i = 0; i < bytes.length; i += size) {
    for (let a = i, b = i + size - 1; a < b; a++, b--) {
      const t = bytes[a];
      bytes[a] = bytes[b];
      bytes[b] = t;
    }
  }
}

const f16Scratch = new Float32Array(1);
const f16ScratchU = new Uint32Array(f16Scratch.buffer);

/** IEEE half (1-5-10) bits to a float, exact (every half is a float32). */
export function halfToFloat(h: number): number {
  const sign = (h & 0x8000) << 16;
  const exp = (h >> 10) & 0x1f;
  const man = h & 0x3ff;
  if (exp === 0) {
    // zero or subnormal: man * 2^-24
    const v = man * 5.960464477539063e-8;
    return sign ? -v : v;
  }
  if (exp === 0x1f) {
    f16ScratchU[0] = sign | 0x7f800000 | (man << 13);
    return f16Scratch[0];
  }
  f16ScratchU[0] = sign | ((exp + 112) << 23) | (man << 13);
  return f16Scratch[0];
}

/**
 * Opens a safetensors file (or in-memory bytes) and checks its whole header before any tensor is read.
 * Bad files raise CheckpointError naming the file and tensor, never a raw error or a huge allocation.
 *
 * @example
 * const f = openSafetensors('model.safetensors');
 * try { const w = f.readFloat32('head.weight'); console.log(f.info('head.weight').shape, w[0]); } finally { f.close(); }
 */
export function openSafetensors(pathOrBytes: string | Uint8Array): SafetensorsFile {
  const name = typeof pathOrBytes === 'string' ? pathOrBytes : '<bytes>';
  const src = typeof pathOrBytes === 'string' ? fileSource(pathOrBytes) : bytesSource(pathOrBytes);
  let header: ReturnType<typeof parseHeader>;
  try {
    header = parseHeader(name, src);
  } catch (e) {
    src.close();
    throw e;
  }
  const byKey = new Map(header.entries.map((e) => [e.key, e]));
  const get = (key: string): Entry => {
    const e = byKey.get(key);
    if (e === undefined) fail(name, `no tensor "${key}" (the file has ${byKey.size} tensors)`, 'missing-key');
    return e;
  };

  const readFloat32 = (key: string): Float32Array => {
    const e = get(key);
    const n = (e.end - e.begin) / itemSize(e.dtype)!;
    const pos = header.dataStart + e.begin;
    switch (e.dtype) {
      case 'F32': {
        const out = new Float32Array(n);
        const bytes = new Uint8Array(out.buffer);
        src.read(bytes, pos);
        if (!LITTLE_ENDIAN) swapBytes(bytes, 4);
        return out;
      }
      case 'F64': {
        const raw = new Float64Array(n);
        const bytes = new Uint8Array(raw.buffer);
        src.read(bytes, pos);
        if (!LITTLE_ENDIAN) swapBytes(bytes, 8);
        return Float32Array.from(raw);
      }
      case 'F16': {
        const raw = new Uint16Array(n);
        const bytes = new Uint8Array(raw.buffer);
        src.read(bytes, pos);
        if (!LITTLE_ENDIAN) swapBytes(bytes, 2);
        const out = new Float32Array(n);
        for (let i = 0; i < n; i++) out[i] = halfToFloat(raw[i]);
        return out;
      }
      case 'BF16': {
        const raw = new Uint16Array(n);
        const bytes = new Uint8Array(raw.buffer);
        src.read(bytes, pos);
        if (!LITTLE_ENDIAN) swapBytes(bytes, 2);
        // bfloat16 is the top half of a float32.
        const out = new Float32Array(n);
        const bits = new Uint32Array(out.buffer);
        for (let i = 0; i < n; i++) bits[i] = raw[i] << 16;
        return out;
      }
      default:
        fail(
          name,
          `tensor "${key}" has dtype ${e.dtype}, which does not convert to float32 (F32, F16, BF16, F64 do)`,
          'dtype',
        );
    }
  };

  return {
    name,
    metadata: header.metadata,
    keys: () => header.entries.map((e) => e.key),
    has: (key) => byKey.has(key),
    info: (key) => {
      const e = get(key);
      return { dtype: e.dtype, shape: [...e.shape] };
    },
    readFloat32,
    readTensor: (key) => {
      const data = readFloat32(key);
      return tf.tensor(data, get(key).shape, 'float32');
    },
    close: () => src.close(),
  };
}

function checkTensorData(file: string, key: string, t: TensorData): void {
  if (key === '__metadata__') fail(file, 'a tensor may not be named "__metadata__"', 'tensor-entry');
  if (t === null || typeof t !== 'object')
    fail(file, `tensor "${key}": not a { shape, data } object`, 'tensor-entry');
  if (!Array.isArray(t.shape) || !t.shape.every(isNonNegativeSafeInt)) {
    fail(
      file,
      `tensor "${key}": shape ${JSON.stringify(t.shape)} is not an array of non-negative integers`,
      'shape',
    );
  }
  if (!(t.data instanceof Float32Array))
    fail(file, `tensor "${key}": data is not a Float32Array`, 'tensor-entry');
  const numel = t.shape.reduce((a, d) => a * d, 1);
  if (numel !== t.data.length) {
    fail(
      file,
      `tensor "${key}": shape [${t.shape.join(', ')}] holds ${numel} elements but data has ${t.data.length}`,
      'shape',
    );
  }
}

/**
 * Writes float32 tensors as a safetensors file the official library and transformers read: keys sorted,
 * data packed in that order, header padded with spaces to a multiple of 8. Written to
 * `<path>.tmp-<pid>` then renamed, so a crash never leaves a half-written checkpoint under `path`.
 *
 * @example
 * writeSafetensors('out.safetensors', { 'head.bias': { shape: [2], data: new Float32Array([1, 2]) } }, { format: 'pt' });
 */
export function writeSafetensors(
  file: string,
  tensors: Record<string, TensorData> | Map<string, TensorData>,
  metadata?: Record<string, string>,
): void {
  const entries = tensors instanceof Map ? [...tensors.entries()] : Object.entries(tensors);
  entries.sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
  for (let i = 0; i < entries.length; i++) {
    checkTensorData(file, entries[i][0], entries[i][1]);
    if (i > 0 && entries[i][0] === entries[i - 1][0])
      fail(file, `duplicate tensor "${entries[i][0]}"`, 'tensor-entry');
  }
  const header: Record<string, unknown> = {};
  if (metadata !== undefined) {
    if (!isPlainObject(metadata)) fail(file, '__metadata__ is not an object', 'metadata');
    for (const [k, v] of Object.entries(metadata)) {
      if (typeof v !== 'string')
        fail(file, `__metadata__ value for "${k}" is ${typeof v}, not a string`, 'metadata');
    }
    header.__metadata__ = { ...metadata };
  }
  let offset = 0;
  for (const [key, t] of entries) {
    const bytes = t.data.length * 4;
    header[key] = { dtype: 'F32', shape: t.shape, data_offsets: [offset, offset + bytes] };
    offset += bytes;
  }
  let json = Buffer.from(JSON.stringify(header), 'utf8');
  const pad = (8 - (json.length % 8)) % 8;
  if (pad > 0) json = Buffer.concat([json, Buffer.alloc(pad, 0x20)]);
  const prefix = Buffer.alloc(8);
  prefix.writeBigUInt64LE(BigInt(json.length), 0);

  const tmp = `${file}.tmp-${process.pid}`;
  let fd: number | undefined;
  try {
    fs.mkdirSync(path.dirname(path.resolve(file)), { recursive: true });
    fd = fs.openSync(tmp, 'w');
    writeAll(fd, prefix);
    writeAll(fd, json);
    for (const [, t] of entries) {
      let bytes = new Uint8Array(t.data.buffer, t.data.byteOffset, t.data.byteLength);
      if (!LITTLE_ENDIAN) {
        bytes = bytes.slice();
        swapBytes(bytes, 4);
      }
      writeAll(fd, bytes);
    }
    fs.fsyncSync(fd);
    fs.closeSync(fd);
    fd = undefined;
    fs.renameSync(tmp, file);
  } catch (e) {
    if (fd !== undefined) fs.closeSync(fd);
    fs.rmSync(tmp, { force: true });
    if (e instanceof CheckpointError) throw e;
    fail(file, `cannot write: ${(e as Error).message}`, 'file-write');
  }
}

function writeAll(fd: number, bytes: Uint8Array): void {
  const CHUNK = 1 << 30;
  let done = 0;
  while (done < bytes.length) {
    done += fs.writeSync(fd, bytes, done, Math.min(CHUNK, bytes.length - done));
  }
}
