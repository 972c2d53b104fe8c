// `--runtime` of predict / eval / attention / conformance: the compiled model on onnxruntime where it
// loads (the default), or the eager tfjs model. One interface for both, so the commands are written once.
import { tf } from '../tf.js';
import { EinvitError, RuntimeFailure, UsageError } from '../errors.js';
import { loadOnnxruntime, onnxruntimeUnavailable } from '../onnx/runtime.js';
import { ViT, type ForwardOutput, type Prediction } from '../vit/model.js';
import type { CompiledForwardOptions, CompiledViT } from '../vit/compiled.js';
import type { Dataset } from '../train/data.js';
import { confusionMatrix } from '../train/metrics.js';

/** Which engine runs a model: 'auto' (onnxruntime where it loads, else tfjs), or one of them. */
export type RuntimeChoice = 'auto' | 'onnxruntime' | 'tfjs';

/**
 * Parses the `--runtime` flag.
 *
 * @example
 * parseRuntime('tfjs'); // 'tfjs'
 */
export function parseRuntime(value: string | undefined): RuntimeChoice {
  const v = value ?? 'auto';
  if (v !== 'auto' && v !== 'onnxruntime' && v !== 'tfjs') {
    throw new UsageError(`--runtime must be auto, onnxruntime or tfjs, got '${v}'`, { rule: 'runtime' });
  }
  return v;
}

/** A loaded model on one engine, with the ViT forward contract (asynchronous for both). */
export interface ModelRunner {
  readonly model: ViT;
  /** 'onnxruntime' or 'tfjs'. */
  readonly runtime: 'onnxruntime' | 'tfjs';
  forward(pixels: tf.Tensor, opts?: CompiledForwardOptions): Promise<ForwardOutput>;
  predict(pixels: tf.Tensor, k: number): Promise<{ probs: tf.Tensor; top: Prediction[][] }>;
  dispose(): Promise<void>;
}

/** Options of {@link openModel}. */
export interface OpenOptions {
  runtime?: RuntimeChoice;
  /** Outputs beyond the logits to compile in (for `attention` and conformance). */
  outputAttentions?: boolean;
  outputHiddenStates?: boolean;
  outputPreLogits?: boolean;
  outputLastHiddenState?: boolean;
  /** Where to say that onnxruntime was not available (default: stderr). */
  warn?: (message: string) => void;
}

/**
 * Loads a model folder and picks its engine. With 'auto', a machine where onnxruntime cannot load gets
 * one line on stderr and the tfjs path; with 'onnxruntime' it is a RuntimeFailure.
 *
 * @example
 * const runner = await openModel('runs/mnist', { runtime: 'auto' });
 * const { top } = await runner.predict(pixels, 5);
 * await runner.dispose();
 */
export async function openModel(dir: string, opts: OpenOptions = {}): Promise<ModelRunner> {
  const choice = opts.runtime ?? 'auto';
  const model = await ViT.fromPretrained(dir);
  try {
    if (choice !== 'tfjs') {
      const warn = opts.warn ?? ((m: string) => console.error(`einvit: ${m}`));
      const ort = await loadOnnxruntime();
      if (ort) {
        try {
          const compiled = await model.compile({
            outputAttentions: opts.outputAttentions,
            outputHiddenStates: opts.outputHiddenStates,
            outputPreLogits: opts.outputPreLogits,
            outputLastHiddenState: opts.outputLastHiddenState,
          });
          return compiledRunner(model, compiled);
        } catch (e) {
          // 'auto' promises an answer: a model the compiler or onnxruntime cannot take runs on tfjs.
          if (choice === 'onnxruntime' || !(e instanceof EinvitError)) throw e;
          warn(`cannot run ${dir} on onnxruntime (${e.message.split('\n')[0]}); using the tfjs path`);
          return eagerRunner(model);
        }
      }
      const why = onnxruntimeUnavailable() ?? 'onnxruntime-node could not be loaded';
      if (choice === 'onnxruntime') throw new RuntimeFailure(why, { rule: 'onnxruntime-unavailable' });
      warn(why);
    }
    return eagerRunner(model);
  } catch (e) {
    model.dispose();
    throw e;
  }
}

function eagerRunner(model: ViT): ModelRunner {
  return {
    model,
    runtime: 'tfjs',
    forward: (pixels, o = {}) => Promise.resolve(model.forward(pixels, o)),
    predict: (pixels, k) => Promise.resolve(model.predict(pixels, k)),
    dispose: () => {
      model.dispose();
      return Promise.resolve();
    },
  };
}

function compiledRunner(model: ViT, compiled: CompiledViT): ModelRunner {
  return {
    model,
    runtime: 'onnxruntime',
    forward: (pixels, o = {}) => compiled.forward(pixels, o),
    predict: (pixels, k) => compiled.predict(pixels, k),
    dispose: async () => {
      await compiled.dispose();
      model.dispose();
    },
  };
}

/**
 * Summed cross-entropy, accuracy and confusion matrix of a runner on a dataset, in batches (as the
 * trainer's `evaluateDetailed`, for either engine).
 *
 * @example
 * const { acc, matrix } = await evaluateRunner(runner, split.test);
 */
export async function evaluateRunner(
  runner: ModelRunner,
  ds: Dataset,
  batchSize = 500,
): Promise<{ loss: number; acc: number; matrix: number[][] }> {
  const predictions = new Int32Array(ds.count);
  const pixels = ds.channels * ds.height * ds.width;
  let lossSum = 0;
  for (let at = 0; at < ds.count; at += batchSize) {
    const size = Math.min(batchSize, ds.count - at);
    const x = tf.tensor4d(ds.images.subarray(at * pixels, (at + size) * pixels), [
      size,
      ds.channels,
      ds.height,
      ds.width,
    ]);
    const out = await runner.forward(x);
    const [loss, pred] = tf.tidy(() => {
      const labels = tf.oneHot(tf.tensor1d(ds.labels.subarray(at, at + size), 'int32'), ds.numClasses);
      const l = tf.losses.softmaxCrossEntropy(labels, out.logits, undefined, 0, tf.Reduction.SUM);
      return [l.dataSync()[0], tf.argMax(out.logits, 1).dataSync() as Int32Array];
    });
    tf.dispose([x, out.logits]);
    lossSum += loss;
    predictions.set(pred, at);
  }
  let correct = 0;
  for (let i = 0; i < ds.count; i++) if (predictions[i] === ds.labels[i]) correct++;
  return {
    loss: lossSum / ds.count,
    acc: correct / ds.count,
    matrix: confusionMatrix(predictions, ds.labels, ds.numClasses),
  };
}
