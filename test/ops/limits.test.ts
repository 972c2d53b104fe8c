// Bounded inputs: huge literals and lengths, outputs and intermediates too big for the backend, disposed
// tensors and dtypes the ops cannot move are EinopsErrors raised before anything is allocated, and the
// backend keeps working afterwards.
import { afterEach, beforeAll, beforeEach, describe, expect, it, vi } from 'vitest';
import { EinMix, EinopsError, Rearrange, Reduce, ready, tf } from '../../src/index.js';
import { einsum, pack, parseShape, rearrange, reduce, repeat, unpack } from '../../src/ops.js';
import { MAX_ELEMENTS, MAX_TENSOR_BYTES, WASM_HEAP_BYTES, wasmHeap } from '../../src/compiler/limits.js';

type Loose = (...args: unknown[]) => unknown;

beforeAll(async () => {
  await ready('wasm');
});
let baseline = 0;
beforeEach(() => {
  baseline = tf.memory().numTensors;
});
afterEach(() => {
  expect(tf.memory().numTensors).toBe(baseline);
});

/** Runs `f` on fresh inputs, expects an EinopsError and no tensor made; returns the error. */
function rejects(f: () => unknown, rule?: string): EinopsError {
  const before = tf.memory().numTensors;
  const bytes = tf.memory().numBytes;
  let error: unknown;
  try {
    tf.dispose(f() as tf.TensorContainer);
  } catch (e) {
    error = e;
  }
  expect(tf.memory().numTensors).toBe(before);
  expect(tf.memory().numBytes).toBe(bytes);
  if (!(error instanceof EinopsError)) {
    expect.fail(`expected an EinopsError, got ${error === undefined ? 'no error' : String(error)}`);
  }
  if (rule) expect(error.rule).toBe(rule);
  return error;
}

/** The wasm backend still computes right: a transpose and a sum of known values. */
function backendStillWorks(): void {
  const x = tf.tensor2d([
    [1, 2, 3],
    [4, 5, 6],
  ]);
  const y = rearrange(x, 'a b -> b a');
  const s = reduce(x, 'a b -> b', 'sum');
  expect(Array.from(y.dataSync())).toEqual([1, 4, 2, 5, 3, 6]);
  expect(Array.from(s.dataSync())).toEqual([5, 7, 9]);
  tf.dispose([x, y, s]);
}

