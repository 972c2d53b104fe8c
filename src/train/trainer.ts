// The training loop: data -> batches -> forward/backward -> AdamW, with per-epoch evaluation,
// metrics, atomic checkpoints, exact resume and a clean stop on Ctrl-C.
import { existsSync, mkdirSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { tf } from '../tf.js';
import { EinopsError } from '../errors.js';
import { ViT } from '../vit/model.js';
import { parseConfig, PRESETS, type ViTConfig } from '../vit/config.js';
import { openSafetensors, writeSafetensors } from '../vit/safetensors.js';
import type { DataSplit, Dataset } from './data.js';
import { batchCount, batches } from './batches.js';
import { augmentFor } from './augment.js';
import { Rng } from './random.js';
import { AdamW, clipByGlobalNorm } from './optimizer.js';
import { oneCycle, type Schedule } from './schedule.js';
import { appendMetrics, confusionMatrix } from './metrics.js';
import { Progress } from './progress.js';
import { writeJsonAtomic } from './atomic.js';
import { loadData } from './datasets.js';
import { PREPROCESSOR_FILE } from '../vit/preprocessor.js';
import { configForData, preprocessorForData } from './data-config.js';
import { ParallelGrads } from './parallel.js';

/** Everything `einvit train` can be told. Unset fields take the recipe of the chosen config. */
export interface TrainOptions {
  /** `mnist` (default), `cifar10:<dir>` or `folder:<dir>`. */
  data?: string;
  /** `tiny` (default), `small`, `cifar-tiny` or a path to a config.json. */
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
  seed?: number;
  /** Output folder (checkpoint, metrics.jsonl, curves.png, attention.png). */
  out: string;
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
   * Extra worker threads computing gradients on shards of each batch (data parallel, see
   * parallel.ts). 0 (default) trains on the main thread only. Results are reproducible for a given
   * value, but differ slightly between values (summation order, dropout seeds per shard).
   */
  workers?: number;
  /** Write curves.png and attention.png at the end (default true). */
  plots?: boolean;
  /** Called after each epoch's metrics are written (e.g. to watch memory). */
  onEpoch?: (metrics: EpochMetrics) => void;
}

/** One line of metrics.jsonl. */
export interface EpochMetrics {
  epoch: number;
  train_loss: number;
  train_acc: number;
  test_loss: number;
  test_acc: number;
  images_per_s: number;
  elapsed_s: number;
  lr: number;
}

/** A recipe: the training hyper-parameters that go with a config. */
export interface Recipe {
  epochs: number;
  batchSize: number;
  lr: number;
  weightDecay: number;
  labelSmoothing: number;
  clip: number;
  shift: number;
  flip: boolean;
  pctStart: number;
}

// Measured here (8,000 / 2,000 split, one-cycle): batch 64 reaches 96% by epoch 12 of 16, where
// batch 128 was still at 95.7% after 15 epochs; 15 epochs fit in 10 minutes on 2 cores.
const MNIST_RECIPE: Recipe = {
  epochs: 15,
  batchSize: 64,
  lr: 2e-3,
  weightDecay: 0.05,
  labelSmoothing: 0.1,
  clip: 1,
  shift: 2,
  flip: false,
  pctStart: 0.2,
};

/** Defaults per config name. MNIST: the recipe that reaches 96% in under 10 minutes on 2 cores. */
export const RECIPES: Record<string, Recipe> = {
  tiny: MNIST_RECIPE,
  small: { ...MNIST_RECIPE, epochs: 25 },
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
};

interface TrainerState {
  /** Completed epochs. */
  epoch: number;
  /** Batches done within the current (incomplete) epoch. */
  batchInEpoch: number;
  step: number;
  /** Partial sums of the current epoch: loss * n, correct, n, seconds. */
  partial: { loss: number; correct: number; seen: number; seconds: number };
  elapsed: number;
  options: Required<Pick<TrainOptions, 'data' | 'config' | 'seed'>> & Recipe;
  config: ViTConfig;
}

const STATE_FILE = 'trainer_state.json';
const OPTIMIZER_FILE = 'optimizer.safetensors';

/** Resolves `--config`: a preset name or a config.json path. */
export function resolveConfig(name: string): ViTConfig {
  if (name in PRESETS) return { ...PRESETS[name as keyof typeof PRESETS] };
  if (!existsSync(name)) {
    throw new EinopsError(
      `--config '${name}' is neither a preset (${Object.keys(PRESETS).join(', ')}) nor a file`,
    );
  }
  let json: unknown;
  try {
    json = JSON.parse(readFileSync(name, 'utf8'));
  } catch (e) {
    throw new EinopsError(`${name}: not valid JSON (${(e as Error).message})`);
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
    throw new EinopsError(`The config does not fit the data '${data.name}': ${problems.join('; ')}`);
  }
}

/** Seed of the data order and augmentation of one epoch: resuming needs no saved rng state. */
function epochRng(seed: number, epoch: number): Rng {
  return new Rng(seed * 1_000_003 + epoch);
}

function tensorFromBatch(images: Float32Array, size: number, ds: Dataset): tf.Tensor4D {
  return tf.tensor4d(images, [size, ds.channels, ds.height, ds.width]);
}

/** Mean loss and accuracy over a dataset, and the predictions (for confusion matrices). */
export function evaluate(
  model: ViT,
  ds: Dataset,
  batchSize = 500,
): { loss: number; acc: number; predictions: Int32Array } {
  const predictions = new Int32Array(ds.count);
  let lossSum = 0;
  let at = 0;
  for (const b of batches(ds, { batchSize, shuffle: false })) {
    const [loss, pred] = tf.tidy(() => {
      const x = tensorFromBatch(b.images, b.size, ds);
      const out = model.forward(x);
      const labels = tf.oneHot(tf.tensor1d(b.labels, 'int32'), ds.numClasses);
      const l = tf.losses.softmaxCrossEntropy(labels, out.logits, undefined, 0, tf.Reduction.SUM);
      return [l.dataSync()[0], tf.argMax(out.logits, 1).dataSync() as Int32Array];
    });
    lossSum += loss;
    predictions.set(pred, at);
    at += b.size;
  }
  let correct = 0;
  for (let i = 0; i < ds.count; i++) if (predictions[i] === ds.labels[i]) correct++;
  return { loss: lossSum / ds.count, acc: correct / ds.count, predictions };
}

/** Writes model (HF naming) + config.json + optimizer state + trainer state, each atomically. */
async function saveCheckpoint(
  out: string,
  model: ViT,
  opt: AdamW,
  state: TrainerState,
  data: DataSplit,
): Promise<void> {
  const tag = { step: String(state.step) };
  await model.save(out, tag); // model.safetensors (HF names when HF can hold it) + config.json
  writeJsonAtomic(join(out, PREPROCESSOR_FILE), preprocessorForData(model.config, data));
  const o = opt.exportState();
  writeSafetensors(join(out, OPTIMIZER_FILE), o.tensors, { ...tag, adamw_step: String(o.step) });
  writeJsonAtomic(join(out, STATE_FILE), state); // last: names the step the other files must carry
}

async function loadCheckpoint(
  out: string,
  opts: TrainState,
): Promise<{ model: ViT; opt: AdamW; state: TrainerState }> {
  const statePath = join(out, STATE_FILE);
  if (!existsSync(statePath)) throw new EinopsError(`--resume: no ${STATE_FILE} in ${out}`);
  let state: TrainerState;
  try {
    state = JSON.parse(readFileSync(statePath, 'utf8')) as TrainerState;
  } catch (e) {
    throw new EinopsError(`--resume: ${statePath} is not valid JSON (${(e as Error).message})`);
  }
  const want = opts.options;
  for (const key of ['data', 'config', 'seed', 'batchSize', 'epochs'] as const) {
    if (state.options?.[key] !== want[key]) {
      throw new EinopsError(
        `--resume: ${out} was trained with ${key} = ${JSON.stringify(state.options?.[key])}, not ${JSON.stringify(want[key])}`,
      );
    }
  }
  const model = await ViT.fromPretrained(out);
  const file = openSafetensors(join(out, 'model.safetensors'));
  const optFile = openSafetensors(join(out, OPTIMIZER_FILE));
  try {
    for (const [name, f] of [
      ['model.safetensors', file],
      [OPTIMIZER_FILE, optFile],
    ] as const) {
      if (f.metadata.step !== String(state.step)) {
        throw new EinopsError(
          `--resume: ${join(out, name)} is from step ${f.metadata.step}, ${STATE_FILE} from step ${state.step}: the checkpoint is incomplete`,
        );
      }
    }
    const opt = new AdamW(model.parameters(), { weightDecay: state.options.weightDecay });
    const tensors = new Map(
      optFile.keys().map((k) => [k, { shape: optFile.info(k).shape, data: optFile.readFloat32(k) }]),
    );
    opt.importState({ step: Number(optFile.metadata.adamw_step), tensors });
    return { model, opt, state };
  } finally {
    file.close();
    optFile.close();
  }
}

interface TrainState {
  options: TrainerState['options'];
}

/** What `train` returns. */
export interface TrainResult {
  metrics: EpochMetrics[];
  out: string;
  /** True when stopped early (Ctrl-C or maxSteps) after saving. */
  interrupted: boolean;
  model: ViT;
  data: DataSplit;
}

/**
 * Trains a ViT and writes `<out>/{model.safetensors, config.json, optimizer.safetensors,
 * trainer_state.json, metrics.jsonl, curves.png, attention.png}`.
 *
 * @example
 * const { metrics, model } = await train({ out: 'runs/mnist' }); // tiny ViT on the embedded MNIST
 * console.log(metrics.at(-1)?.test_acc);
 * model.dispose();
 */
export async function train(options: TrainOptions): Promise<TrainResult> {
  const log = options.log ?? ((line: string) => console.log(line));
  const configName = options.config ?? 'tiny';
  const recipe = RECIPES[configName] ?? RECIPES.tiny;
  const opts: TrainState['options'] = {
    data: options.data ?? 'mnist',
    config: configName,
    seed: options.seed ?? 0,
    epochs: options.epochs ?? recipe.epochs,
    batchSize: options.batchSize ?? recipe.batchSize,
    lr: options.lr ?? recipe.lr,
    weightDecay: options.weightDecay ?? recipe.weightDecay,
    labelSmoothing: options.labelSmoothing ?? recipe.labelSmoothing,
    clip: options.clip ?? recipe.clip,
    shift: options.shift ?? recipe.shift,
    flip: options.flip ?? recipe.flip,
    pctStart: recipe.pctStart,
  };
  for (const [k, v] of Object.entries({ epochs: opts.epochs, batchSize: opts.batchSize })) {
    if (!Number.isSafeInteger(v) || v < 1)
      throw new EinopsError(`--${k} must be a positive integer, got ${v}`);
  }
  if (!(opts.lr > 0)) throw new EinopsError(`--lr must be positive, got ${opts.lr}`);

  const out = options.out;
  const planned =
    options.resume && existsSync(join(out, 'config.json'))
      ? resolveConfig(join(out, 'config.json'))
      : resolveConfig(configName);
  const data = loadData(opts.data, {
    limitTrain: options.limitTrain,
    limitTest: options.limitTest,
    imageSize: planned.image_size,
    channels: planned.num_channels === 1 ? 1 : 3,
  });
  mkdirSync(out, { recursive: true });
  const metricsPath = join(out, 'metrics.jsonl');

  let model: ViT;
  let opt: AdamW;
  let state: TrainerState;
  if (options.resume) {
    ({ model, opt, state } = await loadCheckpoint(out, { options: opts }));
    checkFits(model.config, data.train);
    log(`resuming ${out} at epoch ${state.epoch + 1}, step ${state.step}`);
  } else {
    if (existsSync(join(out, STATE_FILE))) {
      throw new EinopsError(
        `${out} already holds a training run: pass --resume to continue it, or choose another --out`,
      );
    }
    const cfg = configForData(planned, data.train, configName in PRESETS, log);
    checkFits(cfg, data.train);
    model = ViT.create(cfg, opts.seed);
    opt = new AdamW(model.parameters(), { weightDecay: opts.weightDecay });
    state = {
      epoch: 0,
      batchInEpoch: 0,
      step: 0,
      partial: { loss: 0, correct: 0, seen: 0, seconds: 0 },
      elapsed: 0,
      options: opts,
      config: cfg,
    };
    rmSync(metricsPath, { force: true });
  }

  const train = data.train;
  const perEpoch = batchCount(train.count, opts.batchSize);
  const totalSteps = perEpoch * opts.epochs;
  const schedule: Schedule = oneCycle({
    maxLr: opts.lr,
    totalSteps,
    pctStart: opts.pctStart,
    divFactor: 25,
    finalDivFactor: 1e4,
  });
  const params = model.parameters();
  const nameOf = new Map([...params].map(([name, v]) => [v.name, name]));
  const variables = [...params.values()];
  const augment = augmentFor(data, { pad: opts.shift, flip: opts.flip });

  const workers = options.workers ?? 0;
  const parallel = workers > 0 ? await ParallelGrads.create(model.config, { workers }) : undefined;
  let stop = false;
  const onSigint = () => {
    stop = true;
  };
  process.on('SIGINT', onSigint);
  const metrics: EpochMetrics[] = readMetrics(metricsPath).filter((m) => m.epoch <= state.epoch);
  const runStart = performance.now() / 1000 - state.elapsed;
  let interrupted = false;
  log(
    `training ${configName} on ${data.train.name} (${train.count} train / ${data.test.count} test images), ` +
      `${opts.epochs} epochs x ${perEpoch} steps, batch ${opts.batchSize}, backend ${tf.getBackend()}`,
  );
  try {
    while (state.epoch < opts.epochs) {
      const epoch = state.epoch + 1;
      const progress = new Progress({
        total: train.count,
        title: `epoch ${epoch}/${opts.epochs}`,
        tty: options.progress,
      });
      progress.update(state.partial.seen);
      const rng = epochRng(opts.seed, epoch);
      const skip = state.batchInEpoch;
      for (const b of batches(train, {
        batchSize: opts.batchSize,
        shuffle: true,
        rng,
        augment,
        skipBatches: skip,
      })) {
        const t0 = performance.now();
        const lr = schedule(state.step);
        const seed = opts.seed * 1_000_003 + state.step;
        let loss: number;
        let correct: number;
        if (parallel) {
          const r = await parallel.compute(model, b, { labelSmoothing: opts.labelSmoothing, seed });
          ({ loss, correct } = r);
          tf.tidy(() => {
            const named = opts.clip > 0 ? clipByGlobalNorm(r.grads, opts.clip).grads : r.grads;
            opt.step(named, lr);
          });
          tf.dispose([...r.grads.values()]);
        } else {
          [loss, correct] = tf.tidy(() => {
            const x = tensorFromBatch(b.images, b.size, train);
            const labelIds = tf.tensor1d(b.labels, 'int32');
            const onehot = tf.oneHot(labelIds, train.numClasses);
            let hits: tf.Tensor | undefined;
            const { value, grads } = tf.variableGrads(() => {
              const o = model.forward(x, { training: true, seed });
              // kept: variableGrads disposes everything else made in here
              hits = tf.keep(tf.sum(tf.cast(tf.equal(tf.argMax(o.logits, 1), labelIds), 'float32')));
              return tf.losses.softmaxCrossEntropy(
                onehot,
                o.logits,
                undefined,
                opts.labelSmoothing,
              ) as tf.Scalar;
            }, variables);
            let named = new Map(Object.entries(grads).map(([k, g]) => [nameOf.get(k)!, g]));
            if (opts.clip > 0) named = clipByGlobalNorm(named, opts.clip).grads;
            opt.step(named, lr);
            const both = tf.stack([value, hits!]).dataSync();
            hits!.dispose();
            return [both[0], both[1]];
          });
        }
        const seconds = (performance.now() - t0) / 1000;
        state.step++;
        state.batchInEpoch++;
        state.partial.loss += loss * b.size;
        state.partial.correct += correct;
        state.partial.seen += b.size;
        state.partial.seconds += seconds;
        progress.tick(b.size, {
          loss: state.partial.loss / state.partial.seen,
          acc: state.partial.correct / state.partial.seen,
        });
        await new Promise((resolve) => setImmediate(resolve)); // let Ctrl-C in
        if (stop || (options.maxSteps !== undefined && state.step >= options.maxSteps)) break;
      }
      progress.stop();
      if (
        stop ||
        (options.maxSteps !== undefined && state.step >= options.maxSteps && state.batchInEpoch < perEpoch)
      ) {
        state.elapsed = performance.now() / 1000 - runStart;
        await saveCheckpoint(out, model, opt, state, data);
        log(
          `stopped at epoch ${epoch}, step ${state.step}: checkpoint saved in ${out} (continue with --resume)`,
        );
        interrupted = true;
        break;
      }
      const test = evaluate(model, data.test);
      const row: EpochMetrics = {
        epoch,
        train_loss: state.partial.loss / state.partial.seen,
        train_acc: state.partial.correct / state.partial.seen,
        test_loss: test.loss,
        test_acc: test.acc,
        images_per_s: state.partial.seen / state.partial.seconds,
        elapsed_s: performance.now() / 1000 - runStart,
        lr: schedule(state.step - 1),
      };
      metrics.push(row);
      appendMetrics(metricsPath, { ...row });
      state.epoch = epoch;
      state.batchInEpoch = 0;
      state.partial = { loss: 0, correct: 0, seen: 0, seconds: 0 };
      state.elapsed = row.elapsed_s;
      await saveCheckpoint(out, model, opt, state, data);
      options.onEpoch?.(row);
      log(
        `epoch ${epoch}/${opts.epochs}  train loss ${row.train_loss.toFixed(4)} acc ${(100 * row.train_acc).toFixed(2)}%  ` +
          `test loss ${row.test_loss.toFixed(4)} acc ${(100 * row.test_acc).toFixed(2)}%  ` +
          `${row.images_per_s.toFixed(0)} img/s  ${row.elapsed_s.toFixed(1)} s`,
      );
      if (options.maxSteps !== undefined && state.step >= options.maxSteps) {
        interrupted = state.epoch < opts.epochs;
        break;
      }
    }
  } finally {
    process.off('SIGINT', onSigint);
    await parallel?.dispose();
  }
  if (!interrupted && options.plots !== false) {
    await writePlots(out, model, data, metrics);
    log(`wrote ${join(out, 'curves.png')} and ${join(out, 'attention.png')}`);
  }
  return { metrics, out, interrupted, model, data };
}

function readMetrics(path: string): EpochMetrics[] {
  if (!existsSync(path)) return [];
  return readFileSync(path, 'utf8')
    .split('\n')
    .filter((l) => l.trim() !== '')
    .map((l) => JSON.parse(l) as EpochMetrics);
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
