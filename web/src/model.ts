// The browser entry to the ViT: builds a model from the bytes of config.json + model.safetensors
// (fetched, or picked from disk), never from a path.
import { CheckpointError, DataError, EinvitError } from '../../src/errors.js';
import { tf } from '../../src/tf.js';
import { parseConfig } from '../../src/vit/config.js';
import { ViT } from '../../src/vit/model.js';
import { openSafetensors } from '../../src/vit/safetensors.js';
import { loadCheckpoint } from '../../src/vit/weights.js';
import { preprocessingFromJson } from '../../src/vit/preprocessor.js';
import { classTokenAttention } from '../../src/vit/attention.js';
import { preprocess, type PreprocessConfig } from '../../src/image/preprocess.js';
import type { RgbImage } from '../../src/image/decode.js';
import { runOrt, type OrtModel } from './ort.js';

/** A model with the preprocessing its folder asks for. */
export interface LoadedModel {
  model: ViT;
  pre: PreprocessConfig;
  name: string;
}

/** The files of a checkpoint folder, as bytes or text. */
export interface CheckpointFiles {
  name: string;
  config?: string;
  weights?: Uint8Array;
  preprocessor?: string;
}

function parseJson(text: string, where: string): unknown {
  try {
    return JSON.parse(text);
  } catch (e) {
    throw new CheckpointError(`${where}: not valid JSON (${(e as Error).message})`, { rule: 'config-file' });
  }
}

/**
 * Builds a ViT from a checkpoint folder's bytes (HF or timm key names).
 *
 * @example
 * const { model } = loadViTFromFiles({ name: 'mnist', config: text, weights: bytes });
 */
export function loadViTFromFiles(files: CheckpointFiles): LoadedModel {
  if (files.config === undefined) {
    throw new CheckpointError(`${files.name}: the folder has no config.json`, { rule: 'config-file' });
  }
  if (files.weights === undefined) {
    throw new CheckpointError(`${files.name}: the folder has no model.safetensors`, { rule: 'weights-file' });
  }
  const cfg = parseConfig(parseJson(files.config, `${files.name}/config.json`));
  const pre = preprocessingFromJson(
    files.preprocessor === undefined
      ? undefined
      : parseJson(files.preprocessor, `${files.name}/preprocessor_config.json`),
    cfg,
    `${files.name}/preprocessor_config.json`,
  );
  const file = openSafetensors(files.weights);
  try {
    return { model: ViT.fromParameters(cfg, loadCheckpoint(file, cfg)), pre, name: files.name };
  } finally {
    file.close();
  }
}

/**
 * Fetches `<base>/config.json`, `model.safetensors` and (optional) `preprocessor_config.json`.
 *
 * @example
 * const shipped = await fetchViT('./model', 'MNIST tiny');
 */
export async function fetchViT(base: string, name = base): Promise<LoadedModel> {
  const get = async (file: string): Promise<Response | undefined> => {
    const r = await fetch(`${base}/${file}`);
    return r.ok ? r : undefined;
  };
  const [config, weights, preprocessor] = await Promise.all([
    get('config.json'),
    get('model.safetensors'),
    get('preprocessor_config.json'),
  ]);
  return loadViTFromFiles({
    name,
    config: config ? await config.text() : undefined,
    weights: weights ? new Uint8Array(await weights.arrayBuffer()) : undefined,
    preprocessor: preprocessor ? await preprocessor.text() : undefined,
  });
}

/** One classification of one image. */
export interface Classification {
  top: { label: string; prob: number }[];
  /** Class-token attention of the last layer over the patch grid, row-major, or undefined without a class token. */
  attention?: { data: Float32Array; width: number; height: number };
  ms: number;
}

