// The training loop: data -> batches -> forward/backward -> AdamW, with per-epoch evaluation,
// metrics, atomic checkpoints (checkpoint.ts), exact resume and a clean stop on Ctrl-C.
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { tf } from '../tf.js';
import { CheckpointError, UsageError } from '../errors.js';
import { ViT } from '../vit/model.js';
import { parseConfig, PRESETS, type ViTConfig } from '../vit/config.js';
import { TUTORIAL_RECIPES } from '../vit/tutorials.js';
import { MNIST_AFFINE_RECIPE } from './recipes.js';
import type { DataSplit, Dataset } from './data.js';
import { batchCount, batches } from './batches.js';
import { augmentFor, type Augment } from './augment.js';
import { Rng } from './random.js';
import { AdamW } from './optimizer.js';
import { oneCycle, type Schedule } from './schedule.js';
import { confusionMatrix } from './metrics.js';
import { Progress } from './progress.js';
import { loadData } from './datasets.js';
import { configForData, preprocessorForData } from './data-config.js';
import { loadRunCheckpoint, openRun, saveRunCheckpoint, STATE_FILE } from './checkpoint.js';
import { chooseEngine, ENGINES, type EngineName, type EvalResult, type TrainEngine } from './engine.js';
import { evaluateEager, TfjsEngine } from './engine-tfjs.js';

export { trainStep } from './engine-tfjs.js';
export type { StepOptions } from './engine.js';

/**
 * Everything `einvit train` can be told. Unset fields take the recipe of the chosen config for a new
 * run, and the run's own values on `resume`.
 */
export interface TrainOptions {
  /** `mnist` (default), `cifar10:<dir>` or `folder:<dir>`. */
  data?: string;
  /** A preset (`tiny` (default), `small`, `cifar-tiny`, the tutorials' ones) or a path to a config.json. */
  config?: string;
  epochs?: number;
  batchSize?: number;
  /** Peak learning rate of the one-cycle schedule. */
  lr?: number;
  weightDecay?: number;
  labelSmoothing?: number;
  /** Global gradient-norm clip (0 = off). */
  clip?: number;
  /** Random shift in pixels (random crop with padding); 0 = off. */
  shift?: number;
  flip?: boolean;
  /** Random rotation in degrees (uniform in [-rotate, rotate]); 0 = off. */
  rotate?: number;
  /** Random zoom (a factor uniform in [1 - scale, 1 + scale]); 0 = off. */
  scale?: number;
  seed?: number;
  /** Output folder (checkpoints, metrics.jsonl, curves.png, attention.png). */
  out: string;
  /** Continue the run in `out` with its stored options; a given option that differs is refused. */
  resume?: boolean;
  /** Stop after this many steps in total (tests: simulate an interruption). */
  maxSteps?: number;
  /** Use at most this many training / test images (tests, quick runs). */
  limitTrain?: number;
  limitTest?: number;
  /** Where progress lines go (default: the console). */
  log?: (line: string) => void;
  /** Draw the progress bar (default: when stdout is a terminal). */
  progress?: boolean;
  /**
   * What runs the training step (engine.ts): `onnxruntime` (the whole step as one compiled graph) or
   * `tfjs` (eager, any tfjs backend). Default: onnxruntime where it loads, else tfjs with a one-line
   * note; an explicit `onnxruntime` that cannot load falls back the same way. On `resume` the run's stored
   * engine is used unless one is given: giving another switches the run's engine (results then
   * differ slightly from an uninterrupted run, as with a change of backend).
   */
  engine?: EngineName;
  /**
   * Extra threads beside the main one. tfjs engine: worker threads computing gradients on shards of
   * each batch (data parallel, see parallel.ts). onnxruntime engine: the session runs `workers + 1`
   * intra-op threads. 0 (default): one thread. Results are reproducible for a given value, but differ
   * slightly between values (summation order, dropout seeds per shard), so a run keeps its value on
   * resume.
   */
  workers?: number;
  /** Write curves.png and attention.png at the end (default true). */
  plots?: boolean;
  /** Called after each epoch's checkpoint is saved (e.g. to watch memory). */
  onEpoch?: (metrics: EpochMetrics) => void;
  /**
   * Stops training (a checkpoint is saved, as on Ctrl-C). Without it, `train` listens to SIGINT
   * itself while it runs; the CLI passes one it connects to SIGINT before anything else starts.
   */
  signal?: AbortSignal;
}

