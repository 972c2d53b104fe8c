// The image preprocessing that goes with a checkpoint: HF's preprocessor_config.json when present.
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { CheckpointError } from '../errors.js';
import { HF_VIT_PREPROCESSING, type PreprocessConfig } from '../image/preprocess.js';
import { POLARITIES, type Polarity } from '../image/polarity.js';
import type { ViTConfig } from './config.js';

export const PREPROCESSOR_FILE = 'preprocessor_config.json';

/**
 * einvit's own field in preprocessor_config.json: the polarity of the training images,
 * `"light-on-dark"` (MNIST: white strokes on black) or `"dark-on-light"`; absent when mixed or unknown.
 * HuggingFace's ViTImageProcessor ignores fields it does not know.
 */
export const POLARITY_FIELD = 'einvit_polarity';

/**
 * Resize and normalisation for a model folder: from its `preprocessor_config.json` (HF
 * ViTImageProcessor fields `size`, `image_mean`, `image_std`, and einvit's `einvit_polarity`) when
 * present, else HF ViT's defaults (resize to image_size, mean 0.5, std 0.5 per channel).
 *
 * @example
 * const pre = preprocessingFor('runs/mnist', model.config);
 * pre.polarity; // 'light-on-dark'
 */
export function preprocessingFor(dir: string, cfg: ViTConfig): PreprocessConfig {
  const path = join(dir, PREPROCESSOR_FILE);
  if (!existsSync(path)) return preprocessingFromJson(undefined, cfg, path);
  let json: unknown;
  try {
    json = JSON.parse(readFileSync(path, 'utf8'));
  } catch (e) {
    throw new CheckpointError(`${path}: not valid JSON (${(e as Error).message})`, { cause: e });
  }
  return preprocessingFromJson(json, cfg, path);
}

/**
 * `preprocessingFor` on an already parsed `preprocessor_config.json` (`undefined`: HF ViT's
 * defaults); `path` names the file in errors. For callers without a file system (the web page).
 *
 * @example
 * const pre = preprocessingFromJson(JSON.parse(text), model.config, 'preprocessor_config.json');
 */
export function preprocessingFromJson(raw: unknown, cfg: ViTConfig, path: string): PreprocessConfig {
  const channels = cfg.num_channels === 1 ? 1 : 3;
  const fallback: PreprocessConfig = {
    size: cfg.image_size,
    mean: HF_VIT_PREPROCESSING.mean.slice(0, channels),
    std: HF_VIT_PREPROCESSING.std.slice(0, channels),
    channels,
  };
  if (raw === undefined) return fallback;
  if (raw === null || typeof raw !== 'object' || Array.isArray(raw)) {
    throw new CheckpointError(`${path}: expected a JSON object`);
  }
  const json = raw as Record<string, unknown>;
  const list = (key: string): number[] | undefined => {
    const v = json[key];
    if (v === undefined) return undefined;
    const arr = typeof v === 'number' ? [v] : v;
    if (!Array.isArray(arr) || arr.some((x) => typeof x !== 'number')) {
      throw new CheckpointError(`${path}: '${key}' must be a number or a list of numbers`);
    }
    return arr.length === 1 && channels === 3 ? [arr[0], arr[0], arr[0]] : (arr as number[]);
  };
  const size = json.size as { height?: number; width?: number; shortest_edge?: number } | number | undefined;
  const side =
    typeof size === 'number' ? size : (size?.height ?? size?.shortest_edge ?? (cfg.image_size as number));
  const mean = list('image_mean') ?? fallback.mean;
  const std = list('image_std') ?? fallback.std;
  if (mean.length !== channels || std.length !== channels) {
    throw new CheckpointError(
      `${path}: image_mean/image_std need ${channels} values for a ${channels}-channel model`,
    );
  }
  const polarity = json[POLARITY_FIELD];
  if (polarity !== undefined && !POLARITIES.includes(polarity as Polarity)) {
    throw new CheckpointError(
      `${path}: '${POLARITY_FIELD}' must be ${POLARITIES.map((p) => `"${p}"`).join(' or ')}, got ${JSON.stringify(polarity)}`,
    );
  }
  return { size: side, mean, std, channels, ...(polarity ? { polarity: polarity as Polarity } : {}) };
}

/**
 * HF ViTImageProcessor's preprocessor_config.json for a model trained here, plus `einvit_polarity`
 * when the training data has one.
 *
 * @example
 * preprocessorJson(PRESETS.tiny, [0.1307], [0.3081], 'light-on-dark').einvit_polarity; // 'light-on-dark'
 */
export function preprocessorJson(
  cfg: ViTConfig,
  mean: readonly number[],
  std: readonly number[],
  polarity?: Polarity,
): Record<string, unknown> {
  return {
    do_normalize: true,
    do_rescale: true,
    do_resize: true,
    image_mean: [...mean],
    image_std: [...std],
    image_processor_type: 'ViTImageProcessor',
    resample: 2,
    rescale_factor: 1 / 255,
    size: { height: cfg.image_size, width: cfg.image_size },
    ...(polarity ? { [POLARITY_FIELD]: polarity } : {}),
  };
}
