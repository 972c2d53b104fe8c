// Inference throughput, images/s, every row measured in one run: einvit eager (the tfjs backend that
// ready() picked), einvit compiled (its own graph on onnxruntime), and the peer: onnxruntime running
// PyTorch's ONNX export of the same model (what transformers.js-style tools run). The compiled path
// and the peer are timed in alternating rounds.
//
// Peer folders (config.json, model.safetensors, pytorch.onnx) are looked up in EINVIT_PEERS, then
// test/peers (mnist-tiny, cifar-tiny ship with the repo), then ../shared/peers beside the clone (the
// workplace layout; vit-ti-16 is 45 MB and is not shipped). A missing peer leaves its cells empty.
import { existsSync } from 'node:fs';
import { cpus } from 'node:os';
import { join, resolve } from 'node:path';
import { tf } from '../src/tf.js';
import { ViT } from '../src/vit/model.js';
import { parseConfig, type ViTConfig } from '../src/vit/config.js';
import type { Row, Section } from './index.js';

interface Case {
  name: string;
  /** Peer folder name (also the model einvit loads), or a random-weight config. */
  peer?: string;
  cfg?: ViTConfig;
  batches: number[];
}

// ViT-B/16 as timm's vit_base_patch16_224 (random weights): 35 GFLOP per image.
const VIT_B16 = parseConfig({
  image_size: 224,
  patch_size: 16,
  num_channels: 3,
  hidden_size: 768,
  num_hidden_layers: 12,
  num_attention_heads: 12,
  intermediate_size: 3072,
  hidden_act: 'gelu',
  layer_norm_eps: 1e-12,
  qkv_bias: true,
  num_labels: 1000,
});

const CASES: Case[] = [
  { name: 'vit-ti-16 (224px)', peer: 'vit-ti-16', batches: [1, 8] },
  { name: 'mnist-tiny (28px, the main job)', peer: 'mnist-tiny', batches: [1, 8, 64] },
  { name: 'cifar-tiny (32px)', peer: 'cifar-tiny', batches: [1, 8, 256] },
  { name: 'ViT-B/16 (224px, random weights)', cfg: VIT_B16, batches: [1, 8] },
];

function peerDir(name: string): string | undefined {
  const roots = [process.env.EINVIT_PEERS, 'test/peers', join('..', 'shared', 'peers')];
  for (const root of roots) {
    if (root === undefined) continue;
    const dir = resolve(root, name);
    if (existsSync(join(dir, 'pytorch.onnx'))) return dir;
  }
  return undefined;
}

/**
 * Median seconds of `run` after one warm-up call: at least 3 timed calls and 2 s of timing, fewer
 * when a single call takes longer than 4 s (ViT-B/16 eager at batch 8).
 */
async function medianSeconds(run: () => Promise<void>): Promise<number> {
  const t0 = performance.now();
  await run();
  const warm = (performance.now() - t0) / 1000;
  const times: number[] = [];
  const minRuns = warm > 4 ? 1 : 3;
  let spent = 0;
  while (times.length < minRuns || (spent < 2 && times.length < 50)) {
    const t = performance.now();
    await run();
    const s = (performance.now() - t) / 1000;
    times.push(s);
    spent += s;
  }
  times.sort((a, b) => a - b);
  return times[Math.floor(times.length / 2)]!;
}

/**
 * Median seconds per call of each of `runs`, timed in alternating rounds so that load on a shared
 * machine hits every runner alike. Each round runs every runner for a block of calls (about 50 ms,
 * 1 to 50 calls): onnxruntime's worker threads spin for a while after a run, so single calls in
 * alternation would time each session against the other's spinning threads, which no program with
 * one model sees. At least 5 rounds and 3 s of timing, at most 200 rounds.
 */
