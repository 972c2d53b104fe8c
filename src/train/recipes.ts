// Training recipes found with bench/recipe.ts (the step graph on onnxruntime, the trainer's own data
// loading, batching, augmentation, schedule and per-epoch rng). Results of every trial are in
// bench/recipe-results.jsonl.
import type { TrainingRecipe } from './trainer.js';

/**
 * The main job's recipe for the tiny preset (patch 7, D 96, 4 layers, MLP 192) on the embedded MNIST
 * split: one-cycle to 2e-3 with 20% warm-up, AdamW 0.05, label smoothing 0.1, clip 1, batch 64,
 * shifts of 2 pixels, random rotations of up to 10 degrees and zooms of up to 10% (the usual MNIST
 * affine augmentation), 40 epochs. Measured (bench/recipe.ts at 30 epochs, onnxruntime step graph):
 * 97.95% test accuracy on seeds 0 and 1, 98.20% on seed 2 (the first recipe, 15 epochs of shifts:
 * 96.15%). The step graph's later rewrites (same maths, other float rounding) moved seed 0's 30-epoch
 * run to 97.55%, too close to the 97.5% the main job promises, so the recipe trains 40 epochs: 98.00%
 * (seed 0) and 98.30% (seed 1) with `einvit train`, ~130-140 s of training at ~2,500 img/s on the 2
 * idle cores; about 13 minutes on the eager tfjs engine (~400 img/s). A patch-4 model (D 64) costs
 * 1.7-2.5x the tiny model's step.
 *
 * @example
 * const o = { ...MNIST_AFFINE_RECIPE };
 * const aug = augmentFor(split, { pad: o.shift, flip: o.flip, rotate: o.rotate, scale: o.scale });
 */
export const MNIST_AFFINE_RECIPE: Readonly<TrainingRecipe> = Object.freeze({
  epochs: 40,
  batchSize: 64,
  lr: 2e-3,
  weightDecay: 0.05,
  labelSmoothing: 0.1,
  clip: 1,
  shift: 2,
  flip: false,
  pctStart: 0.2,
  rotate: 10,
  scale: 0.1,
});
