// The model commands of the CLI: train, eval, predict, attention.
import { tf } from '../tf.js';
import { EinopsError } from '../errors.js';
import type { ViT } from '../vit/model.js';
import { gridSize } from '../vit/config.js';
import { preprocessingFor } from '../vit/preprocessor.js';
import { attentionRollout, classTokenAttention } from '../vit/attention.js';
import { loadImage, type RgbImage } from '../image/decode.js';
import { preprocess } from '../image/preprocess.js';
import { resizeBilinear } from '../image/resize.js';
import { overlayHeatmap, tileImages } from '../image/draw.js';
import { writePng } from '../image/png.js';
import { checkFits } from '../train/trainer.js';
import { evaluateRunner, openModel, type RuntimeChoice } from './runtime.js';
import { loadData } from '../train/datasets.js';
import { formatConfusion, perClassAccuracy } from '../train/metrics.js';

/** Loads and preprocesses images for a model folder into one [N, C, H, W] tensor. */
export function loadPixels(
  dir: string,
  model: ViT,
  paths: readonly string[],
): { pixels: tf.Tensor4D; images: RgbImage[] } {
  if (paths.length === 0) throw new EinopsError('Give at least one image file');
  const pre = preprocessingFor(dir, model.config);
  const images = paths.map((p) => loadImage(p));
  const inputs = images.map((img) => preprocess(img, pre));
  const { channels, height, width } = inputs[0];
  const flat = new Float32Array(inputs.length * channels * height * width);
  inputs.forEach((x, i) => flat.set(x.data, i * x.data.length));
  return { pixels: tf.tensor4d(flat, [inputs.length, channels, height, width]), images };
}

/** `einvit predict`: the top classes of each image, as printable lines. */
export async function predictCommand(
  dir: string,
  paths: readonly string[],
  k = 5,
  runtime: RuntimeChoice = 'auto',
): Promise<string[]> {
  const runner = await openModel(dir, { runtime });
  try {
    const { pixels } = loadPixels(dir, runner.model, paths);
    const { probs, top } = await runner.predict(pixels, k);
    tf.dispose([pixels, probs]);
    const lines: string[] = [];
    top.forEach((row, i) => {
      lines.push(paths[i]);
      for (const p of row) lines.push(`  ${(100 * p.prob).toFixed(2).padStart(6)}%  ${p.label} (${p.index})`);
    });
    return lines;
  } finally {
    await runner.dispose();
  }
}

/**
 * `einvit attention`: one row per image: the image, the last layer's class-token attention and the
 * attention rollout across layers, overlaid on the image.
 */
export async function attentionCommand(
  dir: string,
  paths: readonly string[],
  out: string,
  runtime: RuntimeChoice = 'auto',
): Promise<void> {
  const runner = await openModel(dir, { runtime, outputAttentions: true });
  try {
    const model = runner.model;
    if (!model.config.class_token) throw new EinopsError('attention maps need a model with a class token');
    const { pixels, images } = loadPixels(dir, model, paths);
    const grid = gridSize(model.config);
    const o = await runner.forward(pixels, { outputAttentions: true });
    const [last, rollout] = tf.tidy(() => {
      return [
        classTokenAttention(o.attentions!, grid, grid).dataSync() as Float32Array,
        attentionRollout(o.attentions!, grid, grid).dataSync() as Float32Array,
      ];
    });
    tf.dispose([pixels, o.logits, ...o.attentions!]);
    const cells: RgbImage[] = [];
    images.forEach((img, i) => {
      const side = 224;
      const shown = resizeBilinear(img, side, Math.max(1, Math.round((img.height / img.width) * side)));
      const g = grid * grid;
      cells.push(shown);
      cells.push(overlayHeatmap(shown, last.subarray(i * g, (i + 1) * g), grid, grid, 0.6));
      cells.push(overlayHeatmap(shown, rollout.subarray(i * g, (i + 1) * g), grid, grid, 0.6));
    });
    writePng(out, tileImages(cells, 3));
  } finally {
    await runner.dispose();
  }
}

/** `einvit eval`: accuracy, per-class accuracy and the confusion matrix. */
export async function evalCommand(
  dir: string,
  data: string,
  runtime: RuntimeChoice = 'auto',
): Promise<string[]> {
  const runner = await openModel(dir, { runtime });
  try {
    const model = runner.model;
    const split = loadData(data, {
      imageSize: model.config.image_size,
      channels: model.config.num_channels === 1 ? 1 : 3,
    });
    const ds = split.test;
    checkFits(model.config, ds);
    const r = await evaluateRunner(runner, ds);
    const perClass = perClassAccuracy(r.matrix);
    return [
      `model ${dir} on ${ds.name} (${ds.count} test images)`,
      `accuracy ${(100 * r.acc).toFixed(2)}%   loss ${r.loss.toFixed(4)}`,
      'per-class accuracy:',
      ...perClass.map((a, i) => `  ${ds.classNames[i].padEnd(12)} ${(100 * a).toFixed(2)}%`),
      'confusion matrix (rows: true class, columns: predicted):',
      formatConfusion(r.matrix, ds.classNames),
    ];
  } finally {
    await runner.dispose();
  }
}
