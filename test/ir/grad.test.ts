// Every VJP rule against central finite differences, evaluated with the IR's tfjs interpreter.
//
// tfjs has no float64, so the forward runs in float32; the finite differences are made precise
// enough anyway: the output is projected onto a fixed random cotangent `dy` in float64 (JS numbers),
// and two central differences (steps h and h/2) are combined by Richardson extrapolation, which
// cancels the h² truncation term. With h = 1e-2 the truncation error is O(h⁴) ~ 1e-8 and the float32
// round-off ~ 6e-8·|f|/h ~ 1e-5 of the output's scale, so 1e-3 relative to the largest gradient entry
// separates a wrong rule from noise: the rules agree to 4e-5 at most, and a rule off by 0.3% fails.
import { describe, expect, it } from 'vitest';
import { tf } from '../../src/tf.js';
import { CompileError } from '../../src/errors.js';
import { evaluate, GraphBuilder, sym, type Shape, type Sym } from '../../src/ir/index.js';
import { grad, gradGraph, NO_GRADIENT, VJP } from '../../src/ir/grad.js';
import { Rng } from '../../src/train/random.js';

await tf.setBackend('cpu');

const N = sym('N');
/** The batch used wherever a shape says `N`. */
const BATCH = 2;

const concreteShape = (s: Shape): number[] => s.map((d) => (typeof d === 'number' ? d : d.coeff * BATCH));
const size = (s: readonly number[]) => s.reduce((a, b) => a * b, 1);

type Init = 'normal' | 'positive' | 'distinct' | 'nonzero';

/**
 * Values for one input. 'distinct' keeps entries at least 0.05 apart and away from 0 (so max/min,
 * relu, abs, maximum do not meet a kink within a step); 'positive' is in [0.5, 1.5].
 */
function values(n: number, init: Init, next: () => number): Float32Array {
  const out = new Float32Array(n);
  if (init === 'distinct') {
    const picks = [...Array(4 * n).keys()].map((i) => (i - 2 * n + 0.5) * 0.05);
    for (let i = 0; i < n; i++) out[i] = picks.splice(Math.floor(next() * picks.length), 1)[0];
    return out;
  }
  for (let i = 0; i < n; i++) {
    const u = next() * 2 - 1;
    out[i] =
      init === 'positive' ? 1 + 0.5 * u : init === 'nonzero' ? Math.sign(u || 1) * (0.5 + Math.abs(u)) : u;
  }
  return out;
}

interface Case {
  inputs: Record<string, { shape: Shape; init?: Init }>;
  f: (x: Record<string, Sym>, g: GraphBuilder) => Sym;
  seed?: number;
}

