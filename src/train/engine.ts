// Trainer engines: what runs a training step and the per-epoch evaluation. The host loop in
// trainer.ts (data order, augmentation, learning-rate schedule, checkpoints, Ctrl-C) is the same for
// both; an engine only turns batches into updated parameters and owns the optimizer state while the
// run is in memory.
//
// - `onnxruntime` (engine-onnx.ts): the whole step (forward, loss, backward, clipping, AdamW) as one
//   compiled graph on onnxruntime-node; parameters and moments live in host buffers swapped each step.
// - `tfjs` (engine-tfjs.ts): the eager trainer on any tfjs backend (wasm, cpu, tfjs-node(-gpu),
//   WebGPU), optionally data parallel over worker threads.
//
// Both save the same checkpoint (model.safetensors + optimizer.safetensors in AdamW's format), so a
// run may continue on the other engine.
import { loadOnnxruntime, onnxruntimeUnavailable } from '../onnx/runtime.js';
import type { Dataset } from './data.js';
import type { OptimizerState } from './optimizer.js';
import type { GradBatch } from './parallel.js';

/** The engines `einvit train --engine` accepts. */
export const ENGINES = ['onnxruntime', 'tfjs'] as const;
export type EngineName = (typeof ENGINES)[number];

/** What one optimisation step needs besides the batch. */
export interface StepOptions {
  lr: number;
  labelSmoothing: number;
  /** Global gradient-norm clip (0 = off). */
  clip: number;
  /** Dropout seed of the step. */
  seed: number;
}

/** Mean loss, accuracy and per-image predictions over a dataset. */
export interface EvalResult {
  loss: number;
  acc: number;
  predictions: Int32Array;
}

/**
 * A trainer engine holding a run's parameters and optimizer moments while it trains.
 *
 * @example
 * const engine = await createEngine('onnxruntime', model, opt, settings);
 * const { loss } = await engine.step(batch, { lr: 1e-3, labelSmoothing: 0.1, clip: 1, seed: 0 });
 * engine.syncModel(); // model's variables now hold the trained values (to save or plot)
 * await engine.dispose();
 */
export interface TrainEngine {
  readonly name: EngineName;
  /** A few words for the start line, e.g. `onnxruntime, 2 threads`. */
  readonly description: string;
  /** One optimisation step; returns the batch's mean loss and its count of correct predictions. */
  step(batch: GradBatch, o: StepOptions): Promise<{ loss: number; correct: number }>;
  /** Loss and accuracy of the current parameters on `ds`. */
  evaluate(ds: Dataset): Promise<EvalResult>;
  /** Writes the engine's current parameters into the model's variables (before saving or plotting). */
  syncModel(): void;
  /** The moments and step count in AdamW's format (what optimizer.safetensors holds). */
  optimizerState(): OptimizerState;
  /** Frees what the engine made (sessions, worker threads, optimizer tensors); not the model. */
  dispose(): Promise<void>;
}

/**
 * Picks the engine a run trains on. `requested` undefined means the default: onnxruntime where it
 * loads, else tfjs with one line saying why. An explicit `onnxruntime` that cannot load falls back the
 * same way (the rule: a failed load never stops a run, and nothing saved is touched).
 *
 * @example
 * const name = await chooseEngine(undefined, console.log); // 'onnxruntime' or 'tfjs'
 */
export async function chooseEngine(
  requested: EngineName | undefined,
  log: (line: string) => void,
): Promise<EngineName> {
  if (requested === 'tfjs') return 'tfjs';
  const ort = await loadOnnxruntime();
  if (ort) return 'onnxruntime';
  log(
    `${(onnxruntimeUnavailable() ?? 'onnxruntime-node could not be loaded').replace(/; using the tfjs path$/, '')}: ` +
      'training on the tfjs engine' +
      (requested === 'onnxruntime' ? ' (--engine onnxruntime was asked for)' : ''),
  );
  return 'tfjs';
}
