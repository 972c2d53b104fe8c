// The tfjs trainer engine: the eager step (loss and gradients on this thread or split over worker
// threads, see parallel.ts), global-norm clipping and AdamW, on whichever tfjs backend is active.
import { RuntimeFailure } from '../errors.js';
import { tf } from '../tf.js';
import type { ViT } from '../vit/model.js';
import { batches } from './batches.js';
import type { Dataset } from './data.js';
import type { EvalResult, StepOptions, TrainEngine } from './engine.js';
import { AdamW, clipByGlobalNorm, type OptimizerState } from './optimizer.js';
import { batchGradients, ParallelGrads, type GradBatch } from './parallel.js';

/**
 * One eager optimisation step on `batch`: loss and gradients (on this thread, or split over
 * `parallel`'s worker threads), gradient clipping, AdamW. Returns the batch's mean loss and its
 * correct count.
 *
 * @example
 * const { loss } = await trainStep(model, opt, { images, labels, size: 64 }, { lr: 1e-3, labelSmoothing: 0.1, clip: 1, seed: 0 });
 */
export async function trainStep(
  model: ViT,
  opt: AdamW,
  batch: GradBatch,
  o: StepOptions,
  parallel?: ParallelGrads,
): Promise<{ loss: number; correct: number }> {
  const grad = { labelSmoothing: o.labelSmoothing, seed: o.seed };
  const r = parallel ? await parallel.compute(model, batch, grad) : batchGradients(model, batch, grad);
  try {
    tf.tidy(() => opt.step(o.clip > 0 ? clipByGlobalNorm(r.grads, o.clip).grads : r.grads, o.lr));
  } finally {
    tf.dispose([...r.grads.values()]);
  }
  return { loss: r.loss, correct: r.correct };
}

/**
 * Mean loss and accuracy of an eager model over a dataset, and the predictions (for confusion
 * matrices).
 *
 * @example
 * const { acc } = evaluateEager(model, data.test);
 */
export function evaluateEager(model: ViT, ds: Dataset, batchSize = 500): EvalResult {
  const predictions = new Int32Array(ds.count);
  let lossSum = 0;
  let at = 0;
  for (const b of batches(ds, { batchSize, shuffle: false })) {
    const [loss, pred] = tf.tidy(() => {
      const x = tf.tensor4d(b.images, [b.size, ds.channels, ds.height, ds.width]);
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

/**
 * The eager step reads the loss and gradients synchronously (`dataSync`); tfjs' WebGPU backend can do
 * that only where `OffscreenCanvas` exists (browsers), so in Node it would fail deep inside tfjs with a
 * raw ReferenceError. Refuse before training starts instead.
 */
function checkSyncReads(): void {
  if (
    tf.getBackend() === 'webgpu' &&
    typeof (globalThis as { OffscreenCanvas?: unknown }).OffscreenCanvas === 'undefined'
  ) {
    throw new RuntimeFailure(
      "the tfjs engine cannot train on the webgpu backend outside a browser: its step reads values synchronously, which tfjs' WebGPU backend supports only where OffscreenCanvas exists; train with --engine onnxruntime or --backend wasm",
    );
  }
}

/**
 * The tfjs engine: trains `model`'s own variables with `opt`; `workers` extra threads compute shards
 * of each batch's gradient.
 *
 * @example
 * const engine = await TfjsEngine.create(model, new AdamW(model.parameters(), { weightDecay: 0.05 }), 1);
 */
export class TfjsEngine implements TrainEngine {
  readonly name = 'tfjs' as const;

  private constructor(
    private readonly model: ViT,
    private readonly opt: AdamW,
    private readonly parallel: ParallelGrads | undefined,
  ) {}

  get description(): string {
    const w = this.parallel ? this.parallel.threads - 1 : 0;
    return `tfjs on ${tf.getBackend()}${w > 0 ? `, ${w} worker thread${w === 1 ? '' : 's'}` : ''}`;
  }

  /** Takes ownership of `opt` (disposed with the engine). */
  static async create(model: ViT, opt: AdamW, workers: number): Promise<TfjsEngine> {
    try {
      checkSyncReads();
      const parallel = workers > 0 ? await ParallelGrads.create(model.config, { workers }) : undefined;
      return new TfjsEngine(model, opt, parallel);
    } catch (e) {
      opt.dispose();
      throw e;
    }
  }

  step(batch: GradBatch, o: StepOptions): Promise<{ loss: number; correct: number }> {
    return trainStep(this.model, this.opt, batch, o, this.parallel);
  }

  evaluate(ds: Dataset): Promise<EvalResult> {
    return Promise.resolve(evaluateEager(this.model, ds));
  }

  syncModel(): void {
    // The model's variables are what trains.
  }

  optimizerState(): OptimizerState {
    return this.opt.exportState();
  }

  async dispose(): Promise<void> {
    this.opt.dispose();
    await this.parallel?.dispose();
  }
}
