// Training throughput, one table, every row in one run, for mnist-tiny (batch 64) and cifar-tiny
// (batch 256), with the recipe's step (label smoothing 0.1, clip 1, AdamW, weight decay 0.05):
//
// - einvit, onnxruntime engine: the trainer's OnnxEngine (the whole step as one graph: forward, loss,
//   backward, clipping, AdamW; parameters and moments fed and swapped on the host);
// - einvit, tfjs engine: the eager step the trainer runs (trainer.ts trainStep: batchGradients,
//   clipByGlobalNorm, AdamW) on the current tfjs backend, main thread;
// - the yardstick: PyTorch's forward + backward graph for the same model and batch
//   (test/peers/<config>/pytorch-train-step.onnx, see bench/yardstick.ts) on onnxruntime, fed the same
//   parameters. It neither clips nor updates: einvit's whole step does more work.
//
// The three engines run in alternating rounds (the machine may be shared), so each row's median and best
// are taken over the same minutes; each onnxruntime engine runs a block of steps per round.
// `npm run bench -- train --forms` adds the step emitted with ONNX's fused attention form
// (`attention: 'mha'`) for comparison with the default.
//
//   npm run bench -- train            (BENCH_TRAIN_ROUNDS=n to change the rounds, THREADS=n for onnxruntime)
import { availableParallelism } from 'node:os';
import { tf } from '../src/tf.js';
import { loadOnnxruntime, type EmitOptions } from '../src/onnx/index.js';
import { OnnxEngine } from '../src/train/engine-onnx.js';
import { AdamW } from '../src/train/optimizer.js';
import { RECIPES, trainStep } from '../src/train/trainer.js';
import { Rng } from '../src/train/random.js';
import { ViT } from '../src/vit/model.js';
import type { TensorData } from '../src/vit/safetensors.js';
import { openYardstick, YARDSTICK_CONFIGS, type YardstickConfig } from './yardstick.js';
import type { Row, Section } from './index.js';

/** Per config: alternating rounds (cifar-tiny's tfjs step takes seconds). */
const ROUNDS: Record<YardstickConfig, number> = { 'mnist-tiny': 15, 'cifar-tiny': 6 };
/** Steps in a row per round for each onnxruntime engine. */
const ORT_BLOCK = 4;
/** Idle time before each block (longer than onnxruntime's worker threads spin after a run). */
const BLOCK_PAUSE_MS = 30;

interface Engine {
  readonly name: string;
  /** Seconds spent building the step (graph, compile, session) before the first call. */
  readonly setupSeconds: number;
  run(): Promise<void>;
  dispose(): Promise<void>;
}

function median(xs: readonly number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
}

async function timed<T>(make: () => Promise<T>): Promise<[T, number]> {
  const t0 = performance.now();
  const v = await make();
  return [v, (performance.now() - t0) / 1000];
}

/** Every engine for one config, on the same parameters, pixels and labels. */
async function engines(config: YardstickConfig, threads: number, forms: boolean): Promise<Engine[]> {
  const { cfg, batch } = YARDSTICK_CONFIGS[config];
  const recipe = RECIPES[config === 'mnist-tiny' ? 'tiny' : 'cifar-tiny'];
  const init = ViT.create(cfg, 0);
  const params: Map<string, TensorData> = init.state();
  init.dispose();
  const rng = new Rng(1);
  const shape = [batch, cfg.num_channels, cfg.image_size, cfg.image_size];
  const pixels = Float32Array.from(
    { length: shape.reduce((a, b) => a * b, 1) },
    () => rng.nextFloat() * 2 - 1,
  );
  const labels = Int32Array.from({ length: batch }, () => rng.nextInt(cfg.num_labels));
  const lr = recipe.lr;
  const ort = await loadOnnxruntime();
  const out: Engine[] = [];

  if (ort) {
    // einvit's onnxruntime engine, exactly as `einvit train --engine onnxruntime` drives it.
    const variants: Array<[string, EmitOptions]> = [['', {}]];
    if (forms) variants.push([" (attention 'mha')", { attention: 'mha' }]);
    for (const [suffix, emit] of variants) {
      const [{ model, engine }, setupSeconds] = await timed(async () => {
        const model = ViT.fromParameters(cfg, params);
        const engine = await OnnxEngine.create(model, undefined, {
          weightDecay: recipe.weightDecay,
          labelSmoothing: recipe.labelSmoothing,
          clip: recipe.clip,
          threads,
          emit,
        });
        return { model, engine };
      });
      let step = 0;
      out.push({
        name: `einvit, onnxruntime${suffix}`,
        setupSeconds,
        async run() {
          await engine.step(
            { images: pixels, labels, size: batch },
            { lr, labelSmoothing: recipe.labelSmoothing, clip: recipe.clip, seed: step++ },
          );
        },
        async dispose() {
          await engine.dispose();
          model.dispose();
        },
      });
    }
  }

  const [{ model, opt }, tfjsSetup] = await timed(async () => {
    const model = ViT.fromParameters(cfg, params);
    return { model, opt: new AdamW(model.parameters(), { weightDecay: recipe.weightDecay }) };
  });
  let seed = 0;
  out.push({
    name: `einvit, tfjs (${tf.getBackend()})`,
    setupSeconds: tfjsSetup,
    async run() {
      await trainStep(
        model,
        opt,
        { images: pixels, labels, size: batch },
        { lr, labelSmoothing: recipe.labelSmoothing, clip: recipe.clip, seed: seed++ },
      );
    },
    async dispose() {
      opt.dispose();
      model.dispose();
    },
  });

  if (ort) {
    const [y, setupSeconds] = await timed(() =>
      openYardstick(ort, config, params, pixels, labels, { threads }),
    );
    out.push({
      name: 'yardstick: PyTorch fwd+bwd graph, onnxruntime',
      setupSeconds,
      async run() {
        const r = await y.session.run(y.feeds);
        for (const t of Object.values(r)) t.dispose();
      },
      dispose: () => y.release(),
    });
  }
  return out;
}

