// LayerNorm's backward reads the forward's statistics (layerNormStat nodes), which the ONNX emitter
// hands out as outputs 1 and 2 of a LayerNormalization: the values of each layerNorm form against the
// tfjs interpreter, and the nodes emitted (no statistic computed twice).
import { afterAll, describe, expect, it } from 'vitest';
import { tf } from '../../src/tf.js';
import { evaluate, GraphBuilder, optimize, sym, type Graph } from '../../src/ir/index.js';
import { grad } from '../../src/ir/grad.js';
import { toOnnx, type EmitOptions } from '../../src/onnx/emit.js';
import { decodeModel } from '../../src/onnx/proto.js';
import { loadOnnxruntime, OnnxSession } from '../../src/onnx/runtime.js';
import { Rng } from '../../src/train/random.js';
import { relError } from '../helpers/rel-error.js';

await tf.setBackend('cpu');
const ort = await loadOnnxruntime();

const [B, T, D] = [2, 3, 8];
const EPS = 1e-5;

function randoms(n: number, rng: Rng, scale = 1, offset = 0): Float32Array {
  return Float32Array.from({ length: n }, () => offset + scale * (rng.nextFloat() * 2 - 1));
}

/**
 * A LayerNorm of a residual sum `x + r` and the gradients of a loss through it. `sunk`: the loss
 * reads only token 0 of the norm, so the slice-sinking pass moves the forward norm onto a slice of
 * the sum while the backward still reads the statistics of the whole sum. `wrt`: what to
 * differentiate against (beta alone reads no statistic).
 */
function lnGraph(sunk: boolean, wrt: ReadonlyArray<'x' | 'gamma' | 'beta'> = ['x', 'gamma', 'beta']): Graph {
  const rng = new Rng(3);
  const g = new GraphBuilder();
  const x = g.input('x', [sym('N'), T, D]);
  const r = g.input('r', [sym('N'), T, D]);
  const gamma = g.param('gamma', randoms(D, rng, 0.5, 1), [D]);
  const beta = g.param('beta', randoms(D, rng, 0.5), [D]);
  const w = g.constant(randoms(D, rng), [D]);
  let y = x.add(r).layerNorm(gamma, beta, EPS);
  if (sunk) y = y.slice(1, 0, 1);
  const loss = y.mul(w).tanh().sum([0, 1, 2]);
  const all = { x, gamma, beta };
  const grads = grad(
    loss,
    wrt.map((k) => all[k]),
  );
  return g.build({ loss, ...Object.fromEntries(wrt.map((k, i) => [`d${k}`, grads[i]])) });
}

interface Emitted {
  types: string[];
  nodes: Array<{ opType: string; input: string[]; output: string[] }>;
  out: Record<string, Float32Array>;
}

const rng = new Rng(9);
// An offset mean: the statistics' precision matters (var computed as E[x²] - E[x]² would lose it).
const feeds = { x: randoms(B * T * D, rng, 1, 0.5), r: randoms(B * T * D, rng) };

async function runOnnx(graph: Graph, opts: EmitOptions): Promise<Emitted> {
  const bytes = toOnnx(graph, opts);
  const nodes = decodeModel(bytes).graph!.node as Emitted['nodes'];
  const s = await OnnxSession.create(bytes);
  const raw = await s.runRaw({
    x: { data: feeds.x, shape: [B, T, D] },
    r: { data: feeds.r, shape: [B, T, D] },
  });
  await s.dispose();
  const out = Object.fromEntries(Object.entries(raw).map(([k, t]) => [k, t.data as Float32Array]));
  return { types: nodes.map((n) => n.opType), nodes, out };
}

function reference(graph: Graph): Record<string, Float32Array> {
  const x = tf.tensor(feeds.x, [B, T, D]);
  const r = tf.tensor(feeds.r, [B, T, D]);
  const out = evaluate(graph, { x, r });
  const values = Object.fromEntries(Object.entries(out).map(([k, t]) => [k, t.dataSync() as Float32Array]));
  tf.dispose([x, r, ...Object.values(out)]);
  return values;
}

const count = (types: readonly string[], t: string) => types.filter((u) => u === t).length;
const kinds = (graph: Graph, k: string) => graph.nodes.filter((n) => n.op.kind === k).length;

