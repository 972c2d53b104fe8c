// One training step, timed side by side in one process: einvit's whole step as one graph on
// onnxruntime (forward, loss, backward, clipping, AdamW; parameters and moments fed and swapped on
// the host), and the yardstick: PyTorch's forward + backward graph for the same model and batch
// (`pytorch-train-step.onnx`, no clipping and no optimizer update) with random parameters.
//
//   npx tsx bench/train-step.ts [mnist-tiny|cifar-tiny] [rounds]     (THREADS=n to pin onnxruntime threads)
//
// The yardstick is looked up in EINVIT_PEERS, then ../shared/peers beside the clone. Rounds alternate
// the two engines; the median and the best round are printed (the machine may be shared: noisy).
import { existsSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { join, resolve } from 'node:path';
import { tf } from '../src/tf.js';
import { compileGraph, loadOnnxruntime, type EmitOptions } from '../src/onnx/index.js';
import { StepState, trainStepGraph } from '../src/train-graph/step.js';
import { ViT } from '../src/vit/model.js';
import { PRESETS } from '../src/vit/config.js';
import { mapParams } from '../src/vit/params.js';
import { traceViT } from '../src/vit/trace.js';

const config = (process.argv[2] ?? 'mnist-tiny') as 'mnist-tiny' | 'cifar-tiny';
const rounds = Number(process.argv[3] ?? 20);
const cfg = config === 'mnist-tiny' ? PRESETS.tiny : PRESETS['cifar-tiny'];
const batch = config === 'mnist-tiny' ? 64 : 256;
const threads = Number(process.env.THREADS ?? availableParallelism());

const ort = await loadOnnxruntime();
if (!ort) throw new Error('onnxruntime-node is not available');
await tf.setBackend('cpu');

function yardstickPath(): string | undefined {
  for (const root of [process.env.EINVIT_PEERS, join('..', 'shared', 'peers')]) {
    if (root === undefined) continue;
    const p = resolve(root, config, 'pytorch-train-step.onnx');
    if (existsSync(p)) return p;
  }
  return undefined;
}

function random(n: number, scale: number, seed: number): Float32Array {
  let s = seed >>> 0;
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    out[i] = (s / 4294967296 - 0.5) * 2 * scale;
  }
  return out;
}

const pixels = random(batch * cfg.num_channels * cfg.image_size * cfg.image_size, 1, 1);
const pixelShape = [batch, cfg.num_channels, cfg.image_size, cfg.image_size];
const labels = Int32Array.from({ length: batch }, (_, i) => (i * 7) % cfg.num_labels);

/** einvit: trace, build the step, compile; returns a step function that swaps buffers like a host loop. */
async function einvitStep(emit: EmitOptions) {
  const model = ViT.create(cfg, 0);
  const tree = mapParams(cfg, model.params, (v) => ({
    shape: [...v.shape],
    data: v.dataSync() as Float32Array,
  }));
  const t0 = performance.now();
  const step = trainStepGraph(traceViT(cfg, tree), { weightDecay: 0.05 });
  const program = await compileGraph(step.graph, { threads, ...emit });
  const compileSeconds = (performance.now() - t0) / 1000;
  model.dispose();
  const state = new StepState(step);
  return {
    compileSeconds,
    nodes: program.graph.nodes.length,
    run: async () => {
      const raw = await program.runRaw({
        pixel_values: { data: pixels, shape: pixelShape },
        ...state.feeds(labels, 1e-3),
      });
      state.accept(Object.fromEntries(Object.entries(raw).map(([k, t]) => [k, t.data as Float32Array])));
    },
    dispose: () => program.dispose(),
  };
}

/** The yardstick with random parameters of the shapes it declares. */
async function yardstickStep(path: string) {
  const session = await ort!.InferenceSession.create(path, {
    intraOpNumThreads: threads,
    interOpNumThreads: 1,
    executionMode: 'sequential',
    graphOptimizationLevel: 'all',
  });
  const meta = session.inputMetadata as unknown as Array<{
    name: string;
    isTensor: boolean;
    shape: Array<number | string>;
  }>;
  const feeds: Record<string, import('onnxruntime-node').Tensor> = {};
  meta.forEach((m, i) => {
    const dims = m.shape.map((d) => (typeof d === 'number' ? d : batch));
    const n = dims.reduce((a, b) => a * b, 1);
    if (m.name === 'x') feeds.x = new ort!.Tensor('float32', pixels, pixelShape);
    else if (m.name === 'y_onehot') {
      const y = new Float32Array(batch * cfg.num_labels);
      labels.forEach((l, k) => (y[k * cfg.num_labels + l] = 1));
      feeds[m.name] = new ort!.Tensor('float32', y, [batch, cfg.num_labels]);
    } else if (m.name === 'tangent') feeds[m.name] = new ort!.Tensor('float32', Float32Array.of(1), dims);
    else feeds[m.name] = new ort!.Tensor('float32', random(n, 0.05, 100 + i), dims);
  });
  return {
    run: async () => {
      const out = await session.run(feeds);
      for (const t of Object.values(out)) t.dispose();
    },
    dispose: () => session.release(),
  };
}

const path = yardstickPath();
const forms: Array<[string, EmitOptions]> = [
  ['default forms', {}],
  ['attention mha', { attention: 'mha' }],
];
const engines: Array<{ name: string; run: () => Promise<void>; dispose: () => Promise<void> }> = [];
for (const [name, emit] of forms) {
  const e = await einvitStep(emit);
  console.log(
    `einvit (${name}): step graph built and compiled in ${e.compileSeconds.toFixed(1)} s, ${e.nodes} IR nodes`,
  );
  engines.push({ name: `einvit whole step, onnxruntime (${name})`, run: e.run, dispose: e.dispose });
}
if (path)
  engines.push({ name: 'PyTorch forward+backward graph, onnxruntime', ...(await yardstickStep(path)) });
else console.log(`no ${config}/pytorch-train-step.onnx found (set EINVIT_PEERS)`);

const times = engines.map(() => [] as number[]);
for (const e of engines) for (let i = 0; i < 3; i++) await e.run(); // warm-up
for (let r = 0; r < rounds; r++) {
  for (const [i, e] of engines.entries()) {
    const t = performance.now();
    await e.run();
    times[i].push(performance.now() - t);
  }
}
console.log(
  `${config}, batch ${batch}, ${threads} threads, ${rounds} alternating rounds (ms per step; img/s at the median)`,
);
for (const [i, e] of engines.entries()) {
  const s = [...times[i]].sort((a, b) => a - b);
  const median = s[Math.floor(s.length / 2)];
  console.log(
    `  ${e.name.padEnd(52)} median ${median.toFixed(1).padStart(7)}  best ${s[0].toFixed(1).padStart(7)}  ${Math.round((batch / median) * 1000)} img/s`,
  );
  await e.dispose();
}