/** The model's input for one image: NCHW float32 pixels as its preprocessor makes them. */
export function modelInput(loaded: LoadedModel, img: RgbImage): { data: Float32Array; dims: number[] } {
  const { model, pre } = loaded;
  const x = preprocess(img, pre);
  if (x.channels !== model.config.num_channels) {
    throw new DataError(`the image has ${x.channels} channels, the model takes ${model.config.num_channels}`);
  }
  return { data: x.data, dims: [1, x.channels, x.height, x.width] };
}

/**
 * Top-k classes and the class-token map from a forward pass's logits `[1, classes]` and attention
 * probabilities (one `[1, heads, T, T]` tensor per layer): the same code for every runtime, so tfjs
 * and onnxruntime-web results are drawn alike. Disposes nothing it was given.
 */
async function summarise(
  loaded: LoadedModel,
  logits: tf.Tensor,
  attentions: tf.Tensor[],
  k: number,
): Promise<Omit<Classification, 'ms'>> {
  const cfg = loaded.model.config;
  const side = cfg.image_size / cfg.patch_size;
  const [probs, att] = tf.tidy(() => {
    const p = tf.softmax(logits);
    const a = cfg.class_token ? classTokenAttention(attentions, side, side) : undefined;
    return [p, a] as const;
  });
  try {
    const [pv, av] = await Promise.all([probs.data(), att ? att.data() : Promise.resolve(undefined)]);
    const labels = cfg.id2label ?? {};
    const order = Array.from(pv.keys()).sort((a, b) => pv[b] - pv[a]);
    const top = order.slice(0, k).map((i) => ({ label: labels[String(i)] ?? `LABEL_${i}`, prob: pv[i] }));
    const attention = av ? { data: Float32Array.from(av), width: side, height: side } : undefined;
    return { top, attention };
  } finally {
    probs.dispose();
    att?.dispose();
  }
}

/**
 * Runs the model on one image with tfjs: preprocess, forward with attentions, top-k and the
 * class-token map. `ms` is the wall time of the forward pass through the download of its outputs
 * (so it covers GPU work).
 *
 * @example
 * const { top, attention } = await classify(loaded, img);
 */
export async function classify(loaded: LoadedModel, img: RgbImage, k = 5): Promise<Classification> {
  const x = modelInput(loaded, img);
  const t0 = performance.now();
  const { logits, attentions = [] } = tf.tidy(() => {
    const o = loaded.model.forward(tf.tensor4d(x.data, x.dims as [number, number, number, number]), {
      outputAttentions: true,
    });
    return { logits: o.logits, attentions: o.attentions ?? [] };
  });
  try {
    // Wait for the device: the time covers the forward pass, not just its dispatch.
    await Promise.all([logits.data(), ...attentions.map((a) => a.data())]);
    const ms = performance.now() - t0;
    return { ...(await summarise(loaded, logits, attentions, k)), ms };
  } finally {
    tf.dispose([logits, ...attentions]);
  }
}

/**
 * As {@link classify} on onnxruntime-web: the model traced and emitted by einvit, run by `ort`.
 *
 * @example
 * const { top } = await classifyOrt(loaded, await compileForOrt(loaded.model, 'wasm'), img);
 */
export async function classifyOrt(
  loaded: LoadedModel,
  compiled: OrtModel,
  img: RgbImage,
  k = 5,
): Promise<Classification> {
  const x = modelInput(loaded, img);
  const t0 = performance.now();
  const out = await runOrt(compiled, x.data, x.dims);
  const ms = performance.now() - t0;
  const logits = tf.tensor2d(out.logits, [1, out.logits.length]);
  const attentions = out.attentions.map((a) => tf.tensor(a.data, a.dims));
  try {
    return { ...(await summarise(loaded, logits, attentions, k)), ms };
  } finally {
    tf.dispose([logits, ...attentions]);
  }
}

/** A message for the page: our errors as they are, anything else named as unexpected. */
export function describeError(e: unknown): string {
  if (e instanceof EinvitError) return e.message;
  return `unexpected error: ${e instanceof Error ? e.message : String(e)}`;
}
