import { describe, expect, it } from 'vitest';
import { tf } from '../../src/tf.js';
import { CompileError } from '../../src/errors.js';
import { evaluate, GraphBuilder, printGraph, sym } from '../../src/ir/index.js';

await tf.setBackend('cpu');

describe('GraphBuilder', () => {
  it('records a dense layer with a symbolic batch and evaluates it like tfjs', () => {
    const g = new GraphBuilder();
    const x = g.input('x', [sym('N'), 3]);
    const w = g.param('w', Float32Array.from([1, 2, 3, 4, 5, 6]), [3, 2]);
    const b = g.param('b', Float32Array.from([0.5, -1]), [2]);
    const y = x.matMul(w).add(b).relu();
    expect(y.shape).toEqual([sym('N'), 2]);
    const graph = g.build({ y });
    expect(printGraph(graph)).toContain("%0 = input('x')");
    const before = tf.memory().numTensors;
    const xs = tf.tensor2d([1, 0, -1, 2, 1, 0], [2, 3]);
    const { y: out } = evaluate(graph, { x: xs });
    expect(out.shape).toEqual([2, 2]);
    // [1,0,-1]·W = [1-5, 2-6] = [-4,-4] + b -> relu 0; [2,1,0]·W = [2+3, 4+4] = [5, 8] + b
    expect(Array.from(out.dataSync())).toEqual([0, 0, 5.5, 7]);
    out.dispose();
    xs.dispose();
    expect(tf.memory().numTensors).toBe(before);
  });

  it('rejects shapes that do not fit with a CompileError naming the op', () => {
    const g = new GraphBuilder();
    const x = g.input('x', [sym('N'), 3]);
    const w = g.param('w', new Float32Array(8), [4, 2]);
    expect(() => x.matMul(w)).toThrow(CompileError);
    expect(() => x.matMul(w)).toThrow(/matMul: inner dims differ: \[N, 3\] @ \[4, 2\]/);
    expect(() => x.reshape([4])).toThrow(/reshape: cannot reshape \[N, 3\] to \[4\]/);
    expect(() => x.reshape([sym('N', 3)])).not.toThrow();
    expect(() => x.transpose([0, 0])).toThrow(/transpose/);
    expect(() => x.slice(0, 0, 1)).toThrow(/slice: cannot slice the symbolic axis/);
  });

  it('broadcasts binary ops numpy-style', () => {
    const g = new GraphBuilder();
    const x = g.input('x', [sym('N'), 1, 4]);
    const y = g.input('y', [5, 1]);
    expect(x.add(y).shape).toEqual([sym('N'), 5, 4]);
    expect(() => x.add(g.input('z', [3]))).toThrow(/add: shapes \[N, 1, 4\] and \[3\] do not broadcast/);
  });

  it("records LayerNorm's statistics with the last axis kept as 1, and evaluates them as tf.moments", () => {
    const g = new GraphBuilder();
    const x = g.input('x', [sym('N'), 3]);
    const mean = x.layerNormStat('mean', 0.5);
    const inv = x.layerNormStat('invStdDev', 0.5);
    expect(inv.shape).toEqual([sym('N'), 1]);
    expect(() => new GraphBuilder().input('i', [3], 'int32').layerNormStat('mean')).toThrow(
      /layerNormStat: needs a float32/,
    );
    const graph = g.build({ mean, inv });
    expect(printGraph(graph)).toContain('layerNormStat(%0, invStdDev, eps 0.5)');
    const before = tf.memory().numTensors;
    const xs = tf.tensor2d([1, 2, 3, -4, 0, 4], [2, 3]);
    const out = evaluate(graph, { x: xs });
    // Rows [1, 2, 3] and [-4, 0, 4]: means 2 and 0, population variances 2/3 and 32/3.
    expect(Array.from(out.mean.dataSync())).toEqual([2, 0]);
    const want = [1 / Math.sqrt(2 / 3 + 0.5), 1 / Math.sqrt(32 / 3 + 0.5)];
    Array.from(out.inv.dataSync()).forEach((v, i) => expect(v).toBeCloseTo(want[i], 6));
    tf.dispose([xs, out.mean, out.inv]);
    expect(tf.memory().numTensors).toBe(before);
  });
});