describe('huge literals and lengths (they returned garbage or broke the wasm backend)', () => {
  it("'-> 9007199254740993' is rejected at the literal, with a caret under it", () => {
    const x = tf.zeros([], 'bool');
    const e = rejects(() => repeat(x, '-> 9007199254740993'), 'anonymous-axis-too-large');
    expect(e.message).toContain('9007199254740993');
    expect(e.message).toMatch(/\n {2}-> 9007199254740993\n {5}\^{16}/);
    x.dispose();
  });

  it("'-> 4294967296' names the literal and the bound", () => {
    const x = tf.zeros([], 'bool');
    const e = rejects(() => repeat(x, '-> 4294967296'), 'tensor-too-large');
    expect(e.message).toContain("Axis '4294967296' has length 4294967296");
    expect(e.message).toContain(String(MAX_ELEMENTS));
    x.dispose();
    backendStillWorks();
  });

  it('{ b: 2 ** 53 - 1 } is rejected, and every later op still works', () => {
    const x = tf.zeros([2]);
    const e = rejects(() => repeat(x, 'a -> a b', { b: 2 ** 53 - 1 }), 'tensor-too-large');
    expect(e.message).toContain("Axis 'b' has length 9007199254740991");
    x.dispose();
    backendStillWorks();
  });

  it('a composed output axis or an output above the bound names it and its size', () => {
    const x = tf.zeros([1]);
    const e = rejects(() => repeat(x, 'a -> (a b c)', { b: 65536, c: 65536 }), 'tensor-too-large');
    expect(e.message).toContain("axis '(a b c)' of length 4294967296");
    const f = rejects(() => repeat(x, 'a -> a b c', { b: 65536, c: 65536 }), 'tensor-too-large');
    expect(f.message).toContain('[1, 65536, 65536] would have 4294967296 elements');
    x.dispose();
    backendStillWorks();
  });

  it('the bytes of the dtype count: 600M bools fit, 600M floats do not', () => {
    const x = tf.zeros([1]);
    const e = rejects(() => repeat(x, 'a -> (a b)', { b: 600_000_000 }), 'tensor-too-large');
    expect(e.message).toContain('600000000 float32 elements (2400000000 bytes)');
    expect(e.message).toContain(String(MAX_TENSOR_BYTES));
    x.dispose();
  });

  it('given lengths that are not safe integers are rejected as before', () => {
    const x = tf.zeros([2]);
    for (const b of [2 ** 53, 2 ** 60, 1e300]) {
      rejects(() => repeat(x, 'a -> a b', { b }), 'invalid-axis-length');
    }
    x.dispose();
  });

  it('a length above the bound on a zero-size tensor is still refused (no dimension may exceed it)', () => {
    const x = tf.zeros([0]);
    rejects(() => repeat(x, 'a -> a b', { b: 2 ** 32 }), 'tensor-too-large');
    const y = repeat(x, 'a -> a b', { b: 2 ** 20 });
    expect(y.shape).toEqual([0, 2 ** 20]);
    tf.dispose([x, y]);
  });

  it('einsum: an output or an int32 product above the bound', () => {
    const a = tf.zeros([70000]);
    const e = rejects(() => einsum('i, j -> i j', a, a), 'tensor-too-large');
    expect(e.message).toContain('[70000, 70000] would have 4900000000 elements');
    const m = tf.zeros([2000, 2000], 'int32');
    // int32 products run as a broadcast multiply and sum: g * m * k * n elements.
    rejects(() => einsum('i j, j k -> i k', m, m), 'tensor-too-large');
    tf.dispose([a, m]);
    backendStillWorks();
  });

  it('the wasm heap: live tensors plus what the op makes must fit in it', () => {
    // Pretend 4 GB are alive (allocating them for real takes minutes on a loaded machine).
    const engine = tf.engine();
    const real = engine.memory.bind(engine);
    const spy = vi.spyOn(engine, 'memory').mockImplementation(() => ({ ...real(), numBytes: 4e9 }));
    // ... and a heap grown to hold them (the check trusts a full count only when the heap is full too).
    const heap = vi.spyOn(wasmHeap, 'size').mockReturnValue(4e9);
    const x = tf.zeros([1]);
    const long = tf.zeros([10_000_000]);
    try {
      const e = rejects(() => repeat(x, 'a -> (a b)', { b: 10_000_000 }), 'out-of-memory');
      expect(e.message).toContain(String(WASM_HEAP_BYTES));
      expect(e.message).toContain('40000000 bytes');
      rejects(() => einsum('i, j -> i j', x, long), 'out-of-memory');
    } finally {
      heap.mockRestore();
      spy.mockRestore();
      tf.dispose([x, long]);
    }
    backendStillWorks();
  });

  it('views of one buffer do not count as more memory (a gradient tape holds thousands of reshapes)', () => {
    const big = tf.zeros([10_000_000]); // 40 MB, one buffer
    const views = Array.from({ length: 110 }, () => big.reshape([1000, 10_000]));
    try {
      expect(tf.memory().numBytes).toBeGreaterThan(WASM_HEAP_BYTES); // tfjs' count: 4.4 GB
      const one = tf.ones([2]);
      const y = repeat(one, 'a -> a b', { b: 3 });
      expect(Array.from(y.dataSync())).toEqual([1, 1, 1, 1, 1, 1]);
      tf.dispose([one, y]);
    } finally {
      tf.dispose([big, ...views]);
    }
    backendStillWorks();
  });
});

