import { readFileSync } from 'node:fs';
import { beforeAll, describe, expect, it } from 'vitest';
import { tf } from '../../src/tf.js';
import { ready } from '../../src/backends/index.js';
import { EinopsError } from '../../src/errors.js';
import { planEinsum, runEinsum, type BatchStrategy } from '../../src/compiler/einsum.js';

/** Splits a simple einsum pattern ('a b, b c -> a c') into label lists (test-only helper, no validation). */
function split(pattern: string): { operands: string[][]; output: string[] } {
  const [lhs, rhs] = pattern.split('->');
  const words = (s: string) =>
    s
      .trim()
      .split(/\s+/)
      .filter((w) => w.length > 0);
  return { operands: lhs.split(',').map(words), output: words(rhs) };
}

/** Naive einsum with numpy semantics: loops over every assignment of every label (incl. broadcasting). */
function naiveEinsum(
  operands: string[][],
  output: string[],
  data: { shape: number[]; values: number[] }[],
): { shape: number[]; values: number[] } {
  // Expand '...' right-aligned, as numpy does.
  const named = operands.map((ls) => ls.filter((l) => l !== '...').length);
  const ell = operands.map((ls, i) => (ls.includes('...') ? data[i].shape.length - named[i] : 0));
  const E = Math.max(0, ...ell);
  const labels = operands.map((ls, i) =>
    ls.flatMap((l) => (l === '...' ? Array.from({ length: ell[i] }, (_, j) => `.${E - ell[i] + j}`) : [l])),
  );
  const out = output.flatMap((l) => (l === '...' ? Array.from({ length: E }, (_, j) => `.${j}`) : [l]));
  const len = new Map<string, number>();
  labels.forEach((ls, i) =>
    ls.forEach((l, a) => {
      const d = data[i].shape[a];
      if (!len.has(l) || len.get(l) === 1) len.set(l, d);
    }),
  );
  const all = [...len.keys()];
  const outShape = out.map((l) => len.get(l)!);
  const values = new Array(outShape.reduce((a, b) => a * b, 1)).fill(0);
  const idx = new Map<string, number>();
  const rec = (p: number) => {
    if (p === all.length) {
      let v = 1;
      labels.forEach((ls, i) => {
        let flat = 0;
        ls.forEach((l, a) => {
          const d = data[i].shape[a];
          flat = flat * d + (d === 1 ? 0 : idx.get(l)!);
        });
        v *= data[i].values[flat];
      });
      let o = 0;
      out.forEach((l, a) => (o = o * outShape[a] + idx.get(l)!));
      values[o] += v;
      return;
    }
    for (let x = 0; x < len.get(all[p])!; x++) {
      idx.set(all[p], x);
      rec(p + 1);
    }
  };
  rec(0);
  return { shape: outShape, values };
}

function randInts(n: number, rand: () => number): number[] {
  return Array.from({ length: n }, () => Math.floor(rand() * 7) - 3);
}