async function alternatingMedians(
  runs: Array<() => Promise<void>>,
): Promise<{ medians: number[]; pairedRatio: (i: number, j: number) => number }> {
  const block: number[] = [];
  for (const run of runs) {
    await run(); // warm-up
    const t = performance.now();
    await run();
    block.push(Math.max(1, Math.min(50, Math.round(50 / (performance.now() - t)))));
  }
  const times = runs.map(() => [] as number[]);
  const perRound = runs.map(() => [] as number[]);
  const median = (xs: readonly number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
  let spent = 0;
  for (let round = 0; round < 200 && (round < 5 || spent < 3); round++) {
    for (const [i, run] of runs.entries()) {
      const ts: number[] = [];
      for (let k = 0; k < block[i]; k++) {
        const t = performance.now();
        await run();
        const s = (performance.now() - t) / 1000;
        ts.push(s);
        spent += s;
      }
      times[i].push(...ts);
      perRound[i].push(median(ts));
    }
  }
  return {
    medians: times.map(median),
    // The median over rounds of one round's ratio: blocks milliseconds apart see the same machine
    // speed, which drifts over seconds.
    pairedRatio: (i, j) => median(perRound[i].map((t, r) => t / perRound[j][r]!)),
  };
}

type Ort = typeof import('onnxruntime-node');

async function loadOrt(): Promise<Ort | undefined> {
  try {
    return await import('onnxruntime-node');
  } catch {
    return undefined;
  }
}

/** images/s, rounded to 3 significant figures. */
function rate(batch: number, seconds: number): number {
  return Number((batch / seconds).toPrecision(3));
}

function ratio(a: number | undefined, b: number | undefined): string {
  return a === undefined || b === undefined ? '' : `${(a / b).toFixed(2)}x`;
}

/** The compiled path, where this build of einvit has one (`ViT.compile`). */
interface Compiled {
  forward(x: tf.Tensor): Promise<{ logits: tf.Tensor }> | { logits: tf.Tensor };
  dispose(): void | Promise<void>;
}

async function compileModel(model: ViT): Promise<Compiled | undefined> {
  const compile = (model as unknown as { compile?: (o?: object) => Promise<Compiled> }).compile;
  if (typeof compile !== 'function') return undefined;
  return compile.call(model, {});
}

export const inferenceSection: Section = {
  name: 'inference',
  title: `Inference, images/s (onnxruntime with ${cpus().length} threads; ratios against the peer in this run)`,
  notes: () =>
    'compiled / peer is paired: the median over rounds of one round’s ratio (the two alternate in blocks of about 50 ms; the machine’s speed drifts over seconds); the other ratios divide medians.',
  async run(): Promise<Row[]> {
    const ort = await loadOrt();
    const rows: Row[] = [];
    for (const c of CASES) {
      const dir = c.peer === undefined ? undefined : peerDir(c.peer);
      if (c.peer !== undefined && dir === undefined) {
        rows.push({ model: c.name, batch: '', note: `peer folder ${c.peer} not found` });
        continue;
      }
      const model = dir !== undefined ? await ViT.fromPretrained(dir) : ViT.create(c.cfg!, 0);
      const cfg = model.config;
      const compiled = await compileModel(model);
      const session =
        ort && dir !== undefined
          ? await ort.InferenceSession.create(join(dir, 'pytorch.onnx'), {
              intraOpNumThreads: cpus().length,
              graphOptimizationLevel: 'all',
            })
          : undefined;
      try {
        for (const batch of c.batches) {
          const shape = [batch, cfg.num_channels, cfg.image_size, cfg.image_size];
          const x = tf.randomNormal(shape, 0, 1, 'float32', 7);
          const eager = rate(
            batch,
            await medianSeconds(async () => {
              const { logits } = model.forward(x);
              await logits.data();
              logits.dispose();
            }),
          );
          // The compiled path and the peer alternate round by round: their ratio is the figure.
          const runs: Array<() => Promise<void>> = [];
          if (compiled) {
            runs.push(async () => {
              const { logits } = await compiled.forward(x);
              await logits.data();
              logits.dispose();
            });
          }
          if (session && ort) {
            const feed = { [session.inputNames[0]!]: new ort.Tensor('float32', x.dataSync(), shape) };
            runs.push(async () => {
              const out = await session.run(feed);
              for (const t of Object.values(out)) t.dispose();
            });
          }
          const timed = runs.length ? await alternatingMedians(runs) : undefined;
          const medians = timed?.medians ?? [];
          const fast = compiled ? rate(batch, medians[0]!) : undefined;
          const peer = session && ort ? rate(batch, medians[medians.length - 1]!) : undefined;
          // compiled / peer in images/s: the peer's time over the compiled path's, paired by round.
          const paired = fast !== undefined && peer !== undefined ? 1 / timed!.pairedRatio(0, 1) : undefined;
          x.dispose();
          rows.push({
            model: c.name,
            batch,
            'einvit eager (tfjs)': eager,
            'einvit compiled (onnxruntime)': fast ?? '',
            'peer: PyTorch export on onnxruntime': peer ?? '',
            'eager / peer': ratio(eager, peer),
            'compiled / peer': paired === undefined ? '' : `${paired.toFixed(2)}x`,
            'compiled / eager': ratio(fast, eager),
          });
        }
      } finally {
        await compiled?.dispose();
        await session?.release();
        model.dispose();
      }
    }
    return rows;
  },
};
