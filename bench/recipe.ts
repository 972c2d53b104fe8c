// Recipe search for the main job (MNIST, embedded 8,000 / 2,000 split): trains one configuration with
// the whole training step as one graph on onnxruntime (src/train-graph/step.ts), feeding batches from
// the project's own loader, batching, augmentation and schedule (src/train), and evaluates the test
// split after every epoch with the forward graph on onnxruntime (parameters fed as inputs). Prints one
// line per epoch and appends the trial (config, recipe, per-epoch test accuracy, img/s) as one JSON
// line to the results file.
//
//   npx tsx bench/recipe.ts [--flag value ...]
//
// Flags (defaults: the tiny preset and the old 15-epoch recipe):
//   --name t1            trial name in the results file
//   --patch 7 --hidden 96 --depth 4 --heads 4 --mlp 192     model (mlp = intermediate_size)
//   --epochs 15 --batch 64 --lr 2e-3 --pct 0.2              one-cycle schedule as the trainer uses it
//   --wd 0.05 --ls 0.1 --clip 1                             AdamW decay, label smoothing, grad clip
//   --shift 2 --rotate 0 --scale 0                          augmentation (pixels, degrees, zoom fraction)
//   --seed 0 --threads 2
//   --results bench/recipe-results.jsonl
//   --bench 40           only time 40 training steps (after 3 warm-up steps) and print img/s
//
// img/s counts training steps only (not evaluation); `wall_s` is the whole trial including the
// graph build and compile. The machine may be shared: compare img/s only within one run.
import { appendFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { tf } from '../src/tf.js';
import { compileGraph, loadOnnxruntime } from '../src/onnx/index.js';
import { rebuild } from '../src/ir/builder.js';
import { StepState, trainStepGraph } from '../src/train-graph/step.js';
import { ViT } from '../src/vit/model.js';
import { parseConfig, PRESETS } from '../src/vit/config.js';
import { mapParams } from '../src/vit/params.js';
import { traceViT, PIXEL_INPUT } from '../src/vit/trace.js';
import { loadMnist } from '../src/train/mnist.js';
import { batchCount, batches } from '../src/train/batches.js';
import { augmentFor } from '../src/train/augment.js';
import { oneCycle } from '../src/train/schedule.js';
import { Rng } from '../src/train/random.js';

const { values: a } = parseArgs({
  options: Object.fromEntries(
    [
      'name',
      'patch',
      'hidden',
      'depth',
      'heads',
      'mlp',
      'epochs',
      'batch',
      'lr',
      'pct',
      'wd',
      'ls',
      'clip',
      'shift',
      'rotate',
      'scale',
      'seed',
      'threads',
      'results',
      'bench',
    ].map((k) => [k, { type: 'string' as const }]),
  ),
});
const num = (k: string, d: number): number => (a[k] === undefined ? d : Number(a[k]));
const hidden = num('hidden', 96);
const cfg = parseConfig({
  ...PRESETS.tiny,
  patch_size: num('patch', 7),
  hidden_size: hidden,
  num_hidden_layers: num('depth', 4),
  num_attention_heads: num('heads', 4),
  intermediate_size: num('mlp', 2 * hidden),
});
const r = {
  epochs: num('epochs', 15),
  batchSize: num('batch', 64),
  lr: num('lr', 2e-3),
  pctStart: num('pct', 0.2),
  weightDecay: num('wd', 0.05),
  labelSmoothing: num('ls', 0.1),
  clip: num('clip', 1),
  shift: num('shift', 2),
  rotate: num('rotate', 0),
  scale: num('scale', 0),
};
const seed = num('seed', 0);
const threads = num('threads', 2);
const name = (a.name as string | undefined) ?? 'trial';
const resultsFile = (a.results as string | undefined) ?? 'bench/recipe-results.jsonl';

const wall0 = performance.now();
if (!(await loadOnnxruntime())) throw new Error('onnxruntime-node is not available');
await tf.setBackend('cpu');
const data = loadMnist();

// The same initial parameters as the trainer's `ViT.create(cfg, seed)`.
const model = ViT.create(cfg, seed);
const tree = mapParams(cfg, model.params, (v) => ({
  shape: [...v.shape],
  data: v.dataSync() as Float32Array,
}));
model.dispose();
const forward = traceViT(cfg, tree);
const step = trainStepGraph(forward, {
  weightDecay: r.weightDecay,
  labelSmoothing: r.labelSmoothing,
  clip: r.clip,
});
const program = await compileGraph(step.graph, { threads });
// Evaluation: the forward graph with its parameters as inputs, fed the step state's current values.
const { g: eg, syms } = rebuild(forward, (node, b) =>
  node.op.kind === 'param' && node.op.type.dtype === 'float32'
    ? b.input(node.op.name, node.op.type.shape)
    : undefined,
);
const logitsId = forward.outputs.find((o) => o.name === 'logits')!.id;
const evalProgram = await compileGraph(eg.build({ logits: syms[logitsId] }), { threads });
const state = new StepState(step);
const paramCount = step.params.reduce((s, p) => s + p.initial.length, 0);
console.log(
  `${name}: patch ${cfg.patch_size} hidden ${cfg.hidden_size} depth ${cfg.num_hidden_layers} heads ${cfg.num_attention_heads} ` +
    `mlp ${cfg.intermediate_size} (${paramCount} params); ${JSON.stringify(r)} seed ${seed}; ` +
    `compiled in ${((performance.now() - wall0) / 1000).toFixed(1)} s`,
);

async function testAccuracy(): Promise<number> {
  const ds = data.test;
  const feeds: Record<string, { data: Float32Array; shape: readonly number[] }> = {};
  for (const p of step.params) feeds[p.name] = { data: state.values.get(p.name)!, shape: p.shape };
  let correct = 0;
  for (const b of batches(ds, { batchSize: 500, shuffle: false })) {
    const out = await evalProgram.runRaw({
      ...feeds,
      [PIXEL_INPUT]: { data: b.images, shape: [b.size, ds.channels, ds.height, ds.width] },
    });
    const logits = out.logits.data as Float32Array;
    const k = ds.numClasses;
    for (let i = 0; i < b.size; i++) {
      let best = 0;
      for (let c = 1; c < k; c++) if (logits[i * k + c] > logits[i * k + best]) best = c;
      if (best === b.labels[i]) correct++;
    }
  }
  return correct / ds.count;
}

const train = data.train;
if (a.bench !== undefined) {
  const n = num('bench', 40);
  const [b] = batches(train, { batchSize: r.batchSize, shuffle: true, rng: new Rng(seed) });
  const times: number[] = [];
  for (let i = 0; i < n + 3; i++) {
    const t = performance.now();
    const raw = await program.runRaw({
      [PIXEL_INPUT]: { data: b.images, shape: [b.size, train.channels, train.height, train.width] },
      ...state.feeds(b.labels, 1e-4),
    });
    state.accept(Object.fromEntries(Object.entries(raw).map(([k, t]) => [k, t.data as Float32Array])));
    if (i >= 3) times.push(performance.now() - t);
  }
  times.sort((x, y) => x - y);
  const median = times[Math.floor(times.length / 2)];
  console.log(
    `${name}: batch ${r.batchSize}, ${n} steps: median ${median.toFixed(1)} ms (${Math.round((r.batchSize / median) * 1000)} img/s), ` +
      `best ${times[0].toFixed(1)} ms (${Math.round((r.batchSize / times[0]) * 1000)} img/s)`,
  );
  await program.dispose();
  await evalProgram.dispose();
  process.exit(0);
}
const perEpoch = batchCount(train.count, r.batchSize);
const schedule = oneCycle({
  maxLr: r.lr,
  totalSteps: perEpoch * r.epochs,
  pctStart: r.pctStart,
  divFactor: 25,
  finalDivFactor: 1e4,
});
const augment = augmentFor(data, { pad: r.shift, rotate: r.rotate, scale: r.scale });
const accs: number[] = [];
let trainSeconds = 0;
let seen = 0;
for (let epoch = 1; epoch <= r.epochs; epoch++) {
  let loss = 0;
  let hits = 0;
  let n = 0;
  const t0 = performance.now();
  // The trainer's per-epoch rng (epochRng in trainer.ts).
  for (const b of batches(train, {
    batchSize: r.batchSize,
    shuffle: true,
    rng: new Rng(seed * 1_000_003 + epoch),
    augment,
  })) {
    const raw = await program.runRaw({
      [PIXEL_INPUT]: { data: b.images, shape: [b.size, train.channels, train.height, train.width] },
      ...state.feeds(b.labels, schedule(state.count)),
    });
    const o = state.accept(
      Object.fromEntries(Object.entries(raw).map(([k, t]) => [k, t.data as Float32Array])),
    );
    loss += o.loss * b.size;
    hits += o.correct;
    n += b.size;
  }
  const dt = (performance.now() - t0) / 1000;
  trainSeconds += dt;
  seen += n;
  const acc = await testAccuracy();
  accs.push(acc);
  console.log(
    `${name} epoch ${epoch}/${r.epochs}  train loss ${(loss / n).toFixed(4)} acc ${((100 * hits) / n).toFixed(2)}%  ` +
      `test acc ${(100 * acc).toFixed(2)}%  ${Math.round(n / dt)} img/s  ${((performance.now() - wall0) / 1000).toFixed(0)} s`,
  );
}
const row = {
  name,
  model: {
    patch: cfg.patch_size,
    hidden: cfg.hidden_size,
    depth: cfg.num_hidden_layers,
    heads: cfg.num_attention_heads,
    mlp: cfg.intermediate_size,
    params: paramCount,
  },
  recipe: r,
  seed,
  threads,
  final: accs.at(-1),
  best: Math.max(...accs),
  accs: accs.map((x) => Math.round(x * 10000) / 10000),
  img_per_s: Math.round(seen / trainSeconds),
  wall_s: Math.round((performance.now() - wall0) / 1000),
  date: new Date().toISOString(),
};
appendFileSync(resultsFile, JSON.stringify(row) + '\n');
console.log(
  `${name}: final ${(100 * row.final!).toFixed(2)}% best ${(100 * row.best).toFixed(2)}%  ${row.img_per_s} img/s  wall ${row.wall_s} s`,
);
await program.dispose();
await evalProgram.dispose();
