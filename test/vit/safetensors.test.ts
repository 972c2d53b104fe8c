import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CheckpointError } from '../../src/errors.js';
import {
  halfToFloat,
  MAX_HEADER_DEPTH,
  MAX_HEADER_ENTRIES,
  openSafetensors,
  writeSafetensors,
} from '../../src/vit/safetensors.js';
import { ready } from '../../src/backends/index.js';
import { parseConfig } from '../../src/vit/config.js';
import { fromHuggingFace } from '../../src/vit/weights.js';
import { tf } from '../../src/tf.js';

const REF = path.join(path.dirname(new URL(import.meta.url).pathname), '..', 'vit-reference');
let dir: string;

beforeAll(async () => {
  await ready('cpu');
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'einvit-st-'));
});
afterAll(() => {
  fs.rmSync(dir, { recursive: true, force: true });
});

/** Builds raw safetensors bytes from a header object (no padding) and a data section. */
function rawFile(header: unknown, data: Uint8Array = new Uint8Array(0), declaredLength?: bigint): Uint8Array {
  const json = Buffer.from(JSON.stringify(header), 'utf8');
  const out = new Uint8Array(8 + json.length + data.length);
  new DataView(out.buffer).setBigUint64(0, declaredLength ?? BigInt(json.length), true);
  out.set(json, 8);
  out.set(data, 8 + json.length);
  return out;
}

function writeRaw(name: string, bytes: Uint8Array): string {
  const p = path.join(dir, name);
  fs.writeFileSync(p, bytes);
  return p;
}

function expectFileError(fn: () => unknown, ...fragments: string[]): void {
  let caught: unknown;
  try {
    fn();
  } catch (e) {
    caught = e;
  }
  expect(caught).toBeInstanceOf(CheckpointError);
  for (const f of fragments) expect((caught as Error).message).toContain(f);
}

describe('reading the reference files', () => {
  it('reads model and io tensors of cifar-tiny', () => {
    const f = openSafetensors(path.join(REF, 'cifar-tiny', 'model.safetensors'));
    try {
      expect(f.metadata).toEqual({ format: 'pt' });
      expect(f.keys()).toHaveLength(4 * 16 + 4 + 2 + 2);
      expect(f.info('vit.embeddings.patch_embeddings.projection.weight')).toEqual({
        dtype: 'F32',
        shape: [48, 3, 4, 4],
      });
      expect(f.info('vit.embeddings.position_embeddings').shape).toEqual([1, 65, 48]);
      const w = f.readFloat32('vit.embeddings.patch_embeddings.projection.weight');
      expect(w.length).toBe(48 * 3 * 4 * 4);
      expect(w.every(Number.isFinite)).toBe(true);
      // random init plus noise: not all equal, small magnitude
      expect(new Set(w).size).toBeGreaterThan(100);
      expect(Math.max(...w.map(Math.abs))).toBeLessThan(10);
    } finally {
      f.close();
    }
    const io = openSafetensors(path.join(REF, 'cifar-tiny', 'io.safetensors'));
    try {
      expect(io.info('pixel_values').shape).toEqual([2, 3, 32, 32]);
      const px = io.readFloat32('pixel_values');
      expect(px.length).toBe(2 * 3 * 32 * 32);
      expect(Math.min(...px)).toBeGreaterThanOrEqual(-1);
      expect(Math.max(...px)).toBeLessThan(1);
      const attn = io.readFloat32('attentions.0');
      // softmax rows sum to 1
      let row = 0;
      for (let i = 0; i < 65; i++) row += attn[i];
      expect(row).toBeCloseTo(1, 5);
      expect(io.readFloat32('logits').every(Number.isFinite)).toBe(true);
    } finally {
      io.close();
    }
  });

  it('reads from bytes the same values as from the file', () => {
    const p = path.join(REF, 'vit-ti-16', 'model.safetensors');
    const a = openSafetensors(p);
    const b = openSafetensors(new Uint8Array(fs.readFileSync(p)));
    try {
      expect(b.keys()).toEqual(a.keys());
      expect(b.readFloat32('blocks.1.attn.qkv.bias')).toEqual(a.readFloat32('blocks.1.attn.qkv.bias'));
      expect(a.info('blocks.0.attn.qkv.weight').shape).toEqual([576, 192]);
    } finally {
      a.close();
      b.close();
    }
  });

  it('readTensor returns a float32 tensor and does not leak', () => {
    const f = openSafetensors(path.join(REF, 'vit-s-16-hf', 'model.safetensors'));
    const before = tf.memory().numTensors;
    const t = f.readTensor('classifier.weight');
    expect(t.shape).toEqual([10, 384]);
    expect(t.dtype).toBe('float32');
    expect(Array.from(t.dataSync().slice(0, 5))).toEqual(
      Array.from(f.readFloat32('classifier.weight').slice(0, 5)),
    );
    t.dispose();
    expect(tf.memory().numTensors).toBe(before);
    f.close();
    expectFileError(() => f.readFloat32('classifier.weight'), 'closed');
  });
});

