import { describe, expect, it } from 'vitest';
import { tf } from '../../src/tf.js';
import { evaluate, fmtShape, GraphBuilder, optimize, sym, type Graph, type Sym } from '../../src/ir/index.js';
import { Rng } from '../../src/train/random.js';

await tf.setBackend('cpu');

const rng = new Rng(3);
function param(g: GraphBuilder, name: string, shape: number[]): Sym {
  const n = shape.reduce((a, b) => a * b, 1);
  return g.param(
    name,
    Float32Array.from({ length: n }, () => rng.nextFloat() - 0.5),
    shape,
  );
}

/** Both graphs on the same inputs: every output within 1e-6 relative to the unoptimised one. */
function sameNumbers(a: Graph, b: Graph, inputs: Record<string, tf.Tensor>): void {
  const before = tf.memory().numTensors;
  const x = evaluate(a, inputs);
  const y = evaluate(b, inputs);
  for (const k of Object.keys(x)) {
    expect(y[k].shape).toEqual(x[k].shape);
    const p = x[k].dataSync();
    const q = y[k].dataSync();
    const scale = Math.max(...Array.from(p, Math.abs));
    for (let i = 0; i < p.length; i++) expect(Math.abs(p[i] - q[i])).toBeLessThanOrEqual(1e-6 * scale);
  }
  tf.dispose([...Object.values(x), ...Object.values(y)]);
  expect(tf.memory().numTensors).toBe(before);
}

function shapesOf(g: Graph, kind: string): string[] {
  return g.nodes.filter((n) => n.op.kind === kind).map((n) => fmtShape(n.type.shape));
}

describe('slice sinking', () => {
  it('computes a token slice of a LayerNorm -> MLP -> residual block on that token only', () => {
    const g = new GraphBuilder();
    const x = g.input('x', [sym('N'), 5, 4]);
    const h = x
      .layerNorm(param(g, 'g', [4]), param(g, 'b', [4]))
      .matMul(param(g, 'w1', [4, 6]))
      .add(param(g, 'b1', [6]))
      .gelu()
      .matMul(param(g, 'w2', [6, 4]));
    const y = x.add(h).slice(1, 0, 1);
    const before = g.build({ y });
    const after = optimize(before);
    // Every product runs on one token; the only slice left reads the input.
    expect(shapesOf(after, 'matMul').every((s) => s.startsWith('[N, 1,'))).toBe(true);
    expect(after.nodes.filter((n) => n.op.kind === 'slice').map((n) => n.inputs[0])).toEqual([0]);
    const xs = tf.randomNormal([3, 5, 4], 0, 1, 'float32', 1);
    sameNumbers(before, after, { x: xs });
    xs.dispose();
  });

  it('splits a packed q/k/v product read only through disjoint slices into three products', () => {
    const g = new GraphBuilder();
    const x = g.input('x', [sym('N'), 3, 4]);
    const w = param(g, 'qkv.weight', [12, 4]);
    const qkv = x.matMul(w.transpose([1, 0])).add(param(g, 'qkv.bias', [12]));
    const [q, k, v] = [0, 1, 2].map((i) => qkv.slice(2, i * 4, i * 4 + 4).reshape([sym('N'), 3, 2, 2]));
    const before = g.build({ y: q.mul(k).add(v) });
    const after = optimize(before);
    expect(shapesOf(after, 'matMul')).toEqual(['[N, 3, 4]', '[N, 3, 4]', '[N, 3, 4]']);
    // What remains sliced are the parameters (the ONNX emitter writes those slices as initializers).
    for (const n of after.nodes.filter((m) => m.op.kind === 'slice'))
      expect(after.nodes[n.inputs[0]].op.kind).toBe('param');
    const xs = tf.randomNormal([2, 3, 4], 0, 1, 'float32', 2);
    sameNumbers(before, after, { x: xs });
    xs.dispose();
  });

  it('takes the query rows of attention only, keeping every key and value', () => {
    const g = new GraphBuilder();
    const q = g.input('q', [sym('N'), 2, 5, 3]);
    const k = g.input('k', [sym('N'), 2, 5, 3]);
    const v = g.input('v', [sym('N'), 2, 5, 3]);
    const y = g
      .attention(q.mul(2), k, v, 0.5)
      .transpose([0, 2, 1, 3])
      .reshape([sym('N'), 5, 6])
      .slice(1, 0, 1);
    const before = g.build({ y });
    const after = optimize(before);
    const att = after.nodes.find((n) => n.op.kind === 'attention')!;
    expect(after.nodes[att.inputs[0]].type.shape).toEqual([sym('N'), 2, 1, 3]);
    expect(after.nodes[att.inputs[1]].type.shape).toEqual([sym('N'), 2, 5, 3]);
    const [qs, ks, vs] = [4, 5, 6].map((s) => tf.randomNormal([2, 2, 5, 3], 0, 1, 'float32', s));
    sameNumbers(before, after, { q: qs, k: ks, v: vs });
    tf.dispose([qs, ks, vs]);
  });

  it('leaves a node whole where something else reads it, or slices overlap', () => {
    const g = new GraphBuilder();
    const x = g.input('x', [2, 6]);
    const e = x.exp();
    const shared = g.build({ a: e.slice(1, 0, 2), full: e });
    expect(optimize(shared).nodes.map((n) => n.op.kind)).toEqual(['input', 'exp', 'slice']);
    const t = x.tanh();
    const overlapping = g.build({ a: t.slice(1, 0, 4), b: t.slice(1, 2, 6) });
    expect(optimize(overlapping).nodes.map((n) => n.op.kind)).toEqual(['input', 'tanh', 'slice', 'slice']);
    // A softmax over the sliced axis mixes positions: the slice stays after it.
    const s = g.build({ y: x.softmax(-1).slice(1, 0, 3) });
    expect(optimize(s).nodes.map((n) => n.op.kind)).toEqual(['input', 'softmax', 'slice']);
    // ... and over another axis it moves.
    const r = g.build({ y: x.softmax(0).slice(1, 0, 3) });
    expect(optimize(r).nodes.map((n) => n.op.kind)).toEqual(['input', 'slice', 'softmax']);
    expect(optimize(r, { sinkSlices: false }).nodes.map((n) => n.op.kind)).toEqual([
      'input',
      'softmax',
      'slice',
    ]);
    const xs = tf.randomNormal([2, 6], 0, 1, 'float32', 9);
    sameNumbers(r, optimize(r), { x: xs });
    xs.dispose();
  });

  it('shares equal LayerNorm statistics and slices them along any axis but the normalised one', () => {
    const g = new GraphBuilder();
    const x = g.input('x', [sym('N'), 5, 4]);
    // Two equal means (CSE keeps one), and an invStdDev read only through a token slice.
    const m = x.layerNormStat('mean', 1e-5).add(x.layerNormStat('mean', 1e-5));
    const r = x.mul(2).layerNormStat('invStdDev', 1e-5).slice(1, 1, 2);
    const before = g.build({ m, r });
    const after = optimize(before);
    expect(shapesOf(after, 'layerNormStat')).toEqual(['[N, 5, 1]', '[N, 1, 1]']);
    expect(shapesOf(after, 'mul')).toEqual(['[N, 1, 4]']);
    const xs = tf.randomNormal([3, 5, 4], 0, 1, 'float32', 2);
    sameNumbers(before, after, { x: xs });
    xs.dispose();
  });
});