describe('disposed tensors get our error, not "Cannot read properties of undefined"', () => {
  const dead = (shape = [2, 3], dtype: 'float32' | 'int32' = 'float32') => {
    const t = tf.zeros(shape, dtype);
    t.dispose();
    return t;
  };
  const live = () => tf.zeros([2, 3]);
  const cases: [string, () => unknown][] = [
    ['rearrange', () => rearrange(dead(), 'a b -> b a')],
    ['rearrange of a list', () => tf.tidy(() => rearrange([live(), dead()], 'n a b -> a n b'))],
    ['reduce', () => reduce(dead(), 'a b -> a', 'sum')],
    ['repeat', () => repeat(dead(), 'a b -> a b c', { c: 2 })],
    ['einsum', () => einsum('a b -> b a', dead())],
    ['einsum, second operand', () => tf.tidy(() => einsum('a b, c b -> a c', live(), dead()))],
    ['pack', () => tf.tidy(() => pack([live(), dead()], 'a *'))],
    ['unpack', () => unpack(dead(), [[3]], 'a *')],
    ['parseShape', () => parseShape(dead(), 'a b')],
    ['Rearrange layer', () => new Rearrange({ pattern: 'a b -> b a' }).apply(dead())],
    ['Reduce layer', () => new Reduce({ pattern: 'a b -> a', reduction: 'max' }).apply(dead())],
    [
      'EinMix layer',
      () =>
        tf.tidy(() => {
          const layer = new EinMix({
            pattern: 'b i -> b o',
            weightShape: 'i o',
            axesLengths: { i: 3, o: 2 },
          });
          layer.apply(live()); // builds the weights
          try {
            return layer.apply(dead()) as tf.Tensor;
          } finally {
            layer.dispose();
          }
        }),
    ],
  ];
  for (const [name, f] of cases) {
    it(name, () => {
      const e = rejects(f, 'disposed-tensor');
      expect(e.message).toContain('disposed');
      expect(e.message).toContain('[2, 3]');
    });
  }
});

describe('dtypes the ops cannot move', () => {
  it('string tensors: rearrange, reduce and repeat refuse them (repeat aborted the wasm backend)', () => {
    const s = tf.tensor(['a', 'b']);
    for (const f of [
      () => rearrange(s, 'a -> a'),
      () => repeat(s, 'a -> a 2'),
      () => reduce(s, 'a -> ', 'max'),
      () => rearrange([s, s], 'n a -> a n'),
    ]) {
      expect(rejects(f, 'unsupported-dtype').message).toContain("dtype 'string'");
    }
    expect(rejects(() => einsum('a -> a', s)).message).toContain('dtype string');
    expect(rejects(() => pack([s], 'a *')).message).toContain("'string'");
    // What needs no data works as in einops.
    expect(parseShape(s, 'n')).toEqual({ n: 2 });
    const [a, b] = unpack(s, [[1], [1]], '*');
    expect(a.dataSync()).toEqual(['a']);
    expect(b.dataSync()).toEqual(['b']);
    tf.dispose([s, a, b]);
    backendStillWorks();
  });

  it('mean of int32 and bool tensors is refused; other reductions of them work as einops', () => {
    const i = tf.tensor1d([1, 2, 3], 'int32');
    const b = tf.tensor1d([true, false, true], 'bool');
    rejects(() => reduce(i, 'a -> ', 'mean'), 'mean-of-non-float');
    rejects(() => reduce(b, 'a -> ', 'mean'), 'mean-of-non-float');
    const s = reduce(i, 'a -> ', 'sum');
    const any = reduce(b, 'a -> ', 'all');
    expect(s.dtype).toBe('int32');
    expect(s.dataSync()[0]).toBe(6);
    expect(any.dtype).toBe('bool');
    expect(any.dataSync()[0]).toBe(0);
    tf.dispose([i, b, s, any]);
  });

  it('complex64 (cpu backend: wasm has no complex kernels) is refused by every op that moves data', async () => {
    await tf.setBackend('cpu');
    try {
      const c = tf.complex([1, 2], [3, 4]);
      const before = tf.memory().numTensors;
      for (const f of [
        () => rearrange(c, 'a -> a'),
        () => reduce(c, 'a -> ', 'sum'),
        () => repeat(c, 'a -> a b', { b: 2 }),
        () => einsum('a -> a', c),
        () => pack([c], '*'),
      ]) {
        expect(() => f()).toThrow(EinopsError);
      }
      expect(tf.memory().numTensors).toBe(before);
      expect(parseShape(c, 'n')).toEqual({ n: 2 });
      c.dispose();
    } finally {
      await tf.setBackend('wasm');
    }
  });
});

describe('the fuzzer can call with junk (typed signatures bypassed)', () => {
  it('a length of 2 ** 31 on a real input is refused, one of 2 ** 31 - 1 on a zero-size input is not', () => {
    const x = tf.zeros([1]);
    rejects(() => (repeat as Loose)(x, 'a -> a b', { b: 2 ** 31 }), 'tensor-too-large');
    const z = tf.zeros([0]);
    const y = repeat(z, 'a -> a b', { b: 2 ** 31 - 1 });
    expect(y.shape).toEqual([0, 2 ** 31 - 1]);
    tf.dispose([x, z, y]);
  });
});
