// Attention sheets, as in the ViT paper: for each image its input, the class token's last-layer
// attention and the attention rollout, with the prediction above. One drawing for both training's
// attention.png and `einvit attention`.
import { tf } from '../tf.js';
import { UsageError } from '../errors.js';
import type { ViT } from '../vit/model.js';
import { classTokenAttention, attentionRollout } from '../vit/attention.js';
import { gridSize } from '../vit/config.js';
import { chwToRgb, overlayHeatmap, upscaleNearest } from '../image/draw.js';
import { writePng } from '../image/png.js';
import type { RgbImage } from '../image/decode.js';
import { renderLabelledGrid } from './plot.js';
import type { DataSplit } from './data.js';

/** Row labels of every attention sheet, top to bottom. */
export const ATTENTION_ROWS: readonly string[][] = [
  ['input'],
  ['last layer', 'class token'],
  ['rollout', 'all layers'],
];

/** Maps and the prediction for a batch of model inputs. */
export interface AttentionMaps {
  /** Patches per side. */
  grid: number;
  /** Last-layer class-token attention, `grid * grid` values per image. */
  last: Float32Array;
  /** Attention rollout read at the class token, `grid * grid` values per image. */
  rollout: Float32Array;
  /** The top class of each image. */
  predicted: { index: number; label: string; prob: number }[];
}

/**
 * Runs the model once on `pixels` ([N, C, H, W], preprocessed) and returns both attention maps and the
 * predicted class with its probability, as plain arrays (no tensor is left behind).
 *
 * @example
 * const maps = attentionMaps(model, pixels);
 * maps.predicted[0]; // { index: 7, label: '7', prob: 0.98 }
 */
export function attentionMaps(model: ViT, pixels: tf.Tensor4D): AttentionMaps {
  if (!model.config.class_token) {
    throw new UsageError('attention maps need a model with a class token (this one has class_token false)');
  }
  if (model.config.num_labels < 1) {
    throw new UsageError('attention maps need a model with a classification head (num_labels is 0)');
  }
  const grid = gridSize(model.config);
  const [last, rollout, probs] = tf.tidy(() => {
    const out = model.forward(pixels, { outputAttentions: true });
    return [
      classTokenAttention(out.attentions!, grid, grid).dataSync() as Float32Array,
      attentionRollout(out.attentions!, grid, grid).dataSync() as Float32Array,
      tf.softmax(out.logits).arraySync() as number[][],
    ];
  });
  const predicted = probs.map((row) => {
    const index = row.indexOf(Math.max(...row));
    return { index, label: model.config.id2label[String(index)] ?? `LABEL_${index}`, prob: row[index] };
  });
  return { grid, last, rollout, predicted };
}

/** Integer enlargement that makes a `side`-pixel input about 112 pixels wide (28 -> 4x, 224 -> 1x). */
export function displayScale(side: number): number {
  return Math.max(1, Math.round(112 / side));
}

/**
 * A model input (normalised CHW) as it looks to the model, enlarged by {@link displayScale} with hard
 * pixel edges.
 *
 * @example
 * const shown = inputImage(x.data, 28, 28, [0.1307], [0.3081]); // 112x112 gray
 */
export function inputImage(
  chw: Float32Array,
  width: number,
  height: number,
  mean: readonly number[],
  std: readonly number[],
): RgbImage {
  return upscaleNearest(chwToRgb(chw, width, height, mean, std), displayScale(width));
}

/** One column of an attention sheet. */
export interface AttentionColumn {
  /** The input as displayed (see {@link inputImage}). */
  image: RgbImage;
  /** Last-layer and rollout maps, `grid * grid` values each. */
  last: Float32Array;
  rollout: Float32Array;
  /** Lines above the column, e.g. the file name and the predicted class. */
  labels: string[];
}

/**
 * Renders an attention sheet: one column per image; rows: the input, its last-layer class-token
 * attention and the attention rollout, each map overlaid on the input (viridis, 60%); the column's
 * labels (prediction) above it and the row names on the left.
 *
 * @example
 * writePng('maps.png', renderAttentionSheet(columns, 4, 'class-token attention'));
 */
export function renderAttentionSheet(columns: AttentionColumn[], grid: number, title?: string): RgbImage {
  if (columns.length === 0) throw new UsageError('renderAttentionSheet: no images');
  const g = grid * grid;
  const cells: RgbImage[][] = [[], [], []];
  for (const col of columns) {
    if (col.last.length !== g || col.rollout.length !== g) {
      throw new UsageError(
        `renderAttentionSheet: maps have ${col.last.length} and ${col.rollout.length} values, expected ${grid}x${grid}`,
      );
    }
    cells[0].push(col.image);
    cells[1].push(overlayHeatmap(col.image, col.last, grid, grid, 0.6));
    cells[2].push(overlayHeatmap(col.image, col.rollout, grid, grid, 0.6));
  }
  return renderLabelledGrid({
    cells,
    rowLabels: ATTENTION_ROWS.map((r) => [...r]),
    columnLabels: columns.map((c) => c.labels),
    title,
  });
}

/** `seven 98.1%`: a class and its probability. */
export function formatPrediction(p: { label: string; prob: number }): string {
  return `${p.label} ${(100 * p.prob).toFixed(1)}%`;
}

/**
 * Writes training's attention.png: `count` test images spread over the test set (so several classes
 * show), each with its true class, the predicted class and probability, and both attention maps.
 *
 * @example
 * drawAttentionSheet('runs/x/attention.png', model, loadMnist(), 8);
 */
export function drawAttentionSheet(path: string, model: ViT, data: DataSplit, count: number): void {
  const ds = data.test;
  const n = Math.min(count, ds.count);
  if (n < 1) throw new UsageError('drawAttentionSheet: the test set is empty');
  const per = ds.channels * ds.height * ds.width;
  // Evenly spaced samples: the test sets are stored class by class, so this shows several classes.
  const picks = Array.from({ length: n }, (_, i) => Math.floor((i * ds.count) / n));
  const chosen = new Float32Array(n * per);
  picks.forEach((p, i) => chosen.set(ds.images.subarray(p * per, (p + 1) * per), i * per));
  const x = tf.tensor4d(chosen, [n, ds.channels, ds.height, ds.width]);
  let maps: AttentionMaps;
  try {
    maps = attentionMaps(model, x);
  } finally {
    x.dispose();
  }
  const g = maps.grid * maps.grid;
  const columns = picks.map((p, i) => ({
    image: inputImage(chosen.subarray(i * per, (i + 1) * per), ds.width, ds.height, data.mean, data.std),
    last: maps.last.subarray(i * g, (i + 1) * g),
    rollout: maps.rollout.subarray(i * g, (i + 1) * g),
    labels: [`true ${ds.classNames[ds.labels[p]] ?? ds.labels[p]}`, formatPrediction(maps.predicted[i])],
  }));
  writePng(
    path,
    renderAttentionSheet(
      columns,
      maps.grid,
      `Class-token attention on ${ds.name}. Above each image: its true class, the predicted class and probability.`,
    ),
  );
}
