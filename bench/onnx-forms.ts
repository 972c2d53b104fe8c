// Which ONNX forms of attention, LayerNorm and GELU run fastest on onnxruntime-node (CPU)?
// Builds ViT encoders with random weights in the IR, emits each form, times forward passes.
// Run: npx tsx bench/onnx-forms.ts [ti|mnist|b]
import { readFileSync } from 'node:fs';
import { GraphBuilder, sym, type Sym } from '../src/ir/index.js';
import { optimize } from '../src/ir/passes.js';
import { toOnnx, type EmitOptions } from '../src/onnx/emit.js';
import { OnnxSession } from '../src/onnx/runtime.js';

interface Cfg {
  name: string;
  tokens: number;
  dim: number;
  heads: number;
  mlp: number;
  layers: number;
  batch: number;
}
const CONFIGS: Record<string, Cfg> = {
  ti: {
    name: 'ViT-Ti/16 encoder (197 tokens)',
    tokens: 197,
    dim: 192,
    heads: 3,
    mlp: 768,
    layers: 12,
    batch: 8,
  },
  mnist: {
    name: 'mnist-tiny encoder (17 tokens)',
    tokens: 17,
    dim: 96,
    heads: 4,
    mlp: 192,
    layers: 4,
    batch: 64,
  },
  cifar: {
    name: 'cifar-tiny encoder (65 tokens)',
    tokens: 65,
    dim: 48,
    heads: 4,
    mlp: 192,
    layers: 4,
    batch: 256,
  },
  b: {
    name: 'ViT-B/16 encoder (197 tokens)',
    tokens: 197,
    dim: 768,
    heads: 12,
    mlp: 3072,
    layers: 12,
    batch: 1,
  },
};

let seed = 1;
function rand(n: number, scale: number): Float32Array {
  const a = new Float32Array(n);
  for (let i = 0; i < n; i++) {
    seed = (seed * 1103515245 + 12345) >>> 0;
    a[i] = ((seed / 2 ** 32) * 2 - 1) * scale;
  }
  return a;
}

function encoder(c: Cfg, attention: 'node' | 'einsum', sinkSlices = true) {
  const g = new GraphBuilder();
  const D = c.dim;
  const H = c.heads;
  const dh = D / H;
  let x: Sym = g.input('x', [sym('N'), c.tokens, D]);
  const p = (name: string, shape: number[]) =>
    g.param(
      name,
      rand(
        shape.reduce((a, b) => a * b, 1),
        0.05,
      ),
      shape,
    );
  const ones = (name: string) => g.param(name, new Float32Array(D).fill(1), [D]);
  for (let l = 0; l < c.layers; l++) {
    const h = x.layerNorm(ones(`b${l}.ln1.g`), p(`b${l}.ln1.b`, [D]), 1e-6);
    const qkv = h.matMul(p(`b${l}.qkv.w`, [D, 3 * D])).add(p(`b${l}.qkv.b`, [3 * D]));
    const split = qkv.reshape([sym('N'), c.tokens, 3, H, dh]).transpose([2, 0, 3, 1, 4]);
    const part = (i: number) => split.slice(0, i, i + 1).reshape([sym('N'), H, c.tokens, dh]);
    const [q, k, v] = [part(0), part(1), part(2)];
    let o: Sym;
    if (attention === 'node') o = g.attention(q, k, v, 1 / Math.sqrt(dh));
    else
      o = q
        .mul(1 / Math.sqrt(dh))
        .matMul(k.transpose([0, 1, 3, 2]))
        .softmax(-1)
        .matMul(v);
    const merged = o.transpose([0, 2, 1, 3]).reshape([sym('N'), c.tokens, D]);
    x = x.add(merged.matMul(p(`b${l}.proj.w`, [D, D])).add(p(`b${l}.proj.b`, [D])));
    const h2 = x.layerNorm(ones(`b${l}.ln2.g`), p(`b${l}.ln2.b`, [D]), 1e-6);
    const m = h2
      .matMul(p(`b${l}.fc1.w`, [D, c.mlp]))
      .add(p(`b${l}.fc1.b`, [c.mlp]))
      .gelu();
    x = x.add(m.matMul(p(`b${l}.fc2.w`, [c.mlp, D])).add(p(`b${l}.fc2.b`, [D])));
  }
  return optimize(g.build({ y: x }), { sinkSlices });
}

const which = process.argv[2] ?? 'mnist';
const c = CONFIGS[which];
const reps = Number(process.argv[3] ?? 15);
const peer = process.argv[4]; // optional: a PyTorch export of the same config, timed in the same rounds
// The passes split the packed q/k/v product into three (sinkSlices); 'fused' Attention needs it packed.
const variants: Array<[string, 'node' | 'einsum', EmitOptions, boolean?]> = [
  ['default: attention MatMul+Softmax, LayerNormalization, GELU as Erf subgraph', 'node', {}],
  ['attention as com.microsoft MultiHeadAttention', 'node', { attention: 'mha' }],
  ['attention as com.microsoft Attention (packed q/k/v kept)', 'node', { attention: 'fused' }, false],
  ['default forms, packed q/k/v kept (one MatMul + Split)', 'node', {}, false],
  ['attention as traced einsum-style ops', 'einsum', {}],
  ['LayerNorm decomposed (ReduceMean/Sub/Pow/Sqrt/Div)', 'node', { layerNorm: 'decomposed' }],
  ['LayerNorm as com.microsoft SkipLayerNormalization', 'node', { layerNorm: 'skip' }],
  ['GELU as com.microsoft Gelu', 'node', { gelu: 'contrib' }],
];
// Round-robin: every round runs each variant once, so machine load hits all of them alike.
const runs: Array<{ label: string; run: () => Promise<unknown>; ts: number[]; batch: number }> = [];
const x = { data: rand(c.batch * c.tokens * c.dim, 1), shape: [c.batch, c.tokens, c.dim] };
for (const [label, att, opts, sink] of variants) {
  const s = await OnnxSession.create(toOnnx(encoder(c, att, sink ?? true), opts));
  runs.push({ label, run: () => s.runRaw({ x }), ts: [], batch: c.batch });
}
if (peer) {
  const s = await OnnxSession.create(new Uint8Array(readFileSync(peer)));
  const [spec] = s.inputs;
  const dims = spec.dims.map((d) => (typeof d === 'number' ? d : c.batch));
  const px = {
    data: rand(
      dims.reduce((a, b) => a * b, 1),
      1,
    ),
    shape: dims,
  };
  runs.push({
    label: `peer ${peer.split('/').slice(-2).join('/')} (whole model)`,
    run: () => s.runRaw({ [spec.name]: px }),
    ts: [],
    batch: c.batch,
  });
}
for (const r of runs) for (let i = 0; i < 3; i++) await r.run();
for (let i = 0; i < reps; i++) {
  for (const r of runs) {
    const t0 = performance.now();
    await r.run();
    r.ts.push(performance.now() - t0);
  }
}
console.log(
  `${c.name}, ${c.layers} layers, D ${c.dim}, batch ${c.batch}; median of ${reps} round-robin forwards`,
);
for (const r of runs) {
  const ms = r.ts.sort((a, b) => a - b)[r.ts.length >> 1];
  console.log(
    `${r.label.padEnd(80)} ${ms.toFixed(2).padStart(8)} ms  ${((r.batch / ms) * 1000).toFixed(1)} img/s`,
  );
}
