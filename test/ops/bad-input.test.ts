// Every rejected input is an EinopsError (never a TypeError or a raw tfjs error), with a message that
// says what is wrong and where; no tensor leaks, whether the call succeeds or fails.
import { afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { EinopsError, ready, tf } from '../../src/index.js';
import { einsum, pack, parseShape, rearrange, reduce, repeat, unpack } from '../../src/ops.js';

// Bad input is the point of this file, so the typed signatures are bypassed.
type Loose = (...args: unknown[]) => unknown;
const op = {
  rearrange: rearrange as Loose,
  reduce: reduce as Loose,
  repeat: repeat as Loose,
  einsum: einsum as Loose,
  pack: pack as Loose,
  unpack: unpack as Loose,
  parseShape: parseShape as Loose,
};

let x4: tf.Tensor; // [2, 3, 4, 5]
let x2: tf.Tensor; // [2, 6]
let baseline = 0;
/** Input tensors made inside the calls under test; the leak checks count them out. */
const made: tf.Tensor[] = [];
function z(shape: number[], dtype: 'float32' | 'int32' | 'bool' = 'float32'): tf.Tensor {
  const t = tf.zeros(shape, dtype);
  made.push(t);
  return t;
}

beforeAll(async () => {
  await ready('wasm');
});
beforeEach(() => {
  x4 = tf.zeros([2, 3, 4, 5]);
  x2 = tf.zeros([2, 6]);
  baseline = tf.memory().numTensors;
});
afterEach(() => {
  // Nothing the calls made (outputs are disposed by the helpers) is left behind.
  tf.dispose(made);
  made.length = 0;
  expect(tf.memory().numTensors).toBe(baseline);
  tf.dispose([x4, x2]);
});

/** Runs `f`, expects an EinopsError, checks no tensor was created, returns the error. */
function rejects(f: () => unknown): EinopsError {
  const before = tf.memory().numTensors - made.length;
  let error: unknown;
  try {
    const out = f();
    tf.dispose(out as tf.TensorContainer);
  } catch (e) {
    error = e;
  }
  expect(tf.memory().numTensors - made.length).toBe(before);
  if (!(error instanceof EinopsError)) {
    const what = error === undefined ? 'no error' : `${(error as Error)?.name}: ${(error as Error)?.message}`;
    expect.fail(`expected an EinopsError, got ${what}`);
  }
  expect(error).not.toBeInstanceOf(TypeError);
  return error;
}

/** Runs `f`, expects success, disposes what it returned, checks nothing else was left. */
function succeeds(f: () => unknown): void {
  const before = tf.memory().numTensors - made.length;
  const out = f();
  tf.dispose(out as tf.TensorContainer);
  expect(tf.memory().numTensors - made.length).toBe(before);
}

/** The [start, end) offsets under the caret line that follows the pattern line, if any. */
function caretSpan(message: string, pattern: string): [number, number] | undefined {
  const lines = message.split('\n');
  for (let i = 0; i + 1 < lines.length; i++) {
    if (lines[i] === `  ${pattern}` && /^ *\^+$/.test(lines[i + 1])) {
      const start = lines[i + 1].indexOf('^') - 2;
      return [start, start + lines[i + 1].trim().length];
    }
  }
  return undefined;
}

describe('malformed patterns: message shows the pattern with a caret under the offending place', () => {
  // pattern, [start, end) of the caret, text the message must contain (the axis or character)
  const cases: [string, [number, number], string][] = [
    ['b (h w -> b h w', [2, 3], "'('"],
    ['b h) w c -> b h w c', [3, 4], "')'"],
    ['b ((h) w) c -> b h w c', [3, 4], 'brackets inside brackets'],
    ['b h h c -> b h c', [4, 5], "'h'"],
    ['b c h w -> b c h w w', [19, 20], "'w'"],
    ['b h$ w c -> b h w c', [3, 4], "'$'"],
    ['b h\tw c -> b h w c', [3, 4], "'\\t'"],
    ['b .. h w c -> b h', [2, 3], '...'],
    ['... a ... -> a', [6, 9], '...'],
    ['b c h w -> b c -> h w', [15, 17], '->'],
    ['b _h w c -> b _h w c', [2, 4], "'_h'"],
    ['b 0 w c -> b w c', [2, 3], '0'],
    ['b h -> b (h', [9, 10], "'('"],
  ];
  for (const [pattern, span, mention] of cases) {
    for (const name of ['rearrange', 'reduce', 'repeat'] as const) {
      it(`${name} ${JSON.stringify(pattern)}`, () => {
        const e = rejects(() => (name === 'reduce' ? op.reduce(x4, pattern, 'sum') : op[name](x4, pattern)));
        expect(e.message).toContain(pattern);
        expect(e.message).toContain(mention);
        expect(caretSpan(e.message, pattern)).toEqual(span);
      });
    }
  }

  it('a pattern without an arrow says so and shows the pattern', () => {
    const e = rejects(() => op.rearrange(x4, 'b c h w'));
    expect(e.message).toContain("'->'");
    expect(e.message).toContain('b c h w');
    expect(e.rule).toBe('missing-arrow');
  });

  it('the caret column counts characters, not UTF-16 units (astral letter before the error)', () => {
    // '𝑥' (U+1D465) is a valid axis name and two UTF-16 units long; ')' is the 6th character.
    const pattern = 'b 𝑥 h) -> b 𝑥 h';
    const e = rejects(() => op.rearrange(z([2, 3, 4]), pattern));
    expect(caretSpan(e.message, pattern)).toEqual([5, 6]);
  });

  it('einsum: caret under the bad character of the right operand', () => {
    const a = z([2, 3]);
    const b = z([3, 4]);
    const e = rejects(() => op.einsum('i j, j$ k -> i k', a, b));
    expect(e.message).toContain("'$'");
    expect(caretSpan(e.message, 'i j, j$ k -> i k')).toEqual([6, 7]);
    const e2 = rejects(() => op.einsum('i (j, j k -> i k', a, b));
    expect(caretSpan(e2.message, 'i (j, j k -> i k')).toEqual([2, 3]);
    tf.dispose([a, b]);
  });

  it('einsum: semantic errors name the axis and the pattern', () => {
    const a = z([2, 3]);
    const b = z([3, 4]);
    const e = rejects(() => op.einsum('i j, j k -> i q', a, b));
    expect(e.message).toContain("'q'");
    expect(e.message).toContain('i j, j k -> i q');
    const c = rejects(() => op.einsum('i (j k) -> i', z([2, 6])));
    expect(c.message).toContain('i (j k) -> i');
    tf.dispose([a, b]);
  });

  it('parseShape: caret under the unclosed parenthesis', () => {
    const e = rejects(() => op.parseShape(x4, 'b (h'));
    expect(caretSpan(e.message, 'b (h')).toEqual([2, 3]);
  });

  it('pack/unpack: caret under a duplicate or invalid name', () => {
    for (const name of ['pack', 'unpack'] as const) {
      const call = (p: string) => (name === 'pack' ? op.pack([x4], p) : op.unpack(x4, [[3]], p));
      const dup = rejects(() => call('b * * c'));
      expect(dup.message).toContain("'*'");
      expect(caretSpan(dup.message, 'b * * c')).toEqual([4, 5]);
      const bad = rejects(() => call('b _x *'));
      expect(bad.message).toContain("'_x'");
      expect(caretSpan(bad.message, 'b _x *')).toEqual([2, 4]);
      const none = rejects(() => call('b c'));
      expect(none.message).toContain("'*'");
    }
  });
});

describe('wrong ranks', () => {
  it('rearrange/reduce/repeat name both ranks', () => {
    for (const e of [
      rejects(() => op.rearrange(x2, 'a b c -> a b c')),
      rejects(() => op.reduce(x2, 'a b c -> a', 'sum')),
      rejects(() => op.repeat(x2, 'a b c -> a b c d', { d: 2 })),
    ]) {
      expect(e.message).toContain('a b c');
      expect(e.message).toMatch(/3/);
      expect(e.message).toMatch(/2-dim|\[2, 6\]/);
    }
  });

  it('an ellipsis needs at least the other axes', () => {
    const e = rejects(() => op.rearrange(z([2]), 'a b ... -> a b ...'));
    expect(e.message).toContain('at least 2');
  });

  it('einsum, parseShape, pack, unpack', () => {
    expect(rejects(() => op.einsum('i j, j k -> i k', z([2, 3, 1]), z([3, 4]))).message).toContain(
      '[2, 3, 1]',
    );
    expect(rejects(() => op.einsum('i j, j k -> i k', z([2, 3]))).message).toMatch(/1 tensor/);
    expect(rejects(() => op.parseShape(x4, 'b h')).message).toContain('b h');
    expect(rejects(() => op.pack([z([2])], 'a * b')).message).toContain('a * b');
    expect(rejects(() => op.unpack(x4, [[3]], 'a * b')).message).toContain('a * b');
  });
});

describe('inconsistent lengths', () => {
  it('a given length that does not match the input', () => {
    const e = rejects(() => op.rearrange(x4, 'b c h w -> b c (h w)', { h: 3 }));
    expect(e.message).toMatch(/4 != 3/);
  });
  it('an axis that cannot be divided', () => {
    const e = rejects(() => op.rearrange(x2, 'a (b c) -> a b c', { b: 4 }));
    expect(e.message).toMatch(/6/);
    expect(e.message).toMatch(/4/);
  });
  it('all lengths of a group given, product wrong', () => {
    rejects(() => op.rearrange(x2, 'a (b c) -> a b c', { b: 2, c: 2 }));
  });
  it('two unknown axes in one group', () => {
    const e = rejects(() => op.rearrange(x2, 'a (b c) -> a b c'));
    expect(e.message).toContain("'b'");
  });
  it('anonymous axis that does not divide', () => {
    rejects(() => op.reduce(z([2, 5]), 'a (b 2) -> a b', 'max'));
  });
  it('einsum: one label, two lengths', () => {
    const e = rejects(() => op.einsum('i j, j k -> i k', z([2, 3]), z([4, 4])));
    expect(e.message).toContain("'j'");
  });
  it('pack: non-packed axes differ', () => {
    const e = rejects(() => op.pack([z([2, 3, 4]), z([2, 3, 5])], 'b * c'));
    expect(e.message).toContain("'c'");
  });
  it('unpack: shapes do not add up; more than one -1', () => {
    rejects(() => op.unpack(z([2, 5, 3]), [[2], [2]], 'a * b'));
    rejects(() => op.unpack(z([2, 5, 3]), [[-1], [-1]], 'a * b'));
  });
  it('unpack: two -1 inside one shape is an EinopsError, and the earlier pieces do not leak', () => {
    rejects(() => op.unpack(z([2, 2, 1], 'int32'), [[], [-1, -1]], 'h * w'));
    rejects(() => op.unpack(z([2, 4, 1]), [[-1, -1]], 'h * w'));
  });
  it('parseShape: an anonymous axis or a 1 that does not match', () => {
    rejects(() => op.parseShape(x4, 'b 2 h w'));
    rejects(() => op.parseShape(x4, 'b 1 h w'));
  });
  it('list input: tensors of different shapes, or an empty list', () => {
    const e = rejects(() => op.rearrange([z([2]), z([3])], 'n a -> a n'));
    expect(e.message).toMatch(/\[2\].*\[3\]|\[3\].*\[2\]/s);
    rejects(() => op.rearrange([], 'n a -> a n'));
  });
});

describe('axis lengths that are not non-negative integers', () => {
  const values: unknown[] = [1.5, -1, -0.5, NaN, Infinity, '2', null, true, 2 ** 53, [2], {}];
  for (const v of values) {
    it(`{ h: ${String(v)} } for rearrange, reduce and repeat`, () => {
      for (const f of [
        () => op.rearrange(x4, 'b c (h w) x -> b c h w x', { h: v }),
        () => op.reduce(x4, 'b c h w -> b c', 'sum', { h: v }),
        () => op.repeat(x2, 'a b -> a b h', { h: v }),
      ]) {
        const e = rejects(f);
        expect(e.message).toContain("'h'");
      }
    });
  }

  it('lengths that are not an object', () => {
    for (const v of [3, 'h=2', [1, 2], true, () => 1]) {
      rejects(() => op.rearrange(x4, 'b c h w -> b c h w', v));
    }
  });

  it('invalid or unused axis names in the lengths', () => {
    expect(rejects(() => op.rearrange(x4, 'b c h w -> b c h w', { '1a': 2 })).message).toContain("'1a'");
    expect(rejects(() => op.rearrange(x4, 'b c h w -> b c h w', { q: 2 })).message).toContain("'q'");
    const proto = JSON.parse('{"__proto__": 2}') as Record<string, number>;
    rejects(() => op.rearrange(x4, 'b c h w -> b c h w', proto));
    rejects(() => op.rearrange(x4, 'b c h w -> b c h w', { constructor: 2 }));
  });

  it('a new repeat axis without a length', () => {
    expect(rejects(() => op.repeat(x2, 'a b -> a b c')).message).toContain("'c'");
  });
});

describe('unknown reductions', () => {
  for (const r of [
    'avg',
    'SUM',
    '',
    'toString',
    '__proto__',
    'constructor',
    3,
    null,
    undefined,
    {},
    [],
    true,
  ]) {
    it(`reduction ${JSON.stringify(r) ?? String(r)}`, () => {
      const e = rejects(() => op.reduce(x4, 'b c h w -> b c', r));
      expect(e.message).toMatch(/sum, mean, max, min, prod, any, all/);
    });
  }

  it("mean of an int tensor is rejected ('mean' needs floats)", () => {
    rejects(() => op.reduce(z([2, 3], 'int32'), 'a b -> a', 'mean'));
  });
});

const NOT_TENSORS: [string, unknown][] = [
  ['a number', 3],
  ['NaN', NaN],
  ['a plain array of numbers', [1, 2, 3]],
  ['a nested array', [[1, 2]]],
  ['null', null],
  ['undefined', undefined],
  ['an object', { shape: [2, 3], dtype: 'float32' }],
  ['a string', 'x'],
  ['a TypedArray', new Float32Array(4)],
];

describe('non-tensor inputs', () => {
  for (const [label, v] of NOT_TENSORS) {
    it(label, () => {
      rejects(() => op.rearrange(v, 'a b -> b a'));
      rejects(() => op.reduce(v, 'a b -> a', 'sum'));
      rejects(() => op.repeat(v, 'a b -> a b c', { c: 2 }));
      rejects(() => op.einsum('i j -> j i', v));
      rejects(() => op.einsum('i j, j k -> i k', x2, v));
      rejects(() => op.pack([x2, v], 'a *'));
      rejects(() => op.pack(v, 'a *'));
      rejects(() => op.unpack(v, [[6]], 'a *'));
      rejects(() => op.parseShape(v, 'a b'));
    });
  }
});

const NOT_STRINGS: [string, unknown][] = [
  ['a number', 5],
  ['null', null],
  ['undefined', undefined],
  ['an array', ['a b -> b a']],
  ['an object with toString', { toString: () => 'a b -> b a' }],
  ['a String object', new String('a b -> b a')],
  ['a symbol', Symbol('a b -> b a')],
];

describe('pattern of the wrong type', () => {
  for (const [label, p] of NOT_STRINGS) {
    it(label, () => {
      rejects(() => op.rearrange(x2, p));
      rejects(() => op.reduce(x2, p, 'sum'));
      rejects(() => op.repeat(x2, p));
      rejects(() => op.einsum(p, x2));
      rejects(() => op.einsum(x2, p));
      rejects(() => op.pack([x2], p));
      rejects(() => op.unpack(x2, [[6]], p));
      rejects(() => op.parseShape(x2, p));
    });
  }

  it('einsum with no arguments, or tensors only', () => {
    rejects(() => op.einsum());
    rejects(() => op.einsum(x2, x2));
    rejects(() => op.einsum('i j -> i'));
  });

  it('unpack: packed shapes that are not lists of integers', () => {
    for (const s of ['ab', null, 3, [3], [[1.5]], [['2']], [[-2]], [[NaN]], [[Infinity]]]) {
      rejects(() => op.unpack(x2, s, 'a *'));
    }
  });
});

describe('successful calls leave no tensors behind', () => {
  it('every operation', () => {
    succeeds(() => op.rearrange(x4, 'b c h w -> b (h w) c'));
    succeeds(() => op.rearrange(x4, 'b c h w -> b c h w'));
    succeeds(() => op.rearrange([x2, x2], 'n a b -> a (n b)'));
    succeeds(() => op.reduce(x4, 'b c (h 2) w -> b h', 'max'));
    succeeds(() => op.reduce(x4, 'b c h w -> b c h w', 'sum'));
    succeeds(() => op.reduce(x4, 'b c h w -> b c', (t: tf.Tensor, axes: number[]) => tf.sum(t, axes)));
    succeeds(() => op.reduce(z([2, 0]), 'a b -> a', 'prod'));
    succeeds(() => op.repeat(x2, 'a b -> a b c', { c: 3 }));
    succeeds(() => op.repeat(x2, 'a b -> (a 2) b'));
    succeeds(() => op.einsum('i j, j k -> i k', x2, z([6, 3])));
    succeeds(() => op.einsum('i j -> j', x2));
    succeeds(() => op.pack([x2, z([2, 3, 1])], 'a *'));
    succeeds(() => op.unpack(x2, [[2], [-1]], 'a *'));
    succeeds(() => op.parseShape(x4, 'b _ h w'));
  });
});