function mulberry(seed: number): () => number {
  let a = seed;
  return () => {
    a = (a + 0x6d2b79f5) | 0;
    let t = Math.imul(a ^ (a >>> 15), 1 | a);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

function check(
  pattern: string,
  shapes: number[][],
  opts: { dtypes?: ('float32' | 'int32')[]; strategy?: BatchStrategy; seed?: number } = {},
) {
  const rand = mulberry(opts.seed ?? 1);
  const { operands, output } = split(pattern);
  const data = shapes.map((shape) => ({
    shape,
    values: randInts(
      shape.reduce((a, b) => a * b, 1),
      rand,
    ),
  }));
  const want = naiveEinsum(operands, output, data);
  const before = tf.memory().numTensors;
  const tensors = data.map((d, i) => tf.tensor(d.values, d.shape, opts.dtypes?.[i] ?? 'float32'));
  const plan = planEinsum(operands, output, shapes, { strategy: opts.strategy });
  const got = runEinsum(plan, tensors);
  expect(got.shape, pattern).toEqual(want.shape);
  const allInt = (opts.dtypes ?? []).length === shapes.length && opts.dtypes!.every((d) => d === 'int32');
  expect(got.dtype, pattern).toBe(allInt ? 'int32' : 'float32');
  const vals = Array.from(got.dataSync());
  vals.forEach((v, i) => expect(Math.abs(v - want.values[i]), `${pattern} @${i}`).toBeLessThanOrEqual(1e-3));
  tf.dispose([got, ...tensors]);
  expect(tf.memory().numTensors).toBe(before);
}

const CASES: [string, number[][]][] = [
  [
    'i j, j k -> i k',
    [
      [3, 4],
      [4, 5],
    ],
  ],
  [
    'i j, k j -> i k',
    [
      [3, 4],
      [5, 4],
    ],
  ],
  [
    'j i, j k -> i k',
    [
      [4, 3],
      [4, 5],
    ],
  ],
  [
    'j i, k j -> k i',
    [
      [4, 3],
      [5, 4],
    ],
  ],
  [
    'b n i, o i -> b n o',
    [
      [2, 3, 4],
      [5, 4],
    ],
  ],
  [
    'b n i, i o -> b n o',
    [
      [2, 3, 4],
      [4, 5],
    ],
  ],
  [
    'b n i, i o -> o n b',
    [
      [2, 3, 4],
      [4, 5],
    ],
  ],
  [
    'b h q d, b h k d -> b h q k',
    [
      [2, 3, 4, 5],
      [2, 3, 6, 5],
    ],
  ],
  [
    'b h q k, b h k d -> b h q d',
    [
      [2, 3, 4, 6],
      [2, 3, 6, 5],
    ],
  ],
  [
    'b h q d, b h k d -> b q h k',
    [
      [2, 3, 4, 5],
      [2, 3, 6, 5],
    ],
  ],
  [
    'h b q d, b k h d -> b h k q',
    [
      [3, 2, 4, 5],
      [2, 6, 3, 5],
    ],
  ],
  ['i i ->', [[4, 4]]],
  ['i i -> i', [[4, 4]]],
  ['i m i -> m', [[3, 2, 3]]],
  ['i i i -> i', [[3, 3, 3]]],
  ['i j i, j -> i', [[3, 2, 3], [2]]],
  ['i, j -> i j', [[2], [3]]],
  ['i, j, k -> k i j', [[2], [3], [4]]],
  ['i j -> j i', [[2, 3]]],
  ['i j ->', [[2, 3]]],
  ['i j -> i j', [[2, 3]]],
  ['->', [[]]],
  [', ->', [[], []]],
  ['i, -> i', [[3], []]],
  [
    'b c h w, b w, b c -> b h',
    [
      [2, 3, 2, 2],
      [2, 2],
      [2, 3],
    ],
  ],
  [
    'a b, b c, c d -> a d',
    [
      [2, 3],
      [3, 4],
      [4, 5],
    ],
  ],
  [
    'a b, b c, c a ->',
    [
      [2, 3],
      [3, 4],
      [4, 2],
    ],
  ],
  [
    '... i, ... i -> ...',
    [
      [2, 3, 4],
      [2, 3, 4],
    ],
  ],
  [
    '... i, ... i -> ...',
    [
      [2, 1, 4],
      [3, 4],
    ],
  ],
  [
    '... i j, ... j k -> ... i k',
    [
      [2, 3, 4],
      [5, 1, 4, 2],
    ],
  ],
  ['i ..., i ... -> ...', [[2], [2, 3]]],
  ['..., ... -> ...', [[], [2, 3]]],
  ['i ... i -> ...', [[3, 2, 3]]],
  ['... i i -> ... i', [[2, 3, 3]]],
  ['i -> ... i', [[3]]],
  ['i, ... -> ... i', [[3], [2]]],
  [
    'i j, j k -> i k',
    [
      [2, 1],
      [3, 4],
    ],
  ],
  [
    'i j, j k -> i k',
    [
      [2, 3],
      [1, 4],
    ],
  ],
  ['i, i ->', [[1], [3]]],
  [
    'a b, a b -> a',
    [
      [2, 1],
      [2, 3],
    ],
  ],
  [
    'i j, i j -> i j',
    [
      [1, 3],
      [2, 1],
    ],
  ],
  ['i i, i -> i', [[3, 3], [1]]],
  ['i i, i -> i', [[1, 1], [3]]],
  [
    'b i, b i -> b',
    [
      [3, 4],
      [3, 4],
    ],
  ],
  [
    'b i, b j -> b i j',
    [
      [3, 4],
      [3, 2],
    ],
  ],
  [
    'b i, b i j -> b j',
    [
      [3, 4],
      [3, 4, 2],
    ],
  ],
  [
    'x1 f r, b x1 -> ',
    [
      [4, 2, 1],
      [3, 4],
    ],
  ],
  [
    'z dm dm t, t z c dm, t dm -> t c z dm',
    [
      [3, 3, 3, 2],
      [2, 3, 3, 3],
      [2, 3],
    ],
  ],
  [
    'i j, j k -> i k',
    [
      [2, 0],
      [0, 3],
    ],
  ],
  ['i, j -> i j', [[0], [3]]],
  ['i j -> i', [[2, 0]]],
  ['i i -> i', [[0, 0]]],
  ['i, i -> i', [[0], [1]]],
];

describe('runEinsum against a naive einsum', () => {
  beforeAll(async () => {
    await ready('wasm');
  });

  it.each(CASES)('%s %j', (pattern, shapes) => check(pattern, shapes));

  it.each(['batched', 'dwconv', 'mulsum', 'split'] as BatchStrategy[])(
    'every batched strategy: %s',
    (strategy) => {
      for (const [pattern, shapes] of CASES) check(pattern, shapes, { strategy });
    },
  );

  it('auto strategy picks split for big blocks and stays exact', () => {
    check('b h q d, b h k d -> b h q k', [
      [1, 2, 70, 64],
      [1, 2, 70, 64],
    ]);
    check('b h q k, b h k d -> b h q d', [
      [1, 2, 70, 70],
      [1, 2, 70, 64],
    ]);
  });

  it('same results on the cpu backend', async () => {
    await ready('cpu');
    try {
      for (const [pattern, shapes] of CASES) check(pattern, shapes);
    } finally {
      await ready('wasm');
    }
  });

  it('int32 x int32 gives int32, int32 x float32 gives float32', () => {
    check(
      'i j, j k -> i k',
      [
        [3, 4],
        [4, 5],
      ],
      { dtypes: ['int32', 'int32'] },
    );
    check(
      'b h q d, b h k d -> b h q k',
      [
        [2, 3, 4, 5],
        [2, 3, 6, 5],
      ],
      { dtypes: ['int32', 'int32'] },
    );
    check('i i -> i', [[3, 3]], { dtypes: ['int32'] });
    check(
      'i j, j k -> i k',
      [
        [3, 4],
        [4, 5],
      ],
      { dtypes: ['int32', 'float32'] },
    );
    check(
      'i j, j k -> i k',
      [
        [2, 0],
        [0, 3],
      ],
      { dtypes: ['int32', 'int32'] },
    );
  });

  it('bool inputs give bool', () => {
    const a = tf.tensor([true, false, true, true], [2, 2], 'bool');
    const plan = planEinsum(
      [
        ['i', 'j'],
        ['j', 'k'],
      ],
      ['i', 'k'],
      [
        [2, 2],
        [2, 2],
      ],
    );
    const y = runEinsum(plan, [a, a]);
    expect(y.dtype).toBe('bool');
    expect(Array.from(y.dataSync())).toEqual([1, 0, 1, 1]);
    tf.dispose([a, y]);
  });

  it('random equations with 1-3 operands', () => {
    const rand = mulberry(42);
    const pool = ['a', 'b', 'c', 'd', 'e'];
    for (let trial = 0; trial < 120; trial++) {
      const lens = new Map(pool.map((l) => [l, 1 + Math.floor(rand() * 3)]));
      const nOps = 1 + Math.floor(rand() * 3);
      const ops: string[][] = [];
      for (let i = 0; i < nOps; i++) {
        const rank = Math.floor(rand() * 4);
        ops.push(Array.from({ length: rank }, () => pool[Math.floor(rand() * pool.length)]));
      }
      const used = [...new Set(ops.flat())];
      const out = used.filter(() => rand() < 0.5).sort(() => rand() - 0.5);
      const useEll = rand() < 0.3;
      const ellShape = [2, 3].slice(0, Math.floor(rand() * 3));
      const operands = ops.map((ls) => (useEll ? ['...', ...ls] : ls));
      const output = useEll ? [...out, '...'] : out;
      const shapes = ops.map((ls) => [
        ...(useEll ? ellShape.slice(Math.floor(rand() * (ellShape.length + 1))) : []),
        ...ls.map((l) => lens.get(l)!),
      ]);
      const pattern = `${operands.map((o) => o.join(' ')).join(', ')} -> ${output.join(' ')}`;
      check(pattern, shapes, { seed: trial });
    }
  });
});

describe('planEinsum validation', () => {
  const bad: [string, number[][], string][] = [
    [
      'i j, j k -> i k',
      [
        [2, 3],
        [4, 2],
      ],
      "'j'",
    ],
    ['i j, j k -> i k', [[2, 3]], 'operand'],
    [
      'i j -> i',
      [
        [2, 3],
        [3, 2],
      ],
      'operand',
    ],
    ['i j -> i j', [[2, 3, 4]], 'operand 0'],
    ['i j -> i j', [[2]], 'operand 0'],
    ['i i -> i', [[2, 3]], "'i'"],
    ['i i, i -> i', [[3, 3], [2]], "'i'"],
    ['... i -> i', [[2, 3]], '...'],
    [
      '... i, ... i -> ...',
      [
        [2, 2, 3],
        [3, 3],
      ],
      '...',
    ],
    ['i, i -> i', [[0], [3]], "'i'"],
  ];
  it.each(bad)('%s %j throws', (pattern, shapes, mention) => {
    const { operands, output } = split(pattern);
    let err: unknown;
    try {
      planEinsum(operands, output, shapes);
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(EinopsError);
    expect((err as EinopsError).rule).toBe('einsum-backend-error');
    expect((err as Error).message).toContain(mention);
  });

  it('names both lengths and both operands on a mismatch', () => {
    expect(() =>
      planEinsum(
        [
          ['i', 'j'],
          ['j', 'k'],
        ],
        ['i', 'k'],
        [
          [2, 3],
          [4, 2],
        ],
      ),
    ).toThrow(/'j'.*3.*operand 0.*4.*operand 1/);
  });

  it('runEinsum rejects tensors of other shapes', async () => {
    await ready('wasm');
    const plan = planEinsum([['i']], ['i'], [[3]]);
    const x = tf.ones([4]);
    expect(() => runEinsum(plan, [x])).toThrow(EinopsError);
    x.dispose();
  });

  it('plans are frozen', () => {
    const plan = planEinsum(
      [
        ['i', 'j'],
        ['j', 'k'],
      ],
      ['i', 'k'],
      [
        [2, 3],
        [3, 4],
      ],
    );
    expect(Object.isFrozen(plan)).toBe(true);
    expect(Object.isFrozen(plan.steps)).toBe(true);
    plan.steps.forEach((step) => expect(Object.isFrozen(step)).toBe(true));
    expect(Object.isFrozen(plan.inputShapes[0])).toBe(true);
  });
});

describe('einsum gradients', () => {
  beforeAll(async () => {
    await ready('wasm');
  });

  // Same expression from tf.mul / tf.sum with broadcasting: the reference for tf.grads.
  const gradCases: [string, number[][], (xs: tf.Tensor[]) => tf.Tensor][] = [
    [
      'b n i, o i -> b n o',
      [
        [2, 3, 4],
        [5, 4],
      ],
      ([x, w]) => tf.sum(tf.mul(x.expandDims(2), w.reshape([1, 1, 5, 4])), 3),
    ],
    [
      'b h q d, b h k d -> b h q k',
      [
        [2, 3, 4, 5],
        [2, 3, 6, 5],
      ],
      ([q, k]) => tf.sum(tf.mul(q.expandDims(3), k.expandDims(2)), 4),
    ],
    [
      'b h q k, b h k d -> b h q d',
      [
        [2, 3, 4, 6],
        [2, 3, 6, 5],
      ],
      ([a, v]) => tf.sum(tf.mul(a.expandDims(4), v.expandDims(2)), 3),
    ],
    ['i i -> i', [[3, 3]], ([x]) => tf.sum(tf.mul(x, tf.eye(3)), 1)],
    [
      'i j, j k, k l -> i l',
      [
        [2, 3],
        [3, 4],
        [4, 2],
      ],
      ([a, b, c]) => tf.matMul(tf.matMul(a, b), c),
    ],
  ];
  for (const strategy of ['auto', 'batched', 'dwconv', 'mulsum', 'split'] as const) {
    it.each(gradCases)(`%s (${strategy})`, (pattern, shapes, ref) => {
      const before = tf.memory().numTensors;
      const { operands, output } = split(pattern);
      const plan = planEinsum(operands, output, shapes, strategy === 'auto' ? {} : { strategy });
      const xs = shapes.map((s, i) => tf.randomNormal(s, 0, 1, 'float32', 7 + i));
      const probe = tf.randomNormal(plan.outputShape as number[], 0, 1, 'float32', 3);
      const got = tf.grads((...ins: tf.Tensor[]) => tf.sum(tf.mul(runEinsum(plan, ins), probe)))(xs);
      const want = tf.grads((...ins: tf.Tensor[]) => tf.sum(tf.mul(ref(ins), probe)))(xs);
      got.forEach((g, i) => {
        expect(g.shape).toEqual(want[i].shape);
        const diff = tf.tidy(() => tf.max(tf.abs(tf.sub(g, want[i]))).dataSync()[0]);
        expect(diff).toBeLessThan(1e-4);
      });
      tf.dispose([...got, ...want, ...xs, probe]);
      expect(tf.memory().numTensors).toBe(before);
    });
  }

  it('zero-size einsum has zero gradients', () => {
    const plan = planEinsum(
      [
        ['i', 'j'],
        ['j', 'k'],
      ],
      ['i', 'k'],
      [
        [2, 0],
        [0, 3],
      ],
    );
    const a = tf.zeros([2, 0]);
    const b = tf.zeros([0, 3]);
    const [ga, gb] = tf.grads((x: tf.Tensor, y: tf.Tensor) => tf.sum(runEinsum(plan, [x, y])))([a, b]);
    expect(ga.shape).toEqual([2, 0]);
    expect(gb.shape).toEqual([0, 3]);
    tf.dispose([a, b, ga, gb]);
  });
});

interface ConformanceCase {
  id: string;
  pattern: string;
  inputs: { shape: number[]; dtype: 'float32' | 'int32' | 'bool'; data: number[] }[];
  expect: { shape?: number[]; dtype?: string; data?: number[]; error?: boolean; rule?: string };
  tolerance?: { rtol: number; atol: number };
}

describe('conformance vectors (planner only, test-side pattern split)', () => {
  beforeAll(async () => {
    await ready('wasm');
  });
  const lines = readFileSync(new URL('../conformance/einsum.jsonl', import.meta.url), 'utf8')
    .split('\n')
    .filter((l) => l.trim().length > 0)
    .map((l) => JSON.parse(l) as ConformanceCase);
  const valid = lines.filter((c) => !c.expect.error);
  const backendErrors = lines.filter((c) => c.expect.error && c.expect.rule === 'einsum-backend-error');

  it.each(valid.map((c) => [c.id, c] as const))('%s', (_, c) => {
    const { operands, output } = split(c.pattern);
    const tensors = c.inputs.map((x) => tf.tensor(x.data, x.shape, x.dtype));
    const y = runEinsum(
      planEinsum(
        operands,
        output,
        c.inputs.map((x) => x.shape),
      ),
      tensors,
    );
    expect(y.shape).toEqual(c.expect.shape);
    const got = Array.from(y.dataSync());
    const { rtol, atol } = c.tolerance ?? { rtol: 0, atol: 0 };
    c.expect.data!.forEach((w, i) =>
      expect(Math.abs(got[i] - w)).toBeLessThanOrEqual(atol + rtol * Math.abs(w)),
    );
    if (c.expect.dtype === 'int32') expect(y.dtype).toBe('int32');
    tf.dispose([y, ...tensors]);
  });

  it.each(backendErrors.map((c) => [c.id, c] as const))('%s throws EinopsError', (_, c) => {
    const { operands, output } = split(c.pattern);
    expect(() =>
      planEinsum(
        operands,
        output,
        c.inputs.map((x) => x.shape),
      ),
    ).toThrow(EinopsError);
  });
});