describe('writing', () => {
  it('roundtrips exactly, sorted, aligned, with metadata', () => {
    const p = path.join(dir, 'rt.safetensors');
    const a = new Float32Array([1.5, -2.25, 3e-30, 3.4028234663852886e38, -0, 7]);
    const tensors = new Map([
      ['z.last', { shape: [2, 3], data: a }],
      ['a.first', { shape: [], data: new Float32Array([42]) }],
      ['m.empty', { shape: [0, 4], data: new Float32Array(0) }],
    ]);
    writeSafetensors(p, tensors, { format: 'pt', note: 'hi' });
    expect(fs.readdirSync(dir).filter((n) => n.includes('.tmp-'))).toEqual([]);
    const bytes = fs.readFileSync(p);
    const hlen = Number(bytes.readBigUInt64LE(0));
    expect(hlen % 8).toBe(0);
    const headerText = bytes.subarray(8, 8 + hlen).toString('utf8');
    expect(headerText.startsWith('{"__metadata__"')).toBe(true);
    expect(headerText.trimEnd().endsWith('}')).toBe(true);
    const f = openSafetensors(p);
    try {
      expect(f.keys()).toEqual(['a.first', 'm.empty', 'z.last']);
      expect(f.metadata).toEqual({ format: 'pt', note: 'hi' });
      expect(f.info('z.last')).toEqual({ dtype: 'F32', shape: [2, 3] });
      expect(f.readFloat32('z.last')).toEqual(a);
      expect(Object.is(f.readFloat32('z.last')[4], -0)).toBe(true);
      expect(Array.from(f.readFloat32('a.first'))).toEqual([42]);
      expect(f.readFloat32('m.empty').length).toBe(0);
    } finally {
      f.close();
    }
  });

  it('rejects bad tensors with EinopsError and leaves no file', () => {
    const p = path.join(dir, 'bad-write.safetensors');
    expectFileError(
      () => writeSafetensors(p, { w: { shape: [2, 2], data: new Float32Array(3) } }),
      'bad-write',
      '"w"',
      '[2, 2]',
      '3',
    );
    expectFileError(
      () => writeSafetensors(p, { w: { shape: [-1], data: new Float32Array(1) } }),
      '"w"',
      'shape',
    );
    expect(fs.existsSync(p)).toBe(false);
  });
});

describe('F16, BF16 and F64 decoding', () => {
  it('decodes known bit patterns', () => {
    // half: 1.0, -2.0, 65504 (max), 2^-24 (smallest subnormal), 2^-14 (smallest normal), +inf, 0.333251953125, -0
    const halves = [0x3c00, 0xc000, 0x7bff, 0x0001, 0x0400, 0x7c00, 0x3555, 0x8000];
    const halfExpected = [1, -2, 65504, 2 ** -24, 2 ** -14, Infinity, 0.333251953125, -0];
    // bf16: 1.0, -2.0, 3.140625, 1e-40-ish subnormal 0x0001 = 2^-133, -inf
    const bf = [0x3f80, 0xc000, 0x4049, 0x0001, 0xff80];
    const bfExpected = [1, -2, 3.140625, 2 ** -133, -Infinity];
    const f64 = new Float64Array([0.1, -1e300, 2.5]);
    const data = new Uint8Array(halves.length * 2 + bf.length * 2 + 2 + f64.byteLength);
    const dv = new DataView(data.buffer);
    halves.forEach((h, i) => dv.setUint16(i * 2, h, true));
    const bfAt = halves.length * 2;
    bf.forEach((h, i) => dv.setUint16(bfAt + i * 2, h, true));
    const f64At = bfAt + bf.length * 2 + 2; // 2 bytes of gap before the doubles: holes are allowed
    f64.forEach((v, i) => dv.setFloat64(f64At + i * 8, v, true));
    const header = {
      h: { dtype: 'F16', shape: [2, 4], data_offsets: [0, bfAt] },
      b: { dtype: 'BF16', shape: [5], data_offsets: [bfAt, bfAt + 10] },
      d: { dtype: 'F64', shape: [3], data_offsets: [f64At, f64At + 24] },
      i: { dtype: 'I8', shape: [2], data_offsets: [bfAt + 10, bfAt + 12] },
    };
    const f = openSafetensors(writeRaw('halves.safetensors', rawFile(header, data)));
    try {
      const h = Array.from(f.readFloat32('h'));
      expect(h).toEqual(halfExpected);
      expect(Object.is(h[7], -0)).toBe(true);
      expect(Array.from(f.readFloat32('b'))).toEqual(bfExpected);
      expect(Array.from(f.readFloat32('d'))).toEqual([Math.fround(0.1), -Infinity, 2.5]);
      expectFileError(() => f.readFloat32('i'), 'halves.safetensors', '"i"', 'I8');
      expectFileError(() => f.readFloat32('nope'), '"nope"');
    } finally {
      f.close();
    }
  });

  it('halfToFloat matches a slow reference on every 16-bit pattern', () => {
    for (let h = 0; h < 0x10000; h++) {
      const s = h & 0x8000 ? -1 : 1;
      const e = (h >> 10) & 0x1f;
      const m = h & 0x3ff;
      const want =
        e === 0 ? s * m * 2 ** -24 : e === 31 ? (m ? NaN : s * Infinity) : s * (1 + m / 1024) * 2 ** (e - 15);
      const got = halfToFloat(h);
      if (Number.isNaN(want)) expect(Number.isNaN(got)).toBe(true);
      else if (got !== want) expect(got).toBe(want); // only call expect on failure: 65536 iterations
    }
  });
});