describe.skipIf(!ort)("LayerNorm's statistics shared with its backward on onnxruntime", () => {
  const before = tf.memory().numTensors;
  afterAll(() => expect(tf.memory().numTensors).toBe(before));

  for (const sunk of [false, true]) {
    const what = sunk ? 'a norm sunk onto a slice' : 'a norm';
    it(`${what}: every layerNorm form gives the interpreter's loss and gradients`, async () => {
      const graph = optimize(lnGraph(sunk));
      const ref = reference(lnGraph(sunk));
      expect(Object.keys(ref).sort()).toEqual(['dbeta', 'dgamma', 'dx', 'loss']);
      for (const layerNorm of ['op', 'decomposed', 'skip'] as const) {
        const { out } = await runOnnx(graph, { layerNorm });
        for (const [k, want] of Object.entries(ref)) {
          expect(relError(out[k], want), `${k} (${layerNorm})`).toBeLessThan(1e-5);
        }
      }
    });
  }

  it("'op': the statistics are outputs of the norm's own LayerNormalization, not recomputed", async () => {
    const graph = optimize(lnGraph(false));
    expect(kinds(graph, 'layerNorm')).toBe(1);
    expect(kinds(graph, 'layerNormStat')).toBe(2);
    const { types, nodes } = await runOnnx(graph, { layerNorm: 'op' });
    expect(count(types, 'LayerNormalization')).toBe(1);
    const ln = nodes.find((n) => n.opType === 'LayerNormalization')!;
    expect(ln.output.length).toBe(3);
    expect(ln.output.every((o) => o !== '')).toBe(true);
    // The two ReduceMean left are the x-gradient's means over the features of dy·gamma and of
    // dy·gamma·xhat; before, two more (mean and variance of x) recomputed the statistics.
    expect(count(types, 'ReduceMean')).toBe(2);
    const sum = ln.input[0];
    expect(nodes.filter((n) => n.opType === 'ReduceMean' && n.input[0] === sum)).toEqual([]);
    expect(count(types, 'Sqrt') + count(types, 'Reciprocal')).toBe(0);
  });

  it("'op': a norm sunk onto a slice leaves the statistics one LayerNormalization of the whole x", async () => {
    const graph = optimize(lnGraph(true));
    // The forward norm reads a slice now; the statistics still read the whole sum.
    const ln = graph.nodes.find((n) => n.op.kind === 'layerNorm')!;
    expect(graph.nodes[ln.inputs[0]].op.kind).toBe('slice');
    expect(kinds(graph, 'layerNormStat')).toBe(2);
    const { types, nodes } = await runOnnx(graph, { layerNorm: 'op' });
    expect(count(types, 'LayerNormalization')).toBe(kinds(graph, 'layerNorm') + 1);
    const own = nodes.filter((n) => n.opType === 'LayerNormalization' && n.output.length === 3);
    expect(own.length).toBe(1);
    expect(count(types, 'ReduceMean')).toBe(2);
    expect(count(types, 'Sqrt') + count(types, 'Reciprocal')).toBe(0);
  });

  it("'decomposed': the norm and its statistics share one mean and one variance", async () => {
    const graph = optimize(lnGraph(false));
    const { types, nodes } = await runOnnx(graph, { layerNorm: 'decomposed' });
    const sum = nodes.find((n) => n.opType === 'Add' && n.input.includes('x') && n.input.includes('r'))!;
    const meansOfX = nodes.filter((n) => n.opType === 'ReduceMean' && n.input[0] === sum.output[0]);
    expect(meansOfX.length).toBe(1);
    // mean, variance, and the two of the x-gradient.
    expect(count(types, 'ReduceMean')).toBe(4);
    expect(count(types, 'Sqrt')).toBe(1);
  });

  it("'skip': a norm whose statistics are read stays a LayerNormalization; one whose are not fuses", async () => {
    const read = await runOnnx(optimize(lnGraph(false)), { layerNorm: 'skip' });
    expect(count(read.types, 'SkipLayerNormalization')).toBe(0);
    expect(count(read.types, 'LayerNormalization')).toBe(1);
    expect(count(read.types, 'ReduceMean')).toBe(2);
    // Beta's gradient reads no statistic: the residual sum and the norm fuse as before.
    const betaOnly = optimize(lnGraph(false, ['beta']));
    expect(kinds(betaOnly, 'layerNormStat')).toBe(0);
    const fused = await runOnnx(betaOnly, { layerNorm: 'skip' });
    expect(count(fused.types, 'SkipLayerNormalization')).toBe(1);
    const ref = reference(lnGraph(false, ['beta']));
    for (const [k, want] of Object.entries(ref)) expect(relError(fused.out[k], want), k).toBeLessThan(1e-5);
  });

  it('statistics read as graph outputs: before the norm, alone, or of a symbolic last axis', async () => {
    const g = new GraphBuilder();
    const x = g.input('x', [sym('N'), T, D]);
    const r = g.input('r', [sym('N'), T, sym('M')]);
    const inv = x.layerNormStat('invStdDev', EPS);
    const y = x.layerNorm(
      g.param('gamma', randoms(D, new Rng(1)), [D]),
      g.param('beta', new Float32Array(D), [D]),
      EPS,
    );
    // r's last axis has no length to write ones of: its statistics are decomposed.
    const graph = g.build({
      inv,
      y,
      inv2: inv,
      mean: r.layerNormStat('mean', EPS),
      rinv: r.layerNormStat('invStdDev'),
    });
    const ref = reference(graph);
    for (const layerNorm of ['op', 'decomposed', 'skip'] as const) {
      const { types, nodes, out } = await runOnnx(graph, { layerNorm });
      for (const [k, want] of Object.entries(ref))
        expect(relError(out[k], want), `${k} (${layerNorm})`).toBeLessThan(1e-5);
      if (layerNorm === 'op') {
        // x's norm hands out InvStdDev alone (no Mean output); r's statistics are two ReduceMean.
        const ln = nodes.filter((n) => n.opType === 'LayerNormalization');
        expect(ln.map((n) => n.output.length)).toEqual([3]);
        expect(ln[0].output[1]).toBe('');
        expect(count(types, 'ReduceMean')).toBe(2);
      }
    }
  });
});