/** Checks the gradient of `sum(dy · f(x))` with respect to every input against finite differences. */
function check({ inputs, f, seed = 1 }: Case): void {
  const random = new Rng(seed);
  const next = () => random.nextFloat();
  const g = new GraphBuilder();
  const xs: Record<string, Sym> = {};
  for (const [name, { shape }] of Object.entries(inputs)) xs[name] = g.input(name, shape);
  const y = f(xs, g);
  const dy = g.input('dy', y.shape);
  const names = Object.keys(inputs);
  const grads = grad(
    y,
    names.map((n) => xs[n]),
    { seed: dy },
  );
  const graph = g.build({ y, ...Object.fromEntries(names.map((n, i) => [`d${n}`, grads[i]])) });
  const fwd = g.build({ y });

  const data: Record<string, Float32Array> = {};
  const shapes: Record<string, number[]> = {};
  for (const [name, { shape, init }] of Object.entries(inputs)) {
    shapes[name] = concreteShape(shape);
    data[name] = values(size(shapes[name]), init ?? 'normal', next);
  }
  shapes.dy = concreteShape(y.shape);
  data.dy = values(size(shapes.dy), 'normal', next);

  const before = tf.memory().numTensors;
  const feed = () => Object.fromEntries(Object.keys(data).map((k) => [k, tf.tensor(data[k], shapes[k])]));
  const run = (which: typeof graph): Record<string, Float32Array> => {
    const fed = feed();
    const out = evaluate(which, fed);
    const res = Object.fromEntries(Object.entries(out).map(([k, t]) => [k, t.dataSync() as Float32Array]));
    tf.dispose([...Object.values(out), ...Object.values(fed)]);
    return res;
  };
  const analytic = run(graph);
  // f(x) projected on dy, in float64.
  const project = (): number => {
    const out = run(fwd).y;
    let s = 0;
    for (let i = 0; i < out.length; i++) s += out[i] * data.dy[i];
    return s;
  };
  const h = 1e-2;
  for (const name of names) {
    const x = data[name];
    const numeric = new Float64Array(x.length);
    for (let i = 0; i < x.length; i++) {
      const x0 = x[i];
      const central = (step: number) => {
        x[i] = x0 + step;
        const up = project();
        x[i] = x0 - step;
        const down = project();
        x[i] = x0;
        return (up - down) / (2 * step);
      };
      numeric[i] = (4 * central(h / 2) - central(h)) / 3;
    }
    const got = analytic[`d${name}`];
    expect(got.length, `gradient of ${name}`).toBe(x.length);
    const scale = Math.max(1e-3, ...Array.from(numeric, Math.abs));
    const err = Math.max(...Array.from(numeric, (v, i) => Math.abs(v - got[i])));
    expect(err / scale, `gradient of ${name}: ${Array.from(got)} vs ${Array.from(numeric)}`).toBeLessThan(
      1e-3,
    );
  }
  expect(tf.memory().numTensors).toBe(before);
}

