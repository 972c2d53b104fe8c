// `einvit attention`: the attention sheet of image files (the drawing training's attention.png uses).
import { ViT } from '../vit/model.js';
import { writePng } from '../image/png.js';
import type { InvertMode } from '../image/preprocess.js';
import {
  attentionMaps,
  formatPrediction,
  inputImage,
  renderAttentionSheet,
  type AttentionMaps,
} from '../train/attention-sheet.js';
import { loadInputs, shortName } from './predict.js';

/**
 * `einvit attention`: writes `out`, one column per image (its name, predicted class and probability
 * above; rows: the input as the model sees it, the last layer's class-token attention, the rollout).
 * Returns printable lines: a `note:` per image that was inverted to match the training data.
 *
 * @example
 * await attentionCommand('runs/mnist', ['seven.png'], 'maps.png');
 */
export async function attentionCommand(
  dir: string,
  paths: readonly string[],
  out: string,
  invert: InvertMode = 'auto',
): Promise<string[]> {
  const model = await ViT.fromPretrained(dir);
  try {
    const { pixels, inputs, mean, std } = loadInputs(dir, model, paths, invert);
    let maps: AttentionMaps;
    try {
      maps = attentionMaps(model, pixels);
    } finally {
      pixels.dispose();
    }
    const g = maps.grid * maps.grid;
    const columns = inputs.map((x, i) => ({
      image: inputImage(x.data, x.width, x.height, mean, std),
      last: maps.last.subarray(i * g, (i + 1) * g),
      rollout: maps.rollout.subarray(i * g, (i + 1) * g),
      labels: [
        shortName(paths[i]),
        formatPrediction(maps.predicted[i]),
        ...(x.inverted ? ['(inverted)'] : []),
      ],
    }));
    const title = `Class-token attention of ${dir}. Above each image: the file, the predicted class and probability.`;
    writePng(out, renderAttentionSheet(columns, maps.grid, title));
    return inputs.flatMap((x, i) => (x.note ? [`${paths[i]}: note: ${x.note}`] : []));
  } finally {
    model.dispose();
  }
}