/** One epoch's results: a line of metrics.jsonl (results) plus one of timings.jsonl (timings). */
export interface EpochMetrics {
  epoch: number;
  train_loss: number;
  train_acc: number;
  test_loss: number;
  test_acc: number;
  /** Learning rate of the epoch's last step. */
  lr: number;
  /** Timings: machine-dependent, so kept out of metrics.jsonl (which repeats byte for byte). */
  images_per_s: number;
  elapsed_s: number;
}

/** A training recipe: the hyper-parameters that go with a config. */
export interface TrainingRecipe {
  epochs: number;
  batchSize: number;
  lr: number;
  weightDecay: number;
  labelSmoothing: number;
  clip: number;
  shift: number;
  flip: boolean;
  /** Share of the one-cycle schedule spent rising; 0 = no schedule (constant `lr`). */
  pctStart: number;
  /** Random rotation in degrees; 0 or absent (runs saved before it existed) = off. */
  rotate?: number;
  /** Random zoom factor range; 0 or absent = off. */
  scale?: number;
}

/**
 * Defaults per config name. MNIST: the recipe (src/train/recipes.ts) that reaches 97.5%+ within 5
 * minutes on 2 cores on the onnxruntime engine.
 */
export const RECIPES: Record<string, TrainingRecipe> = {
  tiny: MNIST_AFFINE_RECIPE,
  small: { ...MNIST_AFFINE_RECIPE, epochs: 25 },
  'cifar-tiny': {
    epochs: 100,
    batchSize: 256,
    lr: 1e-3,
    weightDecay: 0.05,
    labelSmoothing: 0.1,
    clip: 1,
    shift: 4,
    flip: true,
    pctStart: 0.1,
  },
  // pctStart 0: no schedule (the tutorial trains at a constant rate).
  ...TUTORIAL_RECIPES,
};

/** Every option that affects a run's results, as stored in its checkpoints. */
export interface RunOptions extends TrainingRecipe {
  data: string;
  config: string;
  seed: number;
  /** null: all images. */
  limitTrain: number | null;
  limitTest: number | null;
  workers: number;
  /**
   * The engine the run trains on (absent in runs started before engines existed: tfjs). Not a
   * result-defining option like the others: a resume may switch it when asked explicitly.
   */
  engine?: EngineName;
}

/** trainer_state.json: where a run is, how it was started, and its history. */
export interface TrainerState {
  /** Layout version of this file. */
  version: 2;
  /** Completed epochs. */
  epoch: number;
  /** Batches done within the current (incomplete) epoch. */
  batchInEpoch: number;
  step: number;
  /** Partial sums of the current epoch: loss * n, correct, n, seconds. */
  partial: { loss: number; correct: number; seen: number; seconds: number };
  /** Seconds of training so far, over every process of the run. */
  elapsed: number;
  options: RunOptions;
  config: ViTConfig;
  /** Backend the run started on (results differ slightly between backends). */
  backend: string;
  /** One entry per completed epoch: metrics.jsonl and timings.jsonl are written from these. */
  metrics: EpochMetrics[];
}

/** The command-line flag of each stored option, for messages. */
const FLAGS: Record<keyof RunOptions, string> = {
  data: '--data',
  config: '--config',
  seed: '--seed',
  epochs: '--epochs',
  batchSize: '--batch-size',
  lr: '--lr',
  weightDecay: '--weight-decay',
  labelSmoothing: '--label-smoothing',
  clip: '--clip',
  shift: '--shift',
  flip: '--flip',
  rotate: '--rotate',
  scale: '--scale',
  pctStart: 'pctStart',
  limitTrain: '--limit-train',
  limitTest: '--limit-test',
  workers: '--workers',
  engine: '--engine',
};

/** Resolves `--config`: a preset name or a config.json path. */
export function resolveConfig(name: string): ViTConfig {
  if (name in PRESETS) return { ...PRESETS[name as keyof typeof PRESETS] };
  if (!existsSync(name)) {
    throw new UsageError(
      `--config '${name}' is neither a preset (${Object.keys(PRESETS).join(', ')}) nor a file`,
    );
  }
  let json: unknown;
  try {
    json = JSON.parse(readFileSync(name, 'utf8'));
  } catch (e) {
    throw new CheckpointError(`${name}: not valid JSON (${(e as Error).message})`, { cause: e });
  }
  return parseConfig(json, name);
}

