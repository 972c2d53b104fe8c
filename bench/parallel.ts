// Training-step throughput with and without ParallelGrads: forward + backward + AdamW step, images/s.
// workers = 0 is trainer.ts' plain tf.variableGrads on one thread; workers = 1 splits each batch
// between the main thread and one worker thread. Run: npx tsx bench/parallel.ts [steps]
import { loadavg } from 'node:os';
import { tf } from '../src/tf.js';
import { ready } from '../src/backends/index.js';
import { ViT } from '../src/vit/model.js';
import { PRESETS, type ViTConfig } from '../src/vit/config.js';
import { AdamW } from '../src/train/optimizer.js';
import { ParallelGrads } from '../src/train/parallel.js';

const STEPS = Number(process.argv[2] ?? 12);
const WARMUP = 2;

function batchOf(cfg: ViTConfig, n: number) {
  const pixels = cfg.num_channels * cfg.image_size * cfg.image_size;
  let s = 12345;
  const rand = () => (s = (Math.imul(s, 1664525) + 1013904223) >>> 0) / 2 ** 32;
  const images = new Float32Array(n * pixels).map(() => rand() * 2 - 1);
  const labels = new Int32Array(n).map(() => Math.floor(rand() * cfg.num_labels));
  return { images, labels, size: n };
}

// One step exactly as trainer.ts does it, without clipping.
function plainStep(model: ViT, opt: AdamW, b: ReturnType<typeof batchOf>): number {
  const cfg = model.config;
  const params = model.parameters();
  const nameOf = new Map([...params].map(([name, v]) => [v.name, name]));
  return tf.tidy(() => {
    const x = tf.tensor4d(b.images, [b.size, cfg.num_channels, cfg.image_size, cfg.image_size]);
    const onehot = tf.oneHot(tf.tensor1d(b.labels, 'int32'), cfg.num_labels);
    const { value, grads } = tf.variableGrads(
      () =>
        tf.losses.softmaxCrossEntropy(
          onehot,
          model.forward(x, { training: true, seed: 0 }).logits,
          undefined,
          0.1,
        ) as tf.Scalar,
      [...params.values()],
    );
    opt.step(new Map(Object.entries(grads).map(([k, g]) => [nameOf.get(k)!, g])), 1e-3);
    return value.dataSync()[0];
  });
}

async function parallelStep(pg: ParallelGrads, model: ViT, opt: AdamW, b: ReturnType<typeof batchOf>) {
  const r = await pg.compute(model, b, { labelSmoothing: 0.1, seed: 0 });
  opt.step(r.grads, 1e-3);
  for (const g of r.grads.values()) g.dispose();
  return r.loss;
}

/** Wall seconds and CPU seconds of the whole process (all threads) of one step. */
async function time(step: () => unknown, cpu: number[]): Promise<number> {
  const c0 = process.cpuUsage();
  const t0 = performance.now();
  await step();
  const c = process.cpuUsage(c0);
  cpu.push((c.user + c.system) / 1e6);
  return (performance.now() - t0) / 1000;
}
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

async function main() {
  const backend = await ready();
  const rows: string[] = [];
  const load0 = loadavg()[0];
  for (const [name, batch] of [
    ['tiny', 128],
    ['cifar-tiny', 256],
  ] as const) {
    const cfg = PRESETS[name];
    const b = batchOf(cfg, batch);
    const pg = await ParallelGrads.create(cfg, { workers: 1 });
    const model = ViT.create(cfg, 0);
    const opt = new AdamW(model.parameters(), { weightDecay: 0.05 });
    for (let i = 0; i < WARMUP; i++) {
      plainStep(model, opt, b);
      await parallelStep(pg, model, opt, b);
    }
    // Alternate the two modes step by step so a change in machine load hits both alike.
    const plain: number[] = [];
    const par: number[] = [];
    const local: number[] = [];
    const cpu0: number[] = [];
    const cpu1: number[] = [];
    for (let i = 0; i < STEPS; i++) {
      plain.push(await time(() => plainStep(model, opt, b), cpu0));
      par.push(await time(() => parallelStep(pg, model, opt, b), cpu1));
      local.push(pg.timings.local / 1000);
    }
    const phases = Object.entries(pg.timings)
      .map(([k, v]) => `${k} ${v.toFixed(0)} ms`)
      .join(', ');
    console.error(`${name}: last 2-thread step: ${phases}`);
    await pg.dispose();
    model.dispose();
    opt.dispose?.();
    const ips0 = batch / median(plain);
    const ips1 = batch / median(par);
    rows.push(
      `| ${name} | ${batch} | ${ips0.toFixed(0)} | ${ips1.toFixed(0)} | ${(ips1 / ips0).toFixed(2)}x | ` +
        `${median(cpu0).toFixed(2)} | ${median(cpu1).toFixed(2)} |`,
    );
    console.error(`${name}: plain ${plain.map((t) => t.toFixed(3)).join(' ')}`);
    console.error(`${name}: 2 threads ${par.map((t) => t.toFixed(3)).join(' ')}`);
    console.error(`${name}: main-thread shard ${local.map((t) => t.toFixed(3)).join(' ')}`);
  }
  console.log(
    `backend ${backend}, ${STEPS} timed steps per mode, interleaved (median), load average ${load0.toFixed(2)} -> ${loadavg()[0].toFixed(2)}\n`,
  );
  console.log(
    '| config | batch | workers=0 img/s | workers=1 img/s | speed-up | CPU s/step w=0 | CPU s/step w=1 |',
  );
  console.log('|---|---|---|---|---|---|---|');
  for (const r of rows) console.log(r);
}

await main();