/** The innermost cause's message, one line (an op's error wraps the allocation check's). */
function rootMessage(e: unknown): string {
  let root = e;
  while (root instanceof Error && root.cause instanceof Error) root = root.cause;
  const rule = (e as { rule?: string }).rule;
  const text = (root instanceof Error ? root.message : String(root)).split('\n')[0].slice(0, 200);
  return rule ? `${rule}: ${text}` : text;
}

function ortThreads(): number {
  return Number(process.env.THREADS ?? availableParallelism());
}

export const trainSection: Section = {
  name: 'train',
  title: 'Training step: einvit (onnxruntime, tfjs) and PyTorch’s forward+backward graph on onnxruntime',
  notes: () =>
    [
      `onnxruntime: ${ortThreads()} intra-op threads; tfjs: the main thread. Time ratios: below 1 is faster.`,
      "einvit's step is the whole update (forward, label-smoothed loss, backward, global-norm clipping, AdamW,",
      'new parameters and moments back on the host); the yardstick (test/peers/<config>/pytorch-train-step.onnx)',
      'is forward + backward only: no clipping, no update. Rounds alternate the engines; img/s is at the median;',
      "time ratios are paired: the median over rounds of one round's ratio (the machine's speed drifts between rounds).",
    ].join('\n'),
  async run(): Promise<Row[]> {
    const threads = ortThreads();
    const forms = process.argv.includes('--forms');
    const rows: Row[] = [];
    for (const config of Object.keys(YARDSTICK_CONFIGS) as YardstickConfig[]) {
      const { batch } = YARDSTICK_CONFIGS[config];
      const list = await engines(config, threads, forms);
      const rounds = Number(process.env.BENCH_TRAIN_ROUNDS ?? ROUNDS[config]);
      const times = list.map(() => [] as number[]);
      /** Per engine, per round: the median of that round's block (for paired ratios). */
      const perRound = list.map(() => [] as number[]);
      // An engine that fails (e.g. out of memory) gets a row saying so; the others still run.
      const failed = list.map((): string | undefined => undefined);
      const attempt = async (i: number): Promise<number | undefined> => {
        if (failed[i] !== undefined) return undefined;
        const t0 = performance.now();
        try {
          await list[i].run();
        } catch (e) {
          failed[i] = rootMessage(e);
          return undefined;
        }
        return performance.now() - t0;
      };
      try {
        for (const i of list.keys()) for (let k = 0; k < 2; k++) await attempt(i); // warm-up
        // onnxruntime sessions run blocks of steps (their worker threads spin after a run, which
        // would slow whichever session ran next); the tfjs step, seconds long, one per round. Each
        // block starts after a pause, so none starts while another session's threads still spin
        // (the engine after the tfjs one would otherwise have the cores to itself, the others not).
        const block = list.map((e) => (e.name.startsWith('einvit, tfjs') ? 1 : ORT_BLOCK));
        for (let r = 0; r < rounds; r++) {
          for (const i of list.keys()) {
            await new Promise((resolve) => setTimeout(resolve, BLOCK_PAUSE_MS));
            const ts: number[] = [];
            for (let k = 0; k < block[i]; k++) {
              const t = await attempt(i);
              if (t !== undefined) ts.push(t);
            }
            times[i].push(...ts);
            perRound[i].push(ts.length > 0 ? median(ts) : NaN);
          }
        }
      } finally {
        for (const e of list) await e.dispose();
      }
      const med = times.map((t) => (t.length > 0 ? median(t) : NaN));
      const tfjsIndex = list.findIndex((e) => e.name.startsWith('einvit, tfjs'));
      const yardIndex = list.findIndex((e) => e.name.startsWith('yardstick'));
      for (const [i, e] of list.entries()) {
        const ours = e.name.startsWith('einvit, onnxruntime');
        // Paired: each round's ratio of the two engines' blocks, then the median over rounds. The
        // machine's speed drifts over seconds; blocks a few milliseconds apart see the same speed.
        const ratio = (j: number) =>
          j >= 0 && ours && failed[j] === undefined && failed[i] === undefined
            ? Number(median(perRound[i].map((t, r) => t / perRound[j][r])).toFixed(2))
            : '';
        const ok = failed[i] === undefined;
        rows.push({
          config: `${config} (batch ${batch})`,
          engine: ok ? e.name : `${e.name}: failed: ${failed[i]}`,
          'ms / step (median)': ok ? Number(med[i].toFixed(1)) : '',
          'ms / step (best)': ok ? Number(Math.min(...times[i]).toFixed(1)) : '',
          'img / s': ok ? Math.round((batch * 1000) / med[i]) : '',
          'time ÷ yardstick': ratio(yardIndex),
          'time ÷ tfjs': ratio(tfjsIndex),
          'setup s': Number(e.setupSeconds.toFixed(1)),
        });
      }
    }
    return rows;
  },
};