/** Checks that a config fits the data; the message names both. */
export function checkFits(cfg: ViTConfig, data: Dataset): void {
  const problems: string[] = [];
  if (cfg.image_size !== data.height || cfg.image_size !== data.width) {
    problems.push(`image_size ${cfg.image_size} but the images are ${data.width}x${data.height}`);
  }
  if (cfg.num_channels !== data.channels) {
    problems.push(`num_channels ${cfg.num_channels} but the images have ${data.channels}`);
  }
  if (cfg.num_labels !== data.numClasses) {
    problems.push(`num_labels ${cfg.num_labels} but the data has ${data.numClasses} classes`);
  }
  if (problems.length > 0) {
    throw new UsageError(`The config does not fit the data '${data.name}': ${problems.join('; ')}`);
  }
}

/** `n epoch` / `n epochs`. */
export function epochs(n: number): string {
  return `${n} epoch${n === 1 ? '' : 's'}`;
}

/** Seed of the data order and augmentation of one epoch: resuming needs no saved rng state. */
function epochRng(seed: number, epoch: number): Rng {
  return new Rng(seed * 1_000_003 + epoch);
}

/** Dropout seed of one step (tfjs seeds are mapped through `tfSeed` where they are used). */
function stepSeed(seed: number, step: number): number {
  return seed * 1_000_003 + step;
}

/**
 * Mean loss and accuracy of an eager model over a dataset, and the predictions (for confusion
 * matrices).
 *
 * @example
 * const { acc } = evaluate(model, data.test);
 */
export function evaluate(model: ViT, ds: Dataset, batchSize = 500): EvalResult {
  return evaluateEager(model, ds, batchSize);
}

/** What `train` returns. */
export interface TrainResult {
  metrics: EpochMetrics[];
  out: string;
  /** True when stopped early (Ctrl-C, `signal` or maxSteps) after saving. */
  interrupted: boolean;
  /** True when `resume` found the run already finished (nothing was trained or written). */
  alreadyFinished: boolean;
  model: ViT;
  data: DataSplit;
  /** The engine the run trained on (or would have, when already finished). */
  engine: EngineName;
}

/** A run in memory: model, optimizer, state and data, new or read back from its checkpoint. */
interface Run {
  out: string;
  model: ViT;
  /** The optimizer as created or loaded; the engine takes it over. */
  opt: AdamW;
  state: TrainerState;
  data: DataSplit;
  /** Set once training starts. */
  engine?: TrainEngine;
}

/** Options a new run takes from `options` and the recipe; each checked (UsageError names the flag). */
function runOptions(options: TrainOptions): RunOptions {
  const config = options.config ?? 'tiny';
  const recipe = RECIPES[config] ?? RECIPES.tiny;
  const o: RunOptions = {
    data: options.data ?? 'mnist',
    config,
    seed: options.seed ?? 0,
    epochs: options.epochs ?? recipe.epochs,
    batchSize: options.batchSize ?? recipe.batchSize,
    lr: options.lr ?? recipe.lr,
    weightDecay: options.weightDecay ?? recipe.weightDecay,
    labelSmoothing: options.labelSmoothing ?? recipe.labelSmoothing,
    clip: options.clip ?? recipe.clip,
    shift: options.shift ?? recipe.shift,
    flip: options.flip ?? recipe.flip,
    rotate: options.rotate ?? recipe.rotate ?? 0,
    scale: options.scale ?? recipe.scale ?? 0,
    pctStart: recipe.pctStart,
    limitTrain: options.limitTrain ?? null,
    limitTest: options.limitTest ?? null,
    workers: options.workers ?? 0,
    engine: options.engine,
  };
  checkOptions(o);
  return o;
}