describe('grad: every rule against finite differences', () => {
  it('reshape and transpose (symbolic batch)', () => {
    check({ inputs: { x: { shape: [N, 2, 3] } }, f: ({ x }) => x.reshape([sym('N', 6)]) });
    check({ inputs: { x: { shape: [N, 2, 3] } }, f: ({ x }) => x.transpose([2, 0, 1]) });
  });

  it('reduce sum, mean (also over the symbolic batch), max, min, prod', () => {
    const x = { x: { shape: [N, 3, 4] as Shape } };
    check({ inputs: x, f: ({ x }) => x.sum([1]) });
    check({ inputs: x, f: ({ x }) => x.mean([0], true) });
    check({ inputs: x, f: ({ x }) => x.mean([0, 1, 2]) });
    check({ inputs: { x: { shape: [N, 3, 4], init: 'distinct' } }, f: ({ x }) => x.max([2]) });
    check({
      inputs: { x: { shape: [N, 3, 4], init: 'distinct' } },
      f: ({ x }) => x.reduce('min', [1, 2], true),
    });
    check({ inputs: { x: { shape: [N, 3], init: 'nonzero' } }, f: ({ x }) => x.reduce('prod', [1]) });
  });

  it('max shares the gradient among ties', () => {
    const g = new GraphBuilder();
    const x = g.input('x', [4]);
    const [dx] = grad(x.max([0]), [x]);
    const xs = tf.tensor1d([1, 3, 3, 2]);
    const out = evaluate(g.build({ dx }), { x: xs });
    expect(Array.from(out.dx.dataSync())).toEqual([0, 0.5, 0.5, 0]);
    tf.dispose([xs, out.dx]);
  });

  it('tile, expand, concat, slice', () => {
    check({ inputs: { x: { shape: [2, 3] } }, f: ({ x }) => x.tile([2, 3]) });
    check({ inputs: { x: { shape: [N, 3] } }, f: ({ x }) => x.tile([1, 2]) });
    check({ inputs: { x: { shape: [4, 1] } }, f: ({ x }) => x.expand([N, 4, 3]) });
    check({
      inputs: { a: { shape: [N, 2] }, b: { shape: [N, 3] } },
      f: ({ a, b }, g) => g.concat([a, b, a], 1),
    });
    check({ inputs: { x: { shape: [N, 5] } }, f: ({ x }) => x.slice(1, 1, 3) });
    check({ inputs: { x: { shape: [N, 5] } }, f: ({ x }) => x.slice(1, 0, 2) });
    check({ inputs: { x: { shape: [N, 5] } }, f: ({ x }) => x.slice(1, 3, 5) });
  });

  it('matMul: plain, shared weight, shared left operand, broadcast batch', () => {
    check({ inputs: { a: { shape: [3, 4] }, b: { shape: [4, 2] } }, f: ({ a, b }) => a.matMul(b) });
    check({ inputs: { a: { shape: [N, 3, 4] }, b: { shape: [4, 2] } }, f: ({ a, b }) => a.matMul(b) });
    check({ inputs: { a: { shape: [2, 3] }, b: { shape: [N, 3, 4] } }, f: ({ a, b }) => a.matMul(b) });
    check({
      inputs: { a: { shape: [N, 1, 3, 4] }, b: { shape: [2, 4, 2] } },
      f: ({ a, b }) => a.matMul(b),
    });
  });

  it('unary ops', () => {
    const on = (init: Init, f: (x: Sym, g: GraphBuilder) => Sym) =>
      check({ inputs: { x: { shape: [N, 3], init } }, f: ({ x }, g) => f(x, g) });
    on('normal', (x) => x.neg());
    on('normal', (x) => x.exp());
    on('positive', (x) => x.log());
    on('positive', (x) => x.sqrt());
    on('positive', (x) => x.rsqrt());
    on('nonzero', (x) => x.reciprocal());
    on('normal', (x) => x.tanh());
    on('normal', (x) => x.erf());
    on('distinct', (x) => x.relu());
    on('normal', (x) => x.sigmoid());
    on('distinct', (x) => x.abs());
    on('normal', (x, g) => g.node({ kind: 'sin' }, [x]));
    on('normal', (x, g) => g.node({ kind: 'cos' }, [x]));
    on('normal', (x, g) => g.node({ kind: 'cast', to: 'float32' }, [x]));
  });

  it('binary ops with broadcasting', () => {
    const ab = (ia: Init, ib: Init, f: (a: Sym, b: Sym) => Sym) =>
      check({
        inputs: { a: { shape: [N, 1, 3], init: ia }, b: { shape: [2, 1], init: ib } },
        f: ({ a, b }) => f(a, b),
      });
    ab('normal', 'normal', (a, b) => a.add(b));
    ab('normal', 'normal', (a, b) => a.sub(b));
    ab('normal', 'normal', (a, b) => a.mul(b));
    ab('normal', 'nonzero', (a, b) => a.div(b));
    ab('positive', 'normal', (a, b) => a.pow(b));
    ab('distinct', 'distinct', (a, b) => a.maximum(b));
    ab('distinct', 'distinct', (a, b) => a.minimum(b));
    // A constant exponent: only the base needs a gradient (no log of a negative base is built).
    check({ inputs: { a: { shape: [N, 3] } }, f: ({ a }) => a.pow(3) });
  });

  it('maximum and minimum split the gradient of a tie in half', () => {
    const g = new GraphBuilder();
    const a = g.input('a', [2]);
    const b = g.input('b', [2]);
    const [da, db] = grad(a.maximum(b).sum([0]), [a, b]);
    const [ta, tb] = [tf.tensor1d([1, 2]), tf.tensor1d([1, 3])];
    const out = evaluate(g.build({ da, db }), { a: ta, b: tb });
    expect(Array.from(out.da.dataSync())).toEqual([0.5, 0]);
    expect(Array.from(out.db.dataSync())).toEqual([0.5, 1]);
    tf.dispose([ta, tb, out.da, out.db]);
  });

  it('where (condition from a comparison, all three broadcast)', () => {
    check({
      inputs: { c: { shape: [N, 3] }, a: { shape: [3] }, b: { shape: [N, 1] } },
      f: ({ c, a, b }, g) => g.where(c.greater(0), a, b),
    });
  });

  it('softmax and logSoftmax on any axis', () => {
    const x = { x: { shape: [N, 3, 4] as Shape } };
    check({ inputs: x, f: ({ x }) => x.softmax(-1) });
    check({ inputs: x, f: ({ x }) => x.softmax(1) });
    check({ inputs: x, f: ({ x }) => x.logSoftmax(-1) });
    check({ inputs: x, f: ({ x }) => x.logSoftmax(0) });
  });

  it('layerNorm: x, gamma and beta', () => {
    check({
      inputs: { x: { shape: [N, 3, 5] }, gamma: { shape: [5] }, beta: { shape: [5] } },
      f: ({ x, gamma, beta }) => x.layerNorm(gamma, beta, 1e-5),
    });
  });

  it('layerNormStat: mean and 1/sqrt(var + eps)', () => {
    for (const which of ['mean', 'invStdDev'] as const) {
      check({
        inputs: { x: { shape: [N, 3, 5] } },
        f: ({ x }) => x.mul(2).layerNormStat(which, 1e-5),
      });
    }
  });

  it('gelu, exact (erf) and tanh forms', () => {
    check({ inputs: { x: { shape: [N, 4] } }, f: ({ x }) => x.mul(2).gelu('none') });
    check({ inputs: { x: { shape: [N, 4] } }, f: ({ x }) => x.mul(2).gelu('tanh') });
  });

  it('attention: q, k and v', () => {
    check({
      inputs: { q: { shape: [N, 2, 3, 4] }, k: { shape: [N, 2, 5, 4] }, v: { shape: [N, 2, 5, 3] } },
      f: ({ q, k, v }, g) => g.attention(q, k, v, 0.7),
    });
  });

  it('sums gradients that meet (a tensor used three times)', () => {
    check({
      inputs: { x: { shape: [N, 3] }, w: { shape: [3, 3] } },
      f: ({ x, w }) => x.mul(x).add(x.matMul(w).tanh()).add(x.exp()),
    });
  });

  it('slices of one tensor: disjoint pieces, gaps, overlaps, other axes and whole uses together', () => {
    // q/k/v-like: three disjoint slices covering the axis.
    check({
      inputs: { x: { shape: [N, 6] } },
      f: ({ x }) =>
        x
          .slice(1, 0, 2)
          .mul(x.slice(1, 2, 4))
          .add(x.slice(1, 4, 6).exp()),
    });
    // Gaps before, between and after; an overlapping pair; a slice on another axis; a whole use.
    check({
      inputs: { x: { shape: [N, 3, 8] } },
      f: ({ x }) =>
        x
          .slice(2, 1, 3)
          .mul(x.slice(2, 5, 7))
          .add(x.slice(2, 2, 4).tanh())
          .add(x.slice(1, 1, 2).slice(2, 0, 2).mul(0.5).expand([N, 3, 2]))
          .add(x.sum([2], true).expand([N, 3, 2])),
    });
  });
});

