// The ViT model object: parameters in tf.Variables (a typed tree, params.ts), loading and saving
// (weights.ts maps checkpoint names), and the eager forward pass: the network definition of
// network.ts run on the eager op surface (eager.ts).
import { mkdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { tf, tfSeed } from '../tf.js';
import { CheckpointError, EinopsError, UsageError } from '../errors.js';
import { writeJsonAtomic } from '../io/atomic.js';
import { openSafetensors, writeSafetensors, type TensorData } from './safetensors.js';
import {
  hfIncompatibilities,
  numTokens,
  parseConfig,
  QUIRK_DEFAULTS,
  quirkFields,
  toHFConfigJson,
  type ModelNaming,
  type TutorialNaming,
  type ViTConfig,
} from './config.js';
import { loadCheckpoint, toHuggingFace, toNaming } from './weights.js';
import {
  checkArgsAgainstWeights,
  detectTutorial,
  isTutorialNaming,
  sincos1d,
  tutorialArgs,
  tutorialConfig,
  tutorialFromSource,
  tutorialIncompatibilities,
} from './tutorials.js';
import { buildParams, expectedParameters, flattenParams, mapParams, type ViTParams } from './params.js';
import type { CompiledViT, CompileOptions } from './compiled.js';
import { eagerOps } from './eager.js';
import { vitNetwork, type NetworkRates } from './network.js';
import { resamplePosEmbed, sincosPosEmbed2d } from './posembed.js';

/** Options of {@link ViT.forward}. */
export interface ForwardOptions {
  /** Also return `hiddenStates` (embeddings, then every block's output). */
  outputHiddenStates?: boolean;
  /** Also return `attentions` (every block's softmax probabilities `[N, heads, T, T]`). */
  outputAttentions?: boolean;
  /** Also return `preLogits` (what the classifier sees). */
  outputPreLogits?: boolean;
  /** Also return `lastHiddenState` (tokens after the final LayerNorm). */
  outputLastHiddenState?: boolean;
  /** Apply dropout (rates from the config). */
  training?: boolean;
  /** Seed for the dropout masks (training only); unseeded when absent. */
  seed?: number;
  /** Resample the position table (bicubic, as HF's `interpolate_pos_encoding`) when the image grid differs. */
  interpolatePosEncoding?: boolean;
}

/**
 * What {@link ViT.forward} returns; the meanings of test/vit-reference/README.md. Only the tensors
 * asked for are returned (the others are freed), so disposing what you use frees everything.
 */
export interface ForwardOutput {
  /** `[N, num_labels]` (equals `preLogits` when the model has no head). */
  logits: tf.Tensor;
  /** `[N, D]`: the vector fed to the classifier (after pooling and `fc_norm`); with `outputPreLogits`. */
  preLogits?: tf.Tensor;
  /**
   * `[N, T, D]`: tokens after the final pre-pool LayerNorm (the last block's output when there is
   * none); with `outputLastHiddenState`.
   */
  lastHiddenState?: tf.Tensor;
  /** `L + 1` tensors `[N, T, D]`: embeddings, then each block's output before the final norm. */
  hiddenStates?: tf.Tensor[];
  /** `L` tensors `[N, heads, T, T]`. */
  attentions?: tf.Tensor[];
}

/** One predicted class. */
export interface Prediction {
  index: number;
  label: string;
  prob: number;
}

/** Options of {@link ViT.fromPretrained}. */
export interface PretrainedOptions {
  /** Skip the classifier weights and start a fresh head (seeded 0) for fine-tuning. */
  ignoreHead?: boolean;
  /** A fresh head with this many classes (implies `ignoreHead`). */
  numLabels?: number;
  /** Run at another image size: the position table is resampled as timm does (bicubic, antialiased). */
  imageSize?: number;
}

/** How patches become tokens: `pattern` (rearrange + matmul, the default; trains on wasm) or `conv`. */
export type PatchEmbedding = 'pattern' | 'conv';

function truncNormal(shape: number[], std: number, seed: number): tf.Tensor {
  // timm/HF trunc_normal_ cuts at ±2 absolute, i.e. ~100σ for std 0.02: a plain normal in practice.
  return tf.tidy(() => tf.clipByValue(tf.randomNormal(shape, 0, std, 'float32', tfSeed(seed)), -2, 2));
}

function isNormWeight(name: string): boolean {
  return /(^|\.)(norm\d*|fc_norm)\.weight$/.test(name);
}

/**
 * Initial value of one parameter, as timm initialises a fresh ViT (seeded); with `pos_embed_init:
 * 'sincos_1d'` the position table starts as the from-scratch tutorial's 1-D sin-cos table.
 */
function initParameter(name: string, shape: number[], seed: number, cfg?: ViTConfig): tf.Tensor {
  if (name === 'pos_embed' && cfg?.pos_embed_init === 'sincos_1d') {
    return tf.tensor(sincos1d(numTokens(cfg), cfg.hidden_size), shape, 'float32');
  }
  if (name.endsWith('.bias')) return tf.zeros(shape);
  if (isNormWeight(name)) return tf.ones(shape);
  if (/\.ls\d\.gamma$/.test(name)) return tf.fill(shape, LAYER_SCALE_INIT);
  return truncNormal(shape, 0.02, seed);
}

// timm's usual init_values for LayerScale (the config only records that it is present).
const LAYER_SCALE_INIT = 1e-5;

/** Options of {@link ViT.save}. */
export interface SaveOptions {
  /**
   * Key names of `model.safetensors` (and the matching `config.json`): 'hf' (HF Hub names; transformers
   * loads the folder), 'timm' (timm state_dict names), a tutorial's ('einops-tutorial',
   * 'scratch-tutorial', 'cifar-tutorial': that code's state_dict names, loadable with its
   * `load_state_dict`, and its constructor arguments plus `source_code` as config.json), or 'auto'
   * (default): the config's tutorial naming when the tutorial's code can compute the model, else 'hf'
   * when HF `ViTForImageClassification` can hold it, else 'timm' (mean pooling, fc_norm, LayerScale,
   * no class token or no head, tutorial quirks).
   */
  naming?: 'auto' | ModelNaming;
  /** Extra `__metadata__` strings of the safetensors file (`format: pt` is always written). */
  metadata?: Record<string, string>;
}

/**
 * A Vision Transformer. Load one with {@link ViT.fromPretrained} (HF, timm or torchvision checkpoints)
 * or build a fresh one with {@link ViT.create}; run it with {@link ViT.forward} or {@link ViT.predict}.
 *
 * @example
 * const model = await ViT.fromPretrained('checkpoints/vit-s-16');
 * const { logits } = model.forward(pixels); // pixels [N, 3, 224, 224]
 * model.dispose();
 */
export class ViT {
  /** Patch embedding implementation used by `forward`. */
  patchEmbedding: PatchEmbedding = 'pattern';
  private readonly sincos = new Map<string, tf.Tensor>();
  private readonly named: Map<string, tf.Variable>;
  private disposed = false;

  private constructor(
    readonly config: ViTConfig,
    /** The parameters as a typed tree (`params.blocks[0].attn.qkv.weight`); the model's own variables. */
    readonly params: ViTParams<tf.Variable>,
  ) {
    this.named = flattenParams(config, params);
  }

  /**
   * A freshly initialised model (timm's init: normal std `initializer_range` for linear, conv, class
   * token and position weights, zero biases, unit LayerNorm scales), seeded.
   *
   * @example
   * const model = ViT.create(PRESETS['cifar-tiny'], 42);
   */
  static create(cfg: ViTConfig, seed = 0): ViT {
    let i = 0;
    const params = buildParams(cfg, (name, shape) => {
      const init = initParameter(name, shape, seed * 100_003 + i++, cfg);
      const v = tf.variable(init, true, uniqueName(name));
      init.dispose();
      return v;
    });
    return new ViT(cfg, params);
  }

  /**
   * Builds a model from float32 parameters under internal (timm) names; missing head weights are
   * initialised fresh. Every missing or mis-shaped parameter is listed in one CheckpointError.
   *
   * @example
   * const model = ViT.fromParameters(cfg, readCheckpoint('model.safetensors', cfg));
   */
  static fromParameters(cfg: ViTConfig, params: Map<string, TensorData>, seed = 0): ViT {
    const problems: string[] = [];
    for (const [name, shape] of expectedParameters(cfg)) {
      const p = params.get(name);
      if (p === undefined) {
        if (!name.startsWith('head.')) problems.push(`  missing     ${name}: expected [${shape.join(', ')}]`);
      } else if (p.shape.length !== shape.length || p.shape.some((d, k) => d !== shape[k])) {
        problems.push(`  wrong shape ${name}: expected [${shape.join(', ')}], got [${p.shape.join(', ')}]`);
      }
    }
    if (problems.length > 0) {
      throw new CheckpointError(
        `parameters do not fit the config: ${problems.length} problem${problems.length > 1 ? 's' : ''}\n${problems.join('\n')}`,
        { rule: 'parameter-shape' },
      );
    }
    let i = 0;
    const made: tf.Variable[] = [];
    try {
      const tree = buildParams(cfg, (name, shape) => {
        const p = params.get(name);
        const init = p
          ? tf.tensor(p.data, [...p.shape], 'float32')
          : initParameter(name, shape, seed * 100_003 + i, cfg);
        i++;
        const v = tf.variable(init, true, uniqueName(name));
        init.dispose();
        made.push(v);
        return v;
      });
      return new ViT(cfg, tree);
    } catch (e) {
      for (const v of made) v.dispose();
      throw e;
    }
  }

  /**
   * Loads `config.json` + `model.safetensors` from a folder (HF, timm or torchvision key names).
   *
   * @example
   * const model = await ViT.fromPretrained('test/vit-reference/vit-s-16-hf');
   * const tuned = await ViT.fromPretrained(dir, { numLabels: 10, imageSize: 32 });
   */
  static async fromPretrained(dir: string, opts: PretrainedOptions = {}): Promise<ViT> {
    const configPath = join(dir, 'config.json');
    let json: unknown;
    try {
      json = JSON.parse(await readFile(configPath, 'utf8'));
    } catch (e) {
      throw new CheckpointError(`Cannot read ${configPath}: ${(e as Error).message}`, {
        cause: e,
        rule: 'config-file',
      });
    }
    const file = openSafetensors(join(dir, 'model.safetensors'));
    let cfg: ViTConfig;
    let tutorial: TutorialNaming | undefined;
    try {
      // A tutorial's folder: config.json holds that code's constructor arguments (`source_code` says
      // which; without it the key names tell).
      tutorial = tutorialFromSource(json, configPath);
      const declared =
        json !== null && typeof json === 'object' && 'naming' in json
          ? (json as { naming: unknown }).naming
          : undefined;
      if (tutorial === undefined && declared === undefined) tutorial = detectTutorial(file.keys());
      if (tutorial !== undefined) {
        cfg = tutorialConfig(tutorial, json as Record<string, unknown>, configPath);
        checkArgsAgainstWeights(
          tutorial,
          cfg,
          (k) => (file.has(k) ? file.info(k).shape : undefined),
          configPath,
        );
      } else {
        cfg = parseConfig(json, configPath);
      }
    } catch (e) {
      file.close();
      throw e;
    }
    if (opts.numLabels !== undefined && (!Number.isInteger(opts.numLabels) || opts.numLabels < 0)) {
      throw new UsageError(`numLabels must be a non-negative integer, got ${opts.numLabels}`, {
        rule: 'num-labels',
      });
    }
    const ignoreHead = opts.ignoreHead === true || opts.numLabels !== undefined;
    let params: Map<string, TensorData>;
    try {
      params = loadCheckpoint(file, cfg, { ignoreHead, naming: tutorial });
    } finally {
      file.close();
    }
    if (opts.numLabels !== undefined) {
      const id2label = Object.fromEntries(
        Array.from({ length: opts.numLabels }, (_, i) => [String(i), `LABEL_${i}`]),
      );
      cfg = { ...cfg, num_labels: opts.numLabels, id2label };
    }
    if (opts.imageSize !== undefined && opts.imageSize !== cfg.image_size) {
      params = resizeParameters(params, cfg, opts.imageSize);
      cfg = { ...cfg, image_size: opts.imageSize };
    }
    return ViT.fromParameters(cfg, params);
  }

  /** Number of tokens in front of the patches (1 with a class token). */
  get numPrefixTokens(): number {
    return this.config.class_token ? 1 : 0;
  }

  /**
   * The trainable variables by timm name (`blocks.0.attn.qkv.weight`, `cls_token`, ...), in a stable
   * order: what optimizers, their no-decay rules and saved moments key on. The map and its variables are
   * the model's own: do not dispose them.
   *
   * @example
   * const grads = tf.variableGrads(() => loss(), [...model.parameters().values()]);
   */
  parameters(): Map<string, tf.Variable> {
    this.checkAlive('parameters');
    return this.named;
  }

  private checkAlive(what: string): void {
    if (this.disposed) throw new UsageError(`ViT.${what}: the model has been disposed`, { rule: 'disposed' });
  }

  /**
   * Checks `[N, C, H, W]` float32 pixels against the config; returns the patch grid.
   *
   * @example
   * const [gh, gw] = model.checkPixels(pixels); // [14, 14] for 224px images and 16px patches
   */
  checkPixels(pixels: tf.Tensor): [number, number] {
    const cfg = this.config;
    if (pixels.rank !== 4) {
      throw new EinopsError(
        `ViT.forward: pixels must be [N, C, H, W], got shape [${pixels.shape.join(', ')}]`,
        {
          rule: 'input-shape',
        },
      );
    }
    const [, c, h, w] = pixels.shape as number[];
    if (c !== cfg.num_channels) {
      throw new EinopsError(`ViT.forward: pixels have ${c} channels, the model expects ${cfg.num_channels}`, {
        rule: 'input-shape',
      });
    }
    if (h % cfg.patch_size !== 0 || w % cfg.patch_size !== 0) {
      throw new EinopsError(
        `ViT.forward: image ${h}x${w} is not divisible by the patch size ${cfg.patch_size}`,
        { rule: 'input-shape' },
      );
    }
    if (pixels.dtype !== 'float32') {
      throw new EinopsError(`ViT.forward: pixels must be float32, got ${pixels.dtype}`, {
        rule: 'input-dtype',
      });
    }
    return [h / cfg.patch_size, w / cfg.patch_size];
  }

  /**
   * The position table `[1, T, D]` for a `gh x gw` patch grid: the learned one, a resampled copy (with
   * `interpolate`), or the fixed sin-cos table (computed once per grid and kept until dispose()).
   *
   * @example
   * const pos = model.positions(14, 14); // the stored table of a 224px ViT-B/16
   */
  positions(gh: number, gw: number, interpolate = false): tf.Tensor {
    const cfg = this.config;
    if (cfg.position_embedding === 'sinusoidal') {
      const key = `${gh}x${gw}`;
      let t = this.sincos.get(key);
      if (!t) {
        t = tf.keep(sincosPosEmbed2d(cfg.hidden_size, gh, gw, this.numPrefixTokens));
        this.sincos.set(key, t);
      }
      return t;
    }
    const table = this.params.posEmbed!;
    const grid = cfg.image_size / cfg.patch_size;
    if (gh === grid && gw === grid) return table;
    if (!interpolate) {
      throw new EinopsError(
        `ViT.forward: a ${gh}x${gw} patch grid does not match the model's ${grid}x${grid} (image_size ${cfg.image_size}); ` +
          'pass { interpolatePosEncoding: true } or load with { imageSize }',
        { rule: 'input-shape' },
      );
    }
    return resamplePosEmbed(table, [gh, gw], {
      oldGrid: [grid, grid],
      numPrefixTokens: this.numPrefixTokens,
      antialias: false,
    });
  }

  /**
   * Runs the model on `[N, C, H, W]` float32 pixels (already normalised), eagerly on tfjs. Returns
   * `logits` and the other outputs asked for in `opts`; the caller disposes them.
   *
   * @example
   * const out = model.forward(pixels, { outputAttentions: true });
   * out.logits.print();
   * tf.dispose([out.logits, ...out.attentions!]);
   */
  forward(pixels: tf.Tensor, opts: ForwardOptions = {}): ForwardOutput {
    this.checkAlive('forward');
    const cfg = this.config;
    const [gh, gw] = this.checkPixels(pixels);
    const ops = eagerOps({ training: opts.training, seed: opts.seed, patchEmbedding: this.patchEmbedding });
    const rates: NetworkRates = opts.training
      ? { hidden: cfg.hidden_dropout_prob ?? 0, attention: cfg.attention_probs_dropout_prob ?? 0 }
      : { hidden: 0, attention: 0 };
    return tf.tidy(() => {
      const pos = this.positions(gh, gw, opts.interpolatePosEncoding === true);
      const out = vitNetwork(ops, cfg, this.params, pixels, pos, rates);
      // tf.tidy frees whatever is not returned: the caller owns exactly what it asked for.
      const result: ForwardOutput = { logits: out.logits };
      if (opts.outputPreLogits) result.preLogits = out.preLogits;
      if (opts.outputLastHiddenState) result.lastHiddenState = out.lastHiddenState;
      if (opts.outputHiddenStates) result.hiddenStates = out.hiddenStates;
      if (opts.outputAttentions) result.attentions = out.attentions;
      return result as unknown as tf.TensorContainer;
    }) as unknown as ForwardOutput;
  }

  /**
   * Class probabilities and the `k` best classes per image, labelled from the config's `id2label`.
   *
   * @example
   * const { top } = model.predict(pixels); // top[0][0] = { index: 3, label: 'cat', prob: 0.91 }
   */
  predict(pixels: tf.Tensor, k = 5): { probs: tf.Tensor; top: Prediction[][] } {
    if (!this.params.head) {
      throw new UsageError('ViT.predict: this model has no classification head (num_labels is 0)', {
        rule: 'no-head',
      });
    }
    checkTopK(k, 'ViT.predict');
    const probs = tf.tidy(() => tf.softmax(this.forward(pixels).logits));
    return { probs, top: topClasses(probs, k, this.config) };
  }

  /** The parameters as plain float32 data under internal (timm) names. */
  state(): Map<string, TensorData> {
    const out = new Map<string, TensorData>();
    for (const [name, v] of this.parameters())
      out.set(name, { shape: [...v.shape], data: v.dataSync() as Float32Array });
    return out;
  }

  /**
   * Writes `model.safetensors` and `config.json` into `dir`, each atomically (temporary file, fsync,
   * rename). The one way einvit saves a model; see {@link SaveOptions} for the key names.
   *
   * @example
   * await model.save('runs/cifar-tiny');
   * await model.save('runs/cifar-timm', { naming: 'timm', metadata: { step: '100' } });
   * const again = await ViT.fromPretrained('runs/cifar-tiny');
   */
  async save(dir: string, opts: SaveOptions = {}): Promise<void> {
    const cfg = this.config;
    let naming = opts.naming ?? 'auto';
    if (naming !== 'auto' && naming !== 'hf' && naming !== 'timm' && !isTutorialNaming(naming)) {
      throw new UsageError(
        `ViT.save: naming must be 'auto', 'hf', 'timm', 'einops-tutorial', 'scratch-tutorial' or 'cifar-tutorial', got ${JSON.stringify(naming)}`,
        { rule: 'naming' },
      );
    }
    if (naming === 'auto') {
      if (isTutorialNaming(cfg.naming) && tutorialIncompatibilities(cfg, cfg.naming).length === 0)
        naming = cfg.naming;
      else naming = hfIncompatibilities(cfg).length === 0 ? 'hf' : 'timm';
    }
    // Every conversion runs before anything is written: a model the target cannot hold fails here.
    let tensors: Map<string, TensorData>;
    let json: Record<string, unknown>;
    if (isTutorialNaming(naming)) {
      json = tutorialArgs(cfg, naming);
      tensors = toNaming(this.state(), cfg, naming);
    } else if (naming === 'hf') {
      tensors = toHuggingFace(this.state(), cfg);
      json = toHFConfigJson(cfg);
    } else {
      tensors = this.state();
      // Standard quirk values stay out of the file, as before the quirk fields existed.
      const plain: Record<string, unknown> = { ...cfg, naming: 'timm' };
      for (const k of Object.keys(QUIRK_DEFAULTS)) delete plain[k];
      json = { ...plain, ...quirkFields(cfg) };
    }
    try {
      await mkdir(dir, { recursive: true });
    } catch (e) {
      throw new CheckpointError(`cannot create ${dir}: ${(e as Error).message}`, {
        cause: e,
        rule: 'file-write',
      });
    }
    writeSafetensors(join(dir, 'model.safetensors'), tensors, { format: 'pt', ...opts.metadata });
    writeJsonAtomic(join(dir, 'config.json'), json);
  }

  /**
   * Compiles the model whole: traces the network into one graph, optimises it, emits ONNX and opens an
   * onnxruntime session. The result has `forward` / `predict` with this model's contract (async) and
   * its own copy of the weights. Throws RuntimeFailure when onnxruntime cannot load on this machine.
   *
   * @example
   * const fast = await model.compile({ batch: 'dynamic', outputAttentions: true });
   * const { logits, attentions } = await fast.forward(pixels, { outputAttentions: true });
   * await fast.dispose();
   */
  async compile(opts: CompileOptions = {}): Promise<CompiledViT> {
    this.checkAlive('compile');
    // Loaded on first use: eager-only users never load the ONNX emitter.
    const { CompiledViT } = await import('./compiled.js');
    const data = mapParams(this.config, this.params, (v) => ({
      shape: [...v.shape],
      data: v.dataSync() as Float32Array,
    }));
    return CompiledViT.create(this.config, data, opts);
  }

  /** Frees every variable; the model is unusable afterwards. */
  dispose(): void {
    if (this.disposed) return;
    this.disposed = true;
    for (const v of this.named.values()) v.dispose();
    for (const t of this.sincos.values()) t.dispose();
    this.sincos.clear();
  }
}

/**
 * Throws unless `k` (how many best classes to return) is a positive integer; more than the model has
 * classes is fine (all of them are returned).
 *
 * @example
 * checkTopK(5, 'ViT.predict');
 */
export function checkTopK(k: number, where: string): void {
  if (!Number.isSafeInteger(k) || k < 1) {
    throw new UsageError(`${where}: k must be a positive integer (how many best classes), got ${String(k)}`, {
      rule: 'top-k',
    });
  }
}

/**
 * The `k` most probable classes of each row of `probs` `[N, classes]`, labelled from `id2label`.
 *
 * @example
 * const top = topClasses(probs, 3, model.config); // top[0] = [{ index, label, prob }, ...]
 */
export function topClasses(probs: tf.Tensor, k: number, cfg: ViTConfig): Prediction[][] {
  const classes = probs.shape[1] as number;
  const kk = Math.max(1, Math.min(k, classes));
  const { values, indices } = tf.topk(probs, kk);
  const vals = values.arraySync() as number[][];
  const idx = indices.arraySync() as number[][];
  values.dispose();
  indices.dispose();
  const labels = cfg.id2label ?? {};
  return idx.map((row, r) =>
    row.map((index, j) => ({ index, label: labels[String(index)] ?? `LABEL_${index}`, prob: vals[r][j] })),
  );
}

let counter = 0;
// tf.variable names are global to the engine: two models must not clash.
function uniqueName(name: string): string {
  counter += 1;
  return `vit${counter}/${name}`;
}

// Resamples the position table when the model is loaded at another image size.
function resizeParameters(
  params: Map<string, TensorData>,
  cfg: ViTConfig,
  imageSize: number,
): Map<string, TensorData> {
  if (!Number.isInteger(imageSize) || imageSize <= 0 || imageSize % cfg.patch_size !== 0) {
    throw new UsageError(
      `imageSize ${imageSize} is not a positive multiple of the patch size ${cfg.patch_size}`,
    );
  }
  const out = new Map(params);
  const grid = imageSize / cfg.patch_size;
  const oldGrid = cfg.image_size / cfg.patch_size;
  const pe = params.get('pos_embed');
  if (!pe) return out; // sinusoidal positions are computed for any grid
  const prefix = cfg.class_token ? 1 : 0;
  const resized = tf.tidy(() =>
    resamplePosEmbed(tf.tensor(pe.data, pe.shape), [grid, grid], {
      oldGrid: [oldGrid, oldGrid],
      numPrefixTokens: prefix,
    }),
  );
  out.set('pos_embed', { shape: [...resized.shape], data: resized.dataSync() as Float32Array });
  resized.dispose();
  return out;
}
