import { afterAll, describe, expect, it } from 'vitest';
import { tf } from '../../src/tf.js';
import { GraphBuilder, optimize, sym, type Graph, type Sym } from '../../src/ir/index.js';
import { toOnnx, type EmitOptions } from '../../src/onnx/emit.js';
import { decodeModel } from '../../src/onnx/proto.js';
import { OnnxSession } from '../../src/onnx/runtime.js';
import { Rng } from '../../src/train/random.js';

await tf.setBackend('cpu');

/** One pre-norm encoder block with a packed q/k/v projection, as the ViT trace records it. */
function block(): Graph {
  const rng = new Rng(5);
  const g = new GraphBuilder();
  const p = (name: string, shape: number[]) =>
    g.param(
      name,
      Float32Array.from({ length: shape.reduce((a, b) => a * b, 1) }, () => rng.nextFloat() - 0.5),
      shape,
    );
  const [T, D, H] = [5, 8, 2];
  const x = g.input('x', [sym('N'), T, D]);
  const h = x.layerNorm(p('ln1.g', [D]), p('ln1.b', [D]));
  const qkv = h.matMul(p('qkv.w', [3 * D, D]).transpose([1, 0])).add(p('qkv.b', [3 * D]));
  const heads = (i: number) =>
    qkv
      .slice(2, i * D, (i + 1) * D)
      .reshape([sym('N'), T, H, D / H])
      .transpose([0, 2, 1, 3]);
  const a = g
    .attention(heads(0), heads(1), heads(2), 0.5)
    .transpose([0, 2, 1, 3])
    .reshape([sym('N'), T, D]);
  const x2 = x.add(a.matMul(p('proj.w', [D, D]).transpose([1, 0])).add(p('proj.b', [D])));
  const m = x2
    .layerNorm(p('ln2.g', [D]), p('ln2.b', [D]))
    .matMul(p('fc.w', [D, D]).transpose([1, 0]))
    .gelu();
  const y: Sym = x2.add(m).layerNorm(p('ln3.g', [D]), p('ln3.b', [D]));
  return g.build({ y, cls: y.slice(1, 0, 1) });
}

function opTypes(bytes: Uint8Array): string[] {
  return (decodeModel(bytes).graph!.node as Array<{ opType: string }>).map((n) => n.opType);
}

describe('ONNX forms of attention and LayerNorm', () => {
  const before = tf.memory().numTensors;
  afterAll(() => expect(tf.memory().numTensors).toBe(before));
  const x = { data: Float32Array.from({ length: 3 * 5 * 8 }, (_, i) => Math.sin(i)), shape: [3, 5, 8] };

  async function run(g: Graph, opts: EmitOptions) {
    const bytes = toOnnx(g, opts);
    const s = await OnnxSession.create(bytes);
    const out = await s.runRaw({ x });
    await s.dispose();
    return { types: opTypes(bytes), y: out.y.data as Float32Array, cls: out.cls.data as Float32Array };
  }

  it('writes parameter transposes and slices as initializers and no dead nodes', async () => {
    const { types } = await run(optimize(block()), {});
    // Weights reach MatMul pre-transposed: every Transpose left moves activations (heads).
    const model = decodeModel(toOnnx(optimize(block())));
    const inits = new Set((model.graph!.initializer as Array<{ name: string }>).map((t) => t.name));
    const nodes = model.graph!.node as Array<{ opType: string; input: string[]; output: string[] }>;
    for (const n of nodes)
      if (n.opType === 'Transpose' || n.opType === 'Slice') expect(inits.has(n.input[0])).toBe(false);
    // Every node output is read by a node or is a graph output.
    const read = new Set([...nodes.flatMap((n) => n.input), 'y', 'cls']);
    for (const n of nodes) expect(n.output.some((o) => read.has(o))).toBe(true);
    expect(types.filter((t) => t === 'MatMul').length).toBeGreaterThan(0);
  });

  it('every form gives the numbers of the default one', async () => {
    const sunk = optimize(block());
    const packed = optimize(block(), { sinkSlices: false });
    const ref = await run(sunk, {});
    const forms: Array<[Graph, EmitOptions, string]> = [
      [sunk, { attention: 'mha' }, 'MultiHeadAttention'],
      [packed, { attention: 'fused' }, 'Attention'],
      [packed, { attention: 'mha', layerNorm: 'skip' }, 'SkipLayerNormalization'],
      [sunk, { layerNorm: 'decomposed', gelu: 'contrib' }, 'ReduceMean'],
      [sunk, { linear: 'gemm' }, 'Gemm'],
    ];
    for (const [g, opts, op] of forms) {
      const got = await run(g, opts);
      expect(got.types).toContain(op);
      for (const [a, b] of [
        [got.y, ref.y],
        [got.cls, ref.cls],
      ]) {
        expect(a.length).toBe(b.length);
        for (let i = 0; i < a.length; i++) expect(Math.abs(a[i] - b[i])).toBeLessThan(1e-5);
      }
    }
  });

  it("linear: 'gemm' turns each biased product into one Gemm and leaves no MatMul behind it", async () => {
    const types = opTypes(toOnnx(optimize(block()), { linear: 'gemm' }));
    // q, k, v, proj: biased (Gemm); fc: no bias, and the attention products: MatMul.
    expect(types.filter((t) => t === 'Gemm').length).toBe(4);
    expect(types.filter((t) => t === 'MatMul').length).toBe(3);
  });

  it('cuts disjoint slices of one tensor with one Split; overlapping ones stay Slice nodes', async () => {
    const g = new GraphBuilder();
    const flat = g.input('flat', [20]);
    // Three pieces with gaps (0:3, 5:9, 9:14) and one overlapping prefix (0:9, as a step's decay).
    const a = flat.slice(0, 0, 3).sum([0]);
    const b = flat.slice(0, 5, 9).mul(2).sum([0]);
    const c = flat.slice(0, 9, 14).exp().sum([0]);
    const d = flat.slice(0, 0, 9).sum([0]);
    const graph = g.build({ y: a.add(b).add(c).add(d) });
    const bytes = toOnnx(graph);
    const types = opTypes(bytes);
    expect(types.filter((t) => t === 'Split').length).toBe(1);
    expect(types.filter((t) => t === 'Slice').length).toBe(1);
    const data = Float32Array.from({ length: 20 }, (_, i) => Math.cos(i));
    const s = await OnnxSession.create(bytes);
    const out = await s.runRaw({ flat: { data, shape: [20] } });
    await s.dispose();
    const sum = (from: number, to: number, f = (v: number) => v) =>
      Array.from(data.subarray(from, to), f).reduce((p, q) => p + q, 0);
    const want = sum(0, 3) + 2 * sum(5, 9) + sum(9, 14, Math.exp) + sum(0, 9);
    expect((out.y.data as Float32Array)[0]).toBeCloseTo(want, 5);
  });
});
