// One training step of the eager trainer on a GPU backend, compared with the same step on a CPU
// backend: the parameter gradients of `batchGradients` (src/train/parallel.ts: training-mode forward
// with dropout, label-smoothed cross-entropy, tf.variableGrads) and the parameters after one AdamW
// step (src/train/optimizer.ts). Loaded by the page only when the e2e test asks for it.
//
// It needs synchronous reads (batchGradients ends in dataSync), which tfjs' WebGL backend has and its
// WebGPU backend has in browsers only (through OffscreenCanvas): in Node on Dawn it throws
// "OffscreenCanvas is not defined", so this check runs in the browser.
import { ready } from '../../src/backends/index.js';
import { tf } from '../../src/tf.js';
import { batchGradients } from '../../src/train/parallel.js';
import { AdamW } from '../../src/train/optimizer.js';
import { Rng } from '../../src/train/random.js';
import { PRESETS, type ViTConfig } from '../../src/vit/config.js';
import { ViT } from '../../src/vit/model.js';
import type { TensorData } from '../../src/vit/safetensors.js';
import { onGpuKernels } from './checks.js';

/** One parameter's differences between the GPU and the reference step. */
export interface StepDiff {
  name: string;
  /** Gradient: max |gpu - ref| over the elements, divided by max |ref| (the raw max when ref is all zero). */
  grad: number;
  /** Parameter after the AdamW step: max |gpu - ref|, in units of the learning rate (one step's size). */
  param: number;
  /** Elements whose updated value differs by more than 1% of the learning rate. */
  paramOff: number;
  /** Elements of the parameter. */
  size: number;
}

/** The outcome of {@link gradientCheck}. */
export interface GradientReport {
  backend: string;
  reference: string;
  loss: { gpu: number; reference: number };
  /** Parameters with a gradient on one backend and not on the other. */
  missing: string[];
  diffs: StepDiff[];
  /** Tensors left behind on the GPU backend by the step (must be 0). */
  leaked: number;
  ms: { gpu: number; reference: number };
}

/** The tiny MNIST ViT with dropout on, so the check covers the dropout masks' gradients too. */
const CONFIG: ViTConfig = { ...PRESETS.tiny, hidden_dropout_prob: 0.1, attention_probs_dropout_prob: 0.1 };
const BATCH = 8;
const LR = 1e-3;
const OPTS = { labelSmoothing: 0.1, seed: 5 };

interface Step {
  loss: number;
  grads: Map<string, Float32Array>;
  after: Map<string, Float32Array>;
  ms: number;
}

async function download(m: Map<string, tf.Tensor>): Promise<Map<string, Float32Array>> {
  return new Map(
    await Promise.all([...m].map(async ([k, t]) => [k, Float32Array.from(await t.data())] as const)),
  );
}

/** One step on the active backend: gradients, then AdamW (weight decay 0.05, timm's no-decay rule). */
async function step(
  params: Map<string, TensorData>,
  images: Float32Array,
  labels: Int32Array,
): Promise<Step> {
  const model = ViT.fromParameters(CONFIG, params);
  const opt = new AdamW(model.parameters(), { weightDecay: 0.05 });
  try {
    const t0 = performance.now();
    const r = batchGradients(model, { images, labels, size: BATCH }, OPTS);
    try {
      const grads = await download(r.grads);
      opt.step(r.grads, LR);
      const after = await download(model.parameters());
      return { loss: r.loss, grads, after, ms: performance.now() - t0 };
    } finally {
      tf.dispose([...r.grads.values()]);
    }
  } finally {
    opt.dispose();
    model.dispose();
  }
}

function relDiff(a: Float32Array, b: Float32Array): number {
  let err = 0;
  let scale = 0;
  for (let i = 0; i < b.length; i++) {
    err = Math.max(err, Math.abs(a[i] - b[i]));
    scale = Math.max(scale, Math.abs(b[i]));
  }
  return scale === 0 ? err : err / scale;
}

function paramDiff(a: Float32Array, b: Float32Array): { param: number; paramOff: number; size: number } {
  let param = 0;
  let paramOff = 0;
  for (let i = 0; i < b.length; i++) {
    const d = Math.abs(a[i] - b[i]) / LR;
    param = Math.max(param, d);
    if (d > 0.01) paramOff++;
  }
  return { param, paramOff, size: b.length };
}

/**
 * Runs one training step of a freshly initialised tiny ViT (seed 1, batch 8, dropout 0.1, label
 * smoothing 0.1) on `reference` and on `backend` (with tfjs' CPU forwarding off, so every op runs a
 * shader), from the same weights and batch; returns per-parameter differences of the gradients and
 * of the parameters after one AdamW step. Leaves `reference` active.
 *
 * @example
 * const r = await gradientCheck('webgl');
 * const worst = Math.max(...r.diffs.map((d) => d.grad));
 */
export async function gradientCheck(backend: string, reference = 'wasm'): Promise<GradientReport> {
  const rng = new Rng(11);
  const pixels = CONFIG.num_channels * CONFIG.image_size * CONFIG.image_size;
  const images = Float32Array.from({ length: BATCH * pixels }, () => rng.nextFloat() * 2 - 1);
  const labels = Int32Array.from({ length: BATCH }, (_, i) => i % CONFIG.num_labels);
  await ready(reference);
  const init = ViT.create(CONFIG, 1);
  const params = init.state();
  init.dispose();
  const ref = await step(params, images, labels);
  let gpu: Step;
  let leaked: number;
  try {
    await ready(backend);
    const before = tf.memory().numTensors;
    gpu = await onGpuKernels(() => step(params, images, labels));
    leaked = tf.memory().numTensors - before;
  } finally {
    await ready(reference);
  }
  const names = new Set([...ref.grads.keys(), ...gpu.grads.keys()]);
  const missing = [...names].filter((n) => !ref.grads.has(n) || !gpu.grads.has(n));
  const diffs = [...names]
    .filter((n) => !missing.includes(n))
    .map((name) => ({
      name,
      grad: relDiff(gpu.grads.get(name)!, ref.grads.get(name)!),
      ...paramDiff(gpu.after.get(name)!, ref.after.get(name)!),
    }));
  return {
    backend,
    reference,
    loss: { gpu: gpu.loss, reference: ref.loss },
    missing,
    diffs,
    leaked,
    ms: { gpu: gpu.ms, reference: ref.ms },
  };
}