describe('hostile files', () => {
  const okData = new Uint8Array(16);
  const cases: [string, Uint8Array, string[]][] = [
    ['too-short', new Uint8Array([1, 0, 0]), ['shorter than']],
    ['past-end', rawFile({}, okData, 1000n), ['1000', 'past the end']],
    ['huge-header', rawFile({}, okData, 500_000_000n), ['500000000', 'limit']],
    ['huge-u64', rawFile({}, okData, 0xffffffffffffffffn), ['limit']],
    [
      'bad-json',
      (() => {
        const b = rawFile({ a: 1 }, okData);
        b[8] = 0x5b;
        return b;
      })(),
      ['JSON'],
    ],
    ['not-object', rawFile([1, 2], okData), ['not an object']],
    ['entry-not-object', rawFile({ w: 3 }, okData), ['"w"', 'not an object']],
    [
      'unknown-dtype',
      rawFile({ w: { dtype: 'F12', shape: [4], data_offsets: [0, 16] } }, okData),
      ['"w"', 'F12'],
    ],
    [
      'bad-shape',
      rawFile({ w: { dtype: 'F32', shape: [2, -2], data_offsets: [0, 16] } }, okData),
      ['"w"', 'shape'],
    ],
    [
      'float-shape',
      rawFile({ w: { dtype: 'F32', shape: [1.5], data_offsets: [0, 16] } }, okData),
      ['"w"', 'shape'],
    ],
    [
      'shape-not-array',
      rawFile({ w: { dtype: 'F32', shape: '4', data_offsets: [0, 16] } }, okData),
      ['"w"', 'shape'],
    ],
    [
      'bad-offsets',
      rawFile({ w: { dtype: 'F32', shape: [4], data_offsets: [0] } }, okData),
      ['"w"', 'data_offsets'],
    ],
    [
      'end-before-begin',
      rawFile({ w: { dtype: 'F32', shape: [0], data_offsets: [8, 4] } }, okData),
      ['"w"', 'end 4 < begin 8'],
    ],
    [
      'outside-data',
      rawFile({ w: { dtype: 'F32', shape: [8], data_offsets: [0, 32] } }, okData),
      ['"w"', 'outside', '16 bytes'],
    ],
    [
      'wrong-bytes',
      rawFile({ w: { dtype: 'F32', shape: [3], data_offsets: [0, 16] } }, okData),
      ['"w"', '16', '3 elements'],
    ],
    [
      'overflow-shape',
      rawFile({ w: { dtype: 'F32', shape: [2 ** 52, 2 ** 52, 4], data_offsets: [0, 16] } }, okData),
      ['"w"', 'byte length'],
    ],
    [
      'overlap',
      rawFile(
        {
          a: { dtype: 'F32', shape: [2], data_offsets: [8, 16] },
          b: { dtype: 'F32', shape: [3], data_offsets: [0, 12] },
        },
        okData,
      ),
      ['overlaps', '"a"', '"b"'],
    ],
    ['metadata-not-strings', rawFile({ __metadata__: { format: 1 } }, okData), ['__metadata__', 'format']],
    ['metadata-not-object', rawFile({ __metadata__: 'pt' }, okData), ['__metadata__']],
    // Names of Object.prototype's properties are not dtypes (an `in` check once let them through).
    ...['constructor', 'toString', '__proto__', 'hasOwnProperty', 'valueOf'].map(
      (dtype): [string, Uint8Array, string[]] => [
        `dtype-${dtype}`,
        rawFile({ w: { dtype, shape: [4], data_offsets: [0, 16] } }, okData),
        ['"w"', 'unknown dtype', dtype],
      ],
    ),
    // As the official library: the tensors cover the data section exactly.
    [
      'gap',
      rawFile(
        {
          a: { dtype: 'F32', shape: [1], data_offsets: [0, 4] },
          b: { dtype: 'F32', shape: [2], data_offsets: [8, 16] },
        },
        okData,
      ),
      ['[4, 8)', '"b"'],
    ],
    ['gap-at-start', rawFile({ b: { dtype: 'F32', shape: [2], data_offsets: [8, 16] } }, okData), ['[0, 8)']],
    [
      'trailing-bytes',
      rawFile({ a: { dtype: 'F32', shape: [3], data_offsets: [0, 12] } }, okData),
      ['4 bytes after the last tensor'],
    ],
    ['no-tensors-but-data', rawFile({}, okData), ['16 bytes after']],
    [
      'too-deep',
      rawFile(JSON.parse('['.repeat(MAX_HEADER_DEPTH + 1) + ']'.repeat(MAX_HEADER_DEPTH + 1)) as unknown),
      ['nested more than 128'],
    ],
    [
      'too-many-entries',
      rawFile(Object.fromEntries(Array.from({ length: MAX_HEADER_ENTRIES + 1 }, (_, i) => [`t${i}`, 0]))),
      ['more than 100000 entries'],
    ],
  ];
  for (const [name, bytes, fragments] of cases) {
    it(`rejects ${name}`, () => {
      const p = writeRaw(`${name}.safetensors`, bytes);
      expectFileError(() => openSafetensors(p), `${name}.safetensors`, ...fragments);
      expectFileError(() => openSafetensors(bytes), '<bytes>', ...fragments);
    });
  }

  it('a directory named model.safetensors is a CheckpointError, not a raw EISDIR', () => {
    const d = path.join(dir, 'model.safetensors');
    fs.mkdirSync(d);
    expectFileError(() => openSafetensors(d), 'model.safetensors', 'directory');
  });

  it('a 99 MB header of nested brackets is rejected in a single pass, before JSON.parse', () => {
    const n = 49_500_000;
    const bytes = new Uint8Array(8 + 2 * n);
    new DataView(bytes.buffer).setBigUint64(0, BigInt(2 * n), true);
    bytes.fill(0x5b, 8, 8 + n);
    bytes.fill(0x5d, 8 + n);
    const p = writeRaw('deep.safetensors', bytes);
    const t0 = performance.now();
    expectFileError(() => openSafetensors(p), 'nested more than 128 levels');
    // JSON.parse took 40 s and 2 GB here; the scan stops in the first megabyte read.
    expect(performance.now() - t0).toBeLessThan(5000);
  });

  it('a header of a million tensors is rejected before JSON.parse, in one short message', () => {
    const json = Buffer.from(`{${'"t":{"dtype":"F32","shape":[0],"data_offsets":[0,0]},'.repeat(1e6)}"u":0}`);
    const bytes = new Uint8Array(8 + json.length);
    new DataView(bytes.buffer).setBigUint64(0, BigInt(json.length), true);
    bytes.set(json, 8);
    const t0 = performance.now();
    let caught: unknown;
    try {
      openSafetensors(bytes);
    } catch (e) {
      caught = e;
    }
    expect(caught).toBeInstanceOf(CheckpointError);
    expect((caught as Error).message).toContain('more than 100000 entries');
    expect((caught as Error).message.length).toBeLessThan(200);
    expect(performance.now() - t0).toBeLessThan(5000); // was 17 s
  });

  it('reports a missing file as CheckpointError', () => {
    expectFileError(
      () => openSafetensors(path.join(dir, 'does-not-exist.safetensors')),
      'does-not-exist',
      'cannot open',
    );
  });
});

describe('checkpoint problems are listed with a bound', () => {
  it('a file with 5,000 unexpected keys lists 20 of them and counts the rest', () => {
    const name = 'cifar-tiny';
    const cfg = parseConfig(
      JSON.parse(fs.readFileSync(path.join(REF, name, 'config.json'), 'utf8')),
      `${name}/config.json`,
    );
    const f = openSafetensors(path.join(REF, name, 'model.safetensors'));
    const raw = new Map(f.keys().map((k) => [k, { shape: f.info(k).shape, data: f.readFloat32(k) }]));
    f.close();
    for (let i = 0; i < 5000; i++) raw.set(`extra.${i}`, { shape: [1], data: new Float32Array(1) });
    let message = '';
    try {
      fromHuggingFace(raw, cfg);
    } catch (e) {
      message = (e as Error).message;
    }
    expect(message).toContain('5000 problems');
    expect(message).toContain('unexpected  extra.0: got [1] F32');
    expect(message).toContain('... and 4980 more');
    expect(message).not.toContain('extra.20:');
    expect(message.split('\n').length).toBeLessThan(30);
  });
});
