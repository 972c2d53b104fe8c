// `einvit predict`: the top classes of image files, through the preprocessing saved with the model.
import { basename } from 'node:path';
import { tf } from '../tf.js';
import { UsageError } from '../errors.js';
import { ViT } from '../vit/model.js';
import { preprocessingFor } from '../vit/preprocessor.js';
import { loadImage } from '../image/decode.js';
import { prepareImage, type InvertMode, type PreparedImage } from '../image/preprocess.js';

/** The values `--invert` takes. */
export const INVERT_MODES: readonly InvertMode[] = ['auto', 'always', 'never'];

/**
 * Checks an `--invert` value.
 *
 * @example
 * invertMode('never'); // 'never'
 */
export function invertMode(value: string | undefined): InvertMode {
  const v = value ?? 'auto';
  if (!INVERT_MODES.includes(v as InvertMode)) {
    throw new UsageError(`--invert must be ${INVERT_MODES.join(', ')}, got '${v}'`);
  }
  return v as InvertMode;
}

/** Model inputs for image files: one [N, C, H, W] tensor and, per image, what was done to it. */
export interface LoadedInputs {
  pixels: tf.Tensor4D;
  inputs: PreparedImage[];
  /** The mean and std the inputs were normalised with (to display them). */
  mean: readonly number[];
  std: readonly number[];
}

/**
 * Loads and preprocesses images with the model folder's preprocessor_config.json (inverting images of
 * the other polarity than the training data's unless `invert` is `'never'`).
 *
 * @example
 * const { pixels, inputs } = loadInputs('runs/mnist', model, ['digit.png']);
 * pixels.dispose();
 */
export function loadInputs(
  dir: string,
  model: ViT,
  paths: readonly string[],
  invert: InvertMode = 'auto',
): LoadedInputs {
  if (paths.length === 0) throw new UsageError('Give at least one image file');
  const pre = preprocessingFor(dir, model.config);
  const inputs = paths.map((p) => prepareImage(loadImage(p), pre, invert));
  const { channels, height, width } = inputs[0];
  const flat = new Float32Array(inputs.length * channels * height * width);
  inputs.forEach((x, i) => flat.set(x.data, i * x.data.length));
  return {
    pixels: tf.tensor4d(flat, [inputs.length, channels, height, width]),
    inputs,
    mean: pre.mean,
    std: pre.std,
  };
}

/**
 * `einvit predict`: the top `k` classes of each image, as printable lines; a `note:` line says when an
 * image was inverted to match the polarity of the training data.
 *
 * @example
 * (await predictCommand('runs/mnist', ['seven.png'], 3)).forEach((l) => console.log(l));
 */
export async function predictCommand(
  dir: string,
  paths: readonly string[],
  k = 5,
  invert: InvertMode = 'auto',
): Promise<string[]> {
  if (!Number.isSafeInteger(k) || k < 1) throw new UsageError(`--top must be a positive integer, got ${k}`);
  const model = await ViT.fromPretrained(dir);
  try {
    const { pixels, inputs } = loadInputs(dir, model, paths, invert);
    const { probs, top } = model.predict(pixels, k);
    tf.dispose([pixels, probs]);
    const lines: string[] = [];
    top.forEach((row, i) => {
      lines.push(paths[i]);
      if (inputs[i].note) lines.push(`  note: ${inputs[i].note}`);
      for (const p of row) lines.push(`  ${(100 * p.prob).toFixed(2).padStart(6)}%  ${p.label} (${p.index})`);
    });
    return lines;
  } finally {
    model.dispose();
  }
}

/** A file name short enough for a sheet's column header. */
export function shortName(path: string): string {
  return basename(path);
}