function checkOptions(o: Partial<RunOptions>): void {
  const problems: string[] = [];
  const int = (k: keyof RunOptions, v: unknown, min: number, max = Number.MAX_SAFE_INTEGER) => {
    if (v === undefined || v === null) return;
    if (!(Number.isSafeInteger(v) && (v as number) >= min && (v as number) <= max)) {
      const range = max === Number.MAX_SAFE_INTEGER ? `>= ${min}` : `in ${min}..${max}`;
      problems.push(`${FLAGS[k]} must be an integer ${range}, got ${String(v)}`);
    }
  };
  const real = (k: keyof RunOptions, v: number | undefined, ok: (x: number) => boolean, what: string) => {
    if (v !== undefined && !(Number.isFinite(v) && ok(v)))
      problems.push(`${FLAGS[k]} must be ${what}, got ${v}`);
  };
  int('epochs', o.epochs, 1);
  int('batchSize', o.batchSize, 1);
  int('seed', o.seed, 0);
  int('shift', o.shift, 0);
  int('limitTrain', o.limitTrain, 1);
  int('limitTest', o.limitTest, 1);
  int('workers', o.workers, 0, 64);
  if (o.engine !== undefined && !ENGINES.includes(o.engine)) {
    problems.push(`--engine must be ${ENGINES.join(' or ')}, got ${String(o.engine)}`);
  }
  real('lr', o.lr, (x) => x > 0, 'positive');
  real('weightDecay', o.weightDecay, (x) => x >= 0, '>= 0');
  real('labelSmoothing', o.labelSmoothing, (x) => x >= 0 && x < 1, 'in [0, 1)');
  real('clip', o.clip, (x) => x >= 0, '>= 0 (0: off)');
  real('rotate', o.rotate, (x) => x >= 0 && x <= 180, 'in [0, 180] degrees (0: off)');
  real('scale', o.scale, (x) => x >= 0 && x < 1, 'in [0, 1) (0: off)');
  if (problems.length > 0) throw new UsageError(problems.join('; '));
}

/** Every option given to a resume that differs from the run's own, as `--flag given (the run has x)`. */
function conflicts(options: TrainOptions, state: TrainerState): string[] {
  const given: Partial<Record<keyof RunOptions, unknown>> = {
    data: options.data,
    config: options.config,
    seed: options.seed,
    epochs: options.epochs,
    batchSize: options.batchSize,
    lr: options.lr,
    weightDecay: options.weightDecay,
    labelSmoothing: options.labelSmoothing,
    clip: options.clip,
    shift: options.shift,
    flip: options.flip,
    rotate: options.rotate,
    scale: options.scale,
    limitTrain: options.limitTrain,
    limitTest: options.limitTest,
    workers: options.workers,
  };
  const out: string[] = [];
  for (const [key, value] of Object.entries(given) as [keyof RunOptions, unknown][]) {
    if (value === undefined) continue;
    const stored = state.options[key];
    const show = (v: unknown) => (v === null ? 'none' : String(v));
    if (value !== stored) out.push(`${FLAGS[key]} ${show(value)} (the run has ${show(stored)})`);
  }
  // A config file changed since the run started does not matter: the run continues with the config
  // stored in its checkpoint.
  return out;
}

function loadRunData(o: RunOptions, cfg: ViTConfig): DataSplit {
  return loadData(o.data, {
    limitTrain: o.limitTrain ?? undefined,
    limitTest: o.limitTest ?? undefined,
    imageSize: cfg.image_size,
    channels: cfg.num_channels === 1 ? 1 : 3,
  });
}

/** Setup of a new run: options, data, a freshly initialised model and optimizer, the engine's name. */
async function newRun(options: TrainOptions, log: (line: string) => void): Promise<Run> {
  const out = options.out;
  const o = runOptions(options);
  if (openRun(out) !== undefined || existsSync(join(out, STATE_FILE))) {
    throw new UsageError(
      `${out} already holds a training run: pass --resume to continue it, or choose another --out`,
    );
  }
  const planned = resolveConfig(o.config);
  const data = loadRunData(o, planned);
  const cfg = configForData(planned, data.train, o.config in PRESETS, log);
  checkFits(cfg, data.train);
  o.engine = await chooseEngine(options.engine, log);
  const model = ViT.create(cfg, o.seed);
  const opt = new AdamW(model.parameters(), { weightDecay: o.weightDecay });
  const state: TrainerState = {
    version: 2,
    epoch: 0,
    batchInEpoch: 0,
    step: 0,
    partial: { loss: 0, correct: 0, seen: 0, seconds: 0 },
    elapsed: 0,
    options: o,
    config: cfg,
    backend: tf.getBackend(),
    metrics: [],
  };
  return { out, model, opt, state, data };
}

