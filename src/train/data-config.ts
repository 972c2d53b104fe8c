// What the data decides about a model: its class names and count (config.json) and its
// preprocessing, polarity included (preprocessor_config.json).
import type { ViTConfig } from '../vit/config.js';
import { preprocessorJson } from '../vit/preprocessor.js';
import { datasetPolarity, type Polarity } from '../image/polarity.js';
import type { DataSplit, Dataset } from './data.js';

/** Whether the labels are HuggingFace's placeholders (`LABEL_0`, `LABEL_1`, ...), i.e. never named. */
function placeholderLabels(cfg: ViTConfig): boolean {
  return Object.entries(cfg.id2label).every(([k, v]) => v === `LABEL_${k}`);
}

function sameLabels(cfg: ViTConfig, names: readonly string[]): boolean {
  return cfg.num_labels === names.length && names.every((n, i) => cfg.id2label[String(i)] === n);
}

function preview(names: readonly string[]): string {
  const shown = names.slice(0, 10).join(', ');
  return names.length > 10 ? `${shown}, ... (${names.length})` : shown;
}

/**
 * Fits a config's classes to the data: the labels become the data's class names (for `folder:` data,
 * the sub-folder names), so config.json's `id2label`/`label2id` name what `eval` names. A preset
 * (`preset` true) also takes the data's number of classes; a config file keeps its `num_labels`, and a
 * mismatch is left for `checkFits` to report. Each change is reported through `log`.
 *
 * @example
 * const cfg = configForData(PRESETS.tiny, split.train, true, console.log);
 * // config: 2 classes (num_labels 10 -> 2), labels from the data: seven, three
 */
export function configForData(
  cfg: ViTConfig,
  data: Pick<Dataset, 'name' | 'numClasses' | 'classNames'>,
  preset: boolean,
  log: (line: string) => void = () => {},
): ViTConfig {
  const names = data.classNames;
  if (sameLabels(cfg, names)) return cfg;
  const id2label = Object.fromEntries(names.map((n, i) => [String(i), n]));
  if (cfg.num_labels !== data.numClasses) {
    if (!preset) return cfg;
    log(
      `config: ${data.numClasses} classes (num_labels ${cfg.num_labels} -> ${data.numClasses} for ${data.name}), labels: ${preview(names)}`,
    );
    return { ...cfg, num_labels: data.numClasses, id2label };
  }
  const before = placeholderLabels(cfg) ? '' : ` (instead of ${preview(Object.values(cfg.id2label))})`;
  log(`config: labels from ${data.name}: ${preview(names)}${before}`);
  return { ...cfg, id2label };
}

const polarities = new WeakMap<DataSplit, Polarity | undefined>();

/**
 * The training data's polarity (see {@link datasetPolarity}), computed once per split.
 *
 * @example
 * polarityOf(loadMnist()); // 'light-on-dark'
 */
export function polarityOf(data: DataSplit): Polarity | undefined {
  if (!polarities.has(data)) {
    polarities.set(data, datasetPolarity({ ...data.train, mean: data.mean, std: data.std }));
  }
  return polarities.get(data);
}

/**
 * preprocessor_config.json for a model trained on `data`: its normalisation statistics and, when the
 * images share one, their polarity (`einvit_polarity`).
 *
 * @example
 * writeJsonAtomic(join(out, PREPROCESSOR_FILE), preprocessorForData(model.config, split));
 */
export function preprocessorForData(cfg: ViTConfig, data: DataSplit): Record<string, unknown> {
  return preprocessorJson(cfg, data.mean, data.std, polarityOf(data));
}
