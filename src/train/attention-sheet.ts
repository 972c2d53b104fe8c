// attention.png: class-token attention of the last layer over a few test images, as in the ViT paper.
import { tf } from '../tf.js';
import type { ViT } from '../vit/model.js';
import { classTokenAttention, attentionRollout } from '../vit/attention.js';
import { gridSize } from '../vit/config.js';
import { chwToRgb, overlayHeatmap, tileImages, upscaleNearest } from '../image/draw.js';
import { writePng } from '../image/png.js';
import type { RgbImage } from '../image/decode.js';
import type { DataSplit } from './data.js';

/**
 * Writes a sheet with one column per image: the image, its last-layer class-token attention, and
 * the attention rollout across layers, each overlaid on the image.
 *
 * @example
 * drawAttentionSheet('runs/x/attention.png', model, loadMnist(), 8);
 */
export function drawAttentionSheet(path: string, model: ViT, data: DataSplit, count: number): void {
  const ds = data.test;
  const n = Math.min(count, ds.count);
  const per = ds.channels * ds.height * ds.width;
  const grid = gridSize(model.config);
  const scale = Math.max(1, Math.round(112 / ds.width));
  // Evenly spaced samples: the test sets are stored class by class, so this shows several classes.
  const picks = Array.from({ length: n }, (_, i) => Math.floor((i * ds.count) / n));
  const chosen = new Float32Array(n * per);
  picks.forEach((p, i) => chosen.set(ds.images.subarray(p * per, (p + 1) * per), i * per));
  const [last, rollout] = tf.tidy(() => {
    const x = tf.tensor4d(chosen, [n, ds.channels, ds.height, ds.width]);
    const out = model.forward(x, { outputAttentions: true });
    return [
      classTokenAttention(out.attentions!, grid, grid).dataSync() as Float32Array,
      attentionRollout(out.attentions!, grid, grid).dataSync() as Float32Array,
    ];
  });
  const rows: RgbImage[][] = [[], [], []];
  for (let i = 0; i < n; i++) {
    const img = upscaleNearest(
      chwToRgb(chosen.subarray(i * per, (i + 1) * per), ds.width, ds.height, data.mean, data.std),
      scale,
    );
    rows[0].push(img);
    rows[1].push(overlayHeatmap(img, last.subarray(i * grid * grid, (i + 1) * grid * grid), grid, grid, 0.6));
    rows[2].push(
      overlayHeatmap(img, rollout.subarray(i * grid * grid, (i + 1) * grid * grid), grid, grid, 0.6),
    );
  }
  writePng(path, tileImages([...rows[0], ...rows[1], ...rows[2]], n));
}