/** Setup of a resumed run: its checkpoint, its own options (given ones must agree), its data. */
async function resumeRun(options: TrainOptions, log: (line: string) => void): Promise<Run> {
  const out = options.out;
  checkOptions({ engine: options.engine });
  if (!existsSync(out)) throw new UsageError(`--resume: ${out} does not exist`);
  const dir = openRun(out);
  if (dir === undefined) {
    const old = existsSync(join(out, STATE_FILE));
    throw new UsageError(
      old
        ? `--resume: ${out} was written by an older einvit (${STATE_FILE} at the top, no checkpoints/latest); start a new run`
        : `--resume: ${out} holds no complete checkpoint yet; start it again without --resume`,
    );
  }
  const {
    model,
    opt,
    state: raw,
  } = await loadRunCheckpoint(dir, (s) => (s as TrainerState).options?.weightDecay ?? NaN);
  try {
    const state = raw as TrainerState;
    if (state.version !== 2 || typeof state.options !== 'object') {
      throw new CheckpointError(`${join(dir, STATE_FILE)}: not a trainer state this einvit can resume`);
    }
    const bad = conflicts(options, state);
    if (bad.length > 0) {
      throw new UsageError(
        `--resume: ${out} was started with other options; leave these flags out to continue it with its own: ${bad.join('; ')}`,
      );
    }
    if (state.backend !== tf.getBackend()) {
      log(
        `note: ${out} started on the ${state.backend} backend and continues on ${tf.getBackend()}: ` +
          'results will differ slightly from an uninterrupted run',
      );
    }
    const data = loadRunData(state.options, model.config);
    checkFits(model.config, data.train);
    // The stored engine, unless another is asked for explicitly (then the run switches to it).
    const stored = state.options.engine ?? 'tfjs';
    const engine = await chooseEngine(options.engine ?? (stored === 'tfjs' ? 'tfjs' : undefined), log);
    if (engine !== stored) {
      log(
        `note: ${out} trained on the ${stored} engine and continues on ${engine}: ` +
          'results will differ slightly from an uninterrupted run',
      );
    }
    state.options.engine = engine;
    return { out, model, opt, state, data };
  } catch (e) {
    model.dispose();
    opt.dispose();
    throw e;
  }
}

function checkpointFiles(run: Run): Parameters<typeof saveRunCheckpoint>[3] {
  const { state, data } = run;
  return {
    state,
    preprocessor: preprocessorForData(run.model.config, data),
    metrics: state.metrics.map(({ epoch, train_loss, train_acc, test_loss, test_acc, lr }) => ({
      epoch,
      train_loss,
      train_acc,
      test_loss,
      test_acc,
      lr,
    })),
    timings: state.metrics.map(({ epoch, images_per_s, elapsed_s }) => ({ epoch, images_per_s, elapsed_s })),
  };
}

/** Writes the run's checkpoint from its engine's current parameters and optimizer state. */
async function save(run: Run, engine: TrainEngine): Promise<void> {
  engine.syncModel();
  await saveRunCheckpoint(
    run.out,
    run.model,
    { exportState: () => engine.optimizerState() },
    checkpointFiles(run),
  );
}

/** Per-run things the epoch loop needs, built once per process. */
interface Loop {
  run: Run;
  engine: TrainEngine;
  schedule: Schedule;
  perEpoch: number;
  augment: Augment;
  /** Seconds since the run started, counting earlier processes. */
  elapsed: () => number;
  stopped: () => boolean;
  options: TrainOptions;
}

/** Trains the rest of the current epoch; false when stopped (signal or maxSteps) before its end. */
async function trainEpoch(loop: Loop): Promise<boolean> {
  const { run, options } = loop;
  const { state, data } = run;
  const o = state.options;
  const progress = new Progress({
    total: data.train.count,
    title: `epoch ${state.epoch + 1}/${o.epochs}`,
    tty: options.progress,
    initial: state.partial.seen,
  });
  try {
    for (const b of batches(data.train, {
      batchSize: o.batchSize,
      shuffle: true,
      rng: epochRng(o.seed, state.epoch + 1),
      augment: loop.augment,
      skipBatches: state.batchInEpoch,
    })) {
      if (loop.stopped() || (options.maxSteps !== undefined && state.step >= options.maxSteps)) return false;
      const t0 = performance.now();
      const r = await loop.engine.step(b, {
        lr: loop.schedule(state.step),
        labelSmoothing: o.labelSmoothing,
        clip: o.clip,
        seed: stepSeed(o.seed, state.step),
      });
      state.step++;
      state.batchInEpoch++;
      state.partial.loss += r.loss * b.size;
      state.partial.correct += r.correct;
      state.partial.seen += b.size;
      state.partial.seconds += (performance.now() - t0) / 1000;
      progress.tick(b.size, {
        loss: state.partial.loss / state.partial.seen,
        acc: state.partial.correct / state.partial.seen,
      });
      await new Promise((resolve) => setImmediate(resolve)); // let Ctrl-C in
    }
    return true;
  } finally {
    progress.stop();
  }
}

