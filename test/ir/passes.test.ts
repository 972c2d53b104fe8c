import { describe, expect, it } from 'vitest';
import { tf } from '../../src/tf.js';
import { rearrange } from '../../src/ops.js';
import { evaluate, GraphBuilder, optimize, printGraph, sym, type Graph } from '../../src/ir/index.js';
import { grad } from '../../src/ir/grad.js';
import { relError } from '../helpers/rel-error.js';

await tf.setBackend('cpu');

function kinds(g: Graph): string[] {
  return g.nodes.map((n) => n.op.kind);
}

function sameNumbers(a: Graph, b: Graph, inputs: Record<string, tf.Tensor>): void {
  const before = tf.memory().numTensors;
  const x = evaluate(a, inputs);
  const y = evaluate(b, inputs);
  for (const k of Object.keys(x)) {
    expect(y[k].shape).toEqual(x[k].shape);
    expect(Array.from(y[k].dataSync())).toEqual(Array.from(x[k].dataSync()));
  }
  tf.dispose([...Object.values(x), ...Object.values(y)]);
  expect(tf.memory().numTensors).toBe(before);
}

describe('graph passes', () => {
  it('merges consecutive reshapes and transposes, drops identities', () => {
    const g = new GraphBuilder();
    const x = g.input('x', [sym('N'), 6, 4]);
    const y = x
      .reshape([sym('N'), 2, 3, 4])
      .reshape([sym('N', 6), 4]) // reshape of reshape
      .reshape([sym('N'), 6, 4]) // back to the input shape: identity
      .transpose([0, 2, 1])
      .transpose([0, 2, 1]) // composes to identity
      .transpose([2, 0, 1])
      .transpose([1, 0, 2]) // composes to [0, 2, 1]
      .tile([1, 1, 1]);
    const before = g.build({ y });
    const after = optimize(before);
    expect(kinds(after)).toEqual(['input', 'transpose']);
    expect(printGraph(after)).toContain('transpose(%0, [0, 2, 1])');
    const xs = tf.randomNormal([3, 6, 4]);
    sameNumbers(before, after, { x: xs });
    xs.dispose();
  });

  it('folds constants, shares equal nodes and drops dead ones', () => {
    const g = new GraphBuilder();
    const x = g.input('x', [2, 3]);
    const c = g.constant([1, 2, 3], [3]).mul(2).add(1); // folds to [3, 5, 7]
    const a = x.add(c).exp();
    const b = x.add(c).exp(); // same as a
    void x.log(); // dead
    const before = g.build({ y: a.mul(b) });
    const after = optimize(before);
    expect(kinds(after)).toEqual(['input', 'const', 'add', 'exp', 'mul']);
    const folded = after.nodes[1].op;
    expect(folded.kind === 'const' && Array.from(folded.data)).toEqual([3, 5, 7]);
    const xs = tf.randomNormal([2, 3]);
    sameNumbers(before, after, { x: xs });
    xs.dispose();
  });

  it('a traced multi-step pattern keeps its numbers after the passes', () => {
    const g = new GraphBuilder();
    const x = g.input('x', [sym('N'), 4, 6]);
    const y = rearrange(rearrange(x, 'b (h p) w -> b h p w', { p: 2 }), 'b h p w -> b (h p) w');
    const before = g.build({ y });
    const after = optimize(before);
    expect(kinds(after)).toEqual(['input']);
    const xs = tf.randomNormal([2, 4, 6]);
    sameNumbers(before, after, { x: xs });
    xs.dispose();
  });

  it('writes a transposed product as the product of the transposed factors', () => {
    const g = new GraphBuilder();
    const x = g.input('x', [sym('N'), 4]);
    const dy = g.input('dy', [sym('N'), 3]);
    const w = g.input('w', [2, 5, 4]);
    // A weight gradient (xᵀ @ dy)ᵀ: becomes dyᵀ @ x, the transposes gone.
    const dw = x.transpose([1, 0]).matMul(dy).transpose([1, 0]);
    // A batched product with its last two axes swapped: (w @ v)ᵀ = vᵀ @ wᵀ.
    const v = g.input('v', [4, 6]);
    const wv = w.matMul(v).transpose([0, 2, 1]);
    // A product used twice is left as it is.
    const p = x.matMul(g.input('u', [4, 4]));
    const before = g.build({ dw, wv, pt: p.transpose([1, 0]), p });
    const after = optimize(before);
    const dwNode = after.nodes[after.outputs[0].id];
    expect(dwNode.op.kind).toBe('matMul');
    expect(dwNode.inputs.map((i) => after.nodes[i].op.kind)).toEqual(['transpose', 'input']);
    expect(after.nodes[after.outputs[1].id].op.kind).toBe('matMul');
    expect(after.nodes[after.outputs[2].id].op.kind).toBe('transpose');
    const r = (s: number[]) => tf.randomNormal(s);
    const feeds = { x: r([3, 4]), dy: r([3, 3]), w: r([2, 5, 4]), v: r([4, 6]), u: r([4, 4]) };
    const a = evaluate(before, feeds);
    const b = evaluate(after, feeds);
    for (const k of Object.keys(a)) {
      expect(b[k].shape).toEqual(a[k].shape);
      const diff = tf.tidy(() => a[k].sub(b[k]).abs().max().dataSync()[0]);
      expect(diff).toBeLessThan(1e-5);
    }
    tf.dispose([...Object.values(a), ...Object.values(b), ...Object.values(feeds)]);
  });

  it('decomposes attention so that its gradient shares the forward softmax', () => {
    const g = new GraphBuilder();
    const N = sym('N');
    const q = g.input('q', [N, 2, 5, 4]);
    const k = g.input('k', [N, 2, 5, 4]);
    const v = g.input('v', [N, 2, 5, 3]);
    const y = g.attention(q, k, v, 0.5);
    const loss = y.mul(y).sum([0, 1, 2, 3]);
    const [dq, dk, dv] = grad(loss, [q, k, v]);
    const before = g.build({ y, dq, dk, dv });
    const count = (graph: Graph, kind: string) => graph.nodes.filter((n) => n.op.kind === kind).length;
    const kept = optimize(before);
    expect(count(kept, 'attention')).toBe(1);
    expect(count(kept, 'softmax')).toBe(1); // the backward's recomputation
    const after = optimize(before, { decomposeAttention: true });
    expect(count(after, 'attention')).toBe(0);
    expect(count(after, 'softmax')).toBe(1); // forward and backward share it
    const feeds = {
      q: tf.randomNormal([3, 2, 5, 4]),
      k: tf.randomNormal([3, 2, 5, 4]),
      v: tf.randomNormal([3, 2, 5, 3]),
    };
    const a = evaluate(before, feeds);
    const b = evaluate(after, feeds);
    for (const key of Object.keys(a)) {
      expect(relError(b[key].dataSync(), a[key].dataSync()), key).toBeLessThan(1e-5);
    }
    tf.dispose([...Object.values(a), ...Object.values(b), ...Object.values(feeds)]);
  });

  it('moves a concat before the transposes and reshapes that feed only it', () => {
    const g = new GraphBuilder();
    const N = sym('N');
    // Per-head pieces laid back into a packed [N, T, 3·H·D] layout, as q/k/v gradients are.
    const parts = ['a', 'b', 'c'].map((name) =>
      g.input(name, [N, 2, 5, 4]).transpose([0, 2, 1, 3]).reshape([N, 5, 8]),
    );
    const packed = g.concat(parts, 2);
    // A concat whose transposes differ, and one whose input is also read elsewhere: left alone.
    const x = g.input('x', [N, 3, 4]);
    const mixed = g.concat(
      [x.transpose([0, 2, 1]), g.input('y', [N, 3, 4]).transpose([0, 1, 2]).transpose([0, 2, 1]).mul(2)],
      1,
    );
    const shared = x.transpose([0, 2, 1]).exp();
    const kept = g.concat([shared, shared.mul(3)], 2);
    const before = g.build({ packed, mixed, kept, shared });
    const after = optimize(before);
    const count = (graph: Graph, kind: string) => graph.nodes.filter((n) => n.op.kind === kind).length;
    const out = after.nodes[after.outputs[0].id];
    expect(out.op.kind).toBe('reshape');
    const t = after.nodes[out.inputs[0]];
    expect(t.op).toEqual({ kind: 'transpose', perm: [0, 2, 1, 3] });
    expect(after.nodes[t.inputs[0]].op).toEqual({ kind: 'concat', axis: 1 });
    expect(count(after, 'transpose')).toBeLessThan(
      count(optimize(before, { concatsFirst: false }), 'transpose'),
    );
    const r = (s: number[]) => tf.randomNormal(s);
    const feeds = {
      a: r([3, 2, 5, 4]),
      b: r([3, 2, 5, 4]),
      c: r([3, 2, 5, 4]),
      x: r([3, 3, 4]),
      y: r([3, 3, 4]),
    };
    const want = evaluate(before, feeds);
    const got = evaluate(after, feeds);
    for (const k of Object.keys(want)) {
      expect(got[k].shape).toEqual(want[k].shape);
      expect(Array.from(got[k].dataSync())).toEqual(Array.from(want[k].dataSync()));
    }
    tf.dispose([...Object.values(want), ...Object.values(got), ...Object.values(feeds)]);
  });
});
