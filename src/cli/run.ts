// The model commands of the CLI: eval here; predict and attention in predict.ts and attention.ts.
import { ViT } from '../vit/model.js';
import { checkFits, evaluateDetailed } from '../train/trainer.js';
import { loadData } from '../train/datasets.js';
import { formatConfusion, perClassAccuracy } from '../train/metrics.js';

// predict and attention live in their own files; re-exported for existing imports.
export { loadInputs, predictCommand } from './predict.js';
export { attentionCommand } from './attention.js';

/** `einvit eval`: accuracy, per-class accuracy and the confusion matrix. */
export async function evalCommand(dir: string, data: string): Promise<string[]> {
  const model = await ViT.fromPretrained(dir);
  try {
    const split = loadData(data, {
      imageSize: model.config.image_size,
      channels: model.config.num_channels === 1 ? 1 : 3,
    });
    const ds = split.test;
    checkFits(model.config, ds);
    const r = evaluateDetailed(model, ds);
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
    model.dispose();
  }
}