/** Evaluates after a completed epoch, records its metrics in the state and saves the checkpoint. */
async function endEpoch(loop: Loop, log: (line: string) => void): Promise<EpochMetrics> {
  const { run } = loop;
  const { state } = run;
  const test = await loop.engine.evaluate(run.data.test);
  const row: EpochMetrics = {
    epoch: state.epoch + 1,
    train_loss: state.partial.loss / state.partial.seen,
    train_acc: state.partial.correct / state.partial.seen,
    test_loss: test.loss,
    test_acc: test.acc,
    lr: loop.schedule(state.step - 1),
    images_per_s: state.partial.seen / state.partial.seconds,
    elapsed_s: loop.elapsed(),
  };
  state.metrics.push(row);
  state.epoch = row.epoch;
  state.batchInEpoch = 0;
  state.partial = { loss: 0, correct: 0, seen: 0, seconds: 0 };
  state.elapsed = row.elapsed_s;
  await save(run, loop.engine);
  log(
    `epoch ${row.epoch}/${state.options.epochs}  train loss ${row.train_loss.toFixed(4)} acc ${(100 * row.train_acc).toFixed(2)}%  ` +
      `test loss ${row.test_loss.toFixed(4)} acc ${(100 * row.test_acc).toFixed(2)}%  ` +
      `${row.images_per_s.toFixed(0)} img/s  ${row.elapsed_s.toFixed(1)} s`,
  );
  return row;
}

/** Listens for a stop: `options.signal`, or SIGINT while `train` runs. */
function stopListener(signal?: AbortSignal): { stopped: () => boolean; dispose: () => void } {
  if (signal) return { stopped: () => signal.aborted, dispose: () => undefined };
  let stop = false;
  const onSigint = () => {
    stop = true;
  };
  process.on('SIGINT', onSigint);
  return { stopped: () => stop, dispose: () => process.off('SIGINT', onSigint) };
}

/**
 * Trains a ViT in the run folder `out` (layout in checkpoint.ts): a checkpoint after every epoch and
 * on Ctrl-C, `metrics.jsonl`, and at the end `curves.png` and `attention.png`. With `resume` it
 * continues the run in `out` exactly where its last checkpoint stopped, with the run's own options.
 *
 * @example
 * const { metrics, model } = await train({ out: 'runs/mnist' }); // tiny ViT on the embedded MNIST
 * console.log(metrics.at(-1)?.test_acc);
 * model.dispose();
 */
export async function train(options: TrainOptions): Promise<TrainResult> {
  const log = options.log ?? ((line: string) => console.log(line));
  const stop = stopListener(options.signal); // first: a Ctrl-C during setup stops before training
  try {
    const run = options.resume ? await resumeRun(options, log) : await newRun(options, log);
    const { state, data, out } = run;
    const o = state.options;
    const result = (interrupted: boolean, alreadyFinished = false): TrainResult => ({
      metrics: state.metrics,
      out,
      interrupted,
      alreadyFinished,
      model: run.model,
      data,
      engine: o.engine ?? 'tfjs',
    });
    if (state.epoch >= o.epochs) {
      const last = state.metrics.at(-1);
      log(
        `${out} is finished: ${epochs(o.epochs)} done` +
          (last ? `, test accuracy ${(100 * last.test_acc).toFixed(2)}%` : '') +
          '; nothing to do (nothing was changed)',
      );
      run.opt.dispose();
      return result(false, true);
    }
    if (options.resume) log(`resuming ${out} at epoch ${state.epoch + 1}, step ${state.step}`);
    let interrupted: boolean;
    try {
      interrupted = await trainEpochs(run, options, stop.stopped, log);
    } catch (e) {
      run.model.dispose(); // the caller never gets it
      throw e;
    } finally {
      run.opt.dispose(); // idempotent: the engine normally took it over already
    }
    if (!interrupted && options.plots !== false) {
      await writePlots(out, run.model, data, state.metrics);
      log(`wrote ${join(out, 'curves.png')} and ${join(out, 'attention.png')}`);
    }
    return result(interrupted);
  } finally {
    stop.dispose();
  }
}