describe('grad: the walk', () => {
  it('lays disjoint slice gradients of one tensor into one concat (no padded copies added up)', () => {
    const g = new GraphBuilder();
    const x = g.input('x', [N, 6]);
    const y = x
      .slice(1, 0, 2)
      .mul(x.slice(1, 2, 4))
      .mul(x.slice(1, 4, 6))
      .sum([0, 1]);
    const [dx] = grad(y, [x]);
    const graph = g.build({ dx });
    const id = graph.outputs[0].id;
    const node = graph.nodes[id];
    expect(node.op.kind).toBe('concat');
    expect(node.inputs.map((i) => graph.nodes[i].type.shape[1])).toEqual([2, 2, 2]);
    // No addition of full-size [N, 6] tensors anywhere.
    expect(graph.nodes.filter((n) => n.op.kind === 'add' && n.type.shape[1] === 6)).toEqual([]);
  });

  it('gives no gradient through integer and bool values, and zeros where the loss does not depend', () => {
    const g = new GraphBuilder();
    const x = g.input('x', [3]);
    const unused = g.input('unused', [N, 2]);
    // argMax and the comparison carry no gradient: the loss is x·x + a constant in x.
    const idx = x.argMax(0).cast('float32');
    const loss = x
      .mul(x)
      .sum([0])
      .add(idx)
      .add(float(x.greater(0)).sum([0]));
    const [dx, du] = grad(loss, [x, unused]);
    expect(du.shape).toEqual([N, 2]);
    const tx = tf.tensor1d([1, -2, 3]);
    const tu = tf.zeros([2, 2]);
    const out = evaluate(g.build({ dx, du }), { x: tx, unused: tu });
    expect(Array.from(out.dx.dataSync())).toEqual([2, -4, 6]);
    expect(Array.from(out.du.dataSync())).toEqual([0, 0, 0, 0]);
    tf.dispose([tx, tu, out.dx, out.du]);
  });

  it('lists the kinds without a gradient explicitly', () => {
    const none = Object.entries(VJP)
      .filter(([, r]) => r === NO_GRADIENT)
      .map(([k]) => k)
      .sort();
    expect(none).toEqual(['and', 'argMax', 'equal', 'greater', 'less', 'not', 'or', 'sign']);
  });

  it('a kind without a rule does not type-check', () => {
    const { attention: _dropped, ...rest } = VJP;
    // @ts-expect-error attention has no rule in `rest`
    const table: typeof VJP = rest;
    expect(Object.keys(table)).not.toContain('attention');
  });

  it('rejects a non-scalar loss without a seed, and foreign or integer wrt tensors', () => {
    const g = new GraphBuilder();
    const x = g.input('x', [N, 3]);
    expect(() => grad(x.exp(), [x])).toThrow(CompileError);
    expect(() => grad(x.exp(), [x])).toThrow(/grad: the loss \[N, 3\] is not a scalar/);
    const other = new GraphBuilder().input('y', [3]);
    expect(() => grad(x.sum([0, 1]), [other])).toThrow(/another graph/);
    const i = g.input('i', [3], 'int32');
    expect(() => grad(x.sum([0, 1]), [i])).toThrow(/not float32/);
  });

  it('gradGraph adds grad.<name> outputs to a graph with parameters', () => {
    const g = new GraphBuilder();
    const x = g.input('x', [N, 2]);
    const w = g.param('w', Float32Array.from([1, 2, 3, 4]), [2, 2]);
    const graph = g.build({ loss: x.matMul(w).sum([0, 1]) });
    const withGrads = gradGraph(graph, { loss: 'loss', wrt: ['w', 'x'] });
    expect(withGrads.outputs.map((o) => o.name)).toEqual(['loss', 'grad.w', 'grad.x']);
    const tx = tf.tensor2d([1, 2, 3, 4], [2, 2]);
    const out = evaluate(withGrads, { x: tx });
    // d/dw sum(x w) = colsum(x) per row of w; d/dx = rowsum(w) per column of x.
    expect(Array.from(out['grad.w'].dataSync())).toEqual([4, 4, 6, 6]);
    expect(Array.from(out['grad.x'].dataSync())).toEqual([3, 7, 3, 7]);
    expect(out.loss.dataSync()[0]).toBe(1 * 1 + 2 * 3 + 1 * 2 + 2 * 4 + 3 * 1 + 4 * 3 + 3 * 2 + 4 * 4);
    tf.dispose([tx, ...Object.values(out)]);
    expect(() => gradGraph(graph, { loss: 'nope', wrt: ['w'] })).toThrow(/no output named 'nope'/);
    expect(() => gradGraph(graph, { loss: 'loss', wrt: ['v'] })).toThrow(/no input or parameter named 'v'/);
  });
});

function float(x: Sym): Sym {
  return x.cast('float32');
}