/** The epoch loop of `train`; true when it stopped before the last epoch (after saving). */
async function trainEpochs(
  run: Run,
  options: TrainOptions,
  stopped: () => boolean,
  log: (line: string) => void,
): Promise<boolean> {
  const { state, data } = run;
  const o = state.options;
  const perEpoch = batchCount(data.train.count, o.batchSize);
  const runStart = performance.now() / 1000 - state.elapsed;
  const startStep = state.step;
  await new Promise((resolve) => setImmediate(resolve)); // a Ctrl-C during setup is seen before step 1
  const engine = await createEngine(run);
  run.engine = engine;
  const loop: Loop = {
    run,
    engine,
    perEpoch,
    schedule:
      o.pctStart === 0
        ? () => o.lr
        : oneCycle({
            maxLr: o.lr,
            totalSteps: perEpoch * o.epochs,
            pctStart: o.pctStart,
            divFactor: 25,
            finalDivFactor: 1e4,
          }),
    // `?? 0`: runs saved before rotation and zoom existed resume with their own augmentation.
    augment: augmentFor(data, { pad: o.shift, flip: o.flip, rotate: o.rotate ?? 0, scale: o.scale ?? 0 }),
    elapsed: () => performance.now() / 1000 - runStart,
    stopped,
    options,
  };
  log(
    `training ${o.config} on ${data.train.name} (${data.train.count} train / ${data.test.count} test images), ` +
      `${epochs(o.epochs)} x ${perEpoch} steps, batch ${o.batchSize}, engine ${engine.description}`,
  );
  try {
    while (state.epoch < o.epochs) {
      if (await trainEpoch(loop)) {
        const row = await endEpoch(loop, log);
        options.onEpoch?.(row);
        if (state.epoch < o.epochs && !stopped() && !(state.step >= (options.maxSteps ?? Infinity))) continue;
        if (state.epoch >= o.epochs) return false;
      }
      if (state.step === startStep) {
        log(`stopped before training started: nothing was saved`);
        return true;
      }
      if (state.batchInEpoch > 0) {
        state.elapsed = loop.elapsed();
        await save(run, engine);
      }
      log(
        `stopped at epoch ${state.epoch + (state.batchInEpoch > 0 ? 1 : 0)}, step ${state.step}: ` +
          `checkpoint saved in ${run.out} (continue with --resume)`,
      );
      return true;
    }
    return false;
  } finally {
    engine.syncModel(); // the caller gets the model with the trained values
    run.engine = undefined;
    await engine.dispose();
  }
}

/** The run's engine (its name is in the stored options); takes over `run.opt`. */
async function createEngine(run: Run): Promise<TrainEngine> {
  const o = run.state.options;
  if ((o.engine ?? 'tfjs') === 'tfjs') return TfjsEngine.create(run.model, run.opt, o.workers);
  const optimizer = run.opt.exportState();
  run.opt.dispose(); // the compiled step keeps the moments in host buffers
  const { OnnxEngine } = await import('./engine-onnx.js');
  return OnnxEngine.create(run.model, optimizer, {
    weightDecay: o.weightDecay,
    labelSmoothing: o.labelSmoothing,
    clip: o.clip,
    threads: o.workers + 1,
  });
}

async function writePlots(out: string, model: ViT, data: DataSplit, metrics: EpochMetrics[]): Promise<void> {
  const { drawCurves } = await import('./plot.js');
  const { drawAttentionSheet } = await import('./attention-sheet.js');
  drawCurves(join(out, 'curves.png'), metrics);
  drawAttentionSheet(join(out, 'attention.png'), model, data, 8);
}

/** Per-class accuracy and confusion matrix of a model on a dataset (for `einvit eval`). */
export function evaluateDetailed(model: ViT, ds: Dataset): { loss: number; acc: number; matrix: number[][] } {
  const r = evaluate(model, ds);
  return { loss: r.loss, acc: r.acc, matrix: confusionMatrix(r.predictions, ds.labels, ds.numClasses) };
}
