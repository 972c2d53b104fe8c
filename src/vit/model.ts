// The Vision Transformer (Dosovitskiy et al., 2020) as timm and HF compute it, written with einvit
// patterns. Parameters live in tf.Variables under timm's state_dict names and layouts.
import { mkdir, readFile, rename, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { tf, tfSeed } from '../tf.js';
import { pack, rearrange, reduce, repeat, unpack } from '../ops.js';
import { EinopsError } from '../errors.js';
import { openSafetensors, writeSafetensors, type TensorData } from './safetensors.js';
import { hfIncompatibilities, parseConfig, toHFConfigJson, type ViTConfig } from './config.js';
import { expectedParameters, loadCheckpoint, toHuggingFace } from './weights.js';
import {
  addBroadcast,
  layerNorm,
  linear,
  mlp,
  patchEmbed,
  patchEmbedConv,
  selfAttention,
  SeedStream,
  dropout,
} from './layers.js';
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

/** Initial value of one parameter, as timm initialises a fresh ViT (seeded). */
function initParameter(name: string, shape: number[], seed: number): tf.Tensor {
  if (name.endsWith('.bias')) return tf.zeros(shape);
  if (isNormWeight(name)) return tf.ones(shape);
  if (/\.ls\d\.gamma$/.test(name)) return tf.fill(shape, LAYER_SCALE_INIT);
  return truncNormal(shape, 0.02, seed);
}

// timm's usual init_values for LayerScale (the config only records that it is present).
const LAYER_SCALE_INIT = 1e-5;

function toShape(shape: readonly number[]): number[] {
  return [...shape];
}

/**
 * A Vision Transformer. Load one with {@link ViT.fromPretrained} (HF or timm checkpoints) or build a
 * fresh one with {@link ViT.create}; run it with {@link ViT.forward} or {@link ViT.predict}.
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

  private constructor(
    readonly config: ViTConfig,
    private readonly vars: Map<string, tf.Variable>,
  ) {}

  /**
   * A freshly initialised model (timm's init: normal std `initializer_range` for linear, conv, class
   * token and position weights, zero biases, unit LayerNorm scales), seeded.
   *
   * @example
   * const model = ViT.create(PRESETS['cifar-tiny'], 42);
   */
  static create(cfg: ViTConfig, seed = 0): ViT {
    const vars = new Map<string, tf.Variable>();
    let i = 0;
    for (const [name, shape] of expectedParameters(cfg)) {
      const init = initParameter(name, toShape(shape), seed * 100_003 + i++);
      vars.set(name, tf.variable(init, true, uniqueName(name)));
      init.dispose();
    }
    return new ViT(cfg, vars);
  }

  /**
   * Builds a model from float32 parameters under internal (timm) names; missing head weights are
   * initialised fresh. Shapes are checked against the config.
   *
   * @example
   * const model = ViT.fromParameters(cfg, loadCheckpoint(file, cfg));
   */
  static fromParameters(cfg: ViTConfig, params: Map<string, TensorData>, seed = 0): ViT {
    const vars = new Map<string, tf.Variable>();
    let i = 0;
    try {
      for (const [name, shape] of expectedParameters(cfg)) {
        const p = params.get(name);
        let init: tf.Tensor;
        if (p) {
          if (p.shape.length !== shape.length || p.shape.some((d, k) => d !== shape[k])) {
            throw new EinopsError(
              `Parameter "${name}" has shape [${p.shape.join(', ')}], the config needs [${shape.join(', ')}]`,
              { rule: 'parameter-shape' },
            );
          }
          init = tf.tensor(p.data, toShape(p.shape), 'float32');
        } else if (name.startsWith('head.')) {
          init = initParameter(name, toShape(shape), seed * 100_003 + i);
        } else {
          throw new EinopsError(`Parameter "${name}" is missing`, { rule: 'missing-parameter' });
        }
        i++;
        vars.set(name, tf.variable(init, true, uniqueName(name)));
        init.dispose();
      }
    } catch (e) {
      for (const v of vars.values()) v.dispose();
      throw e;
    }
    return new ViT(cfg, vars);
  }

  /**
   * Loads `config.json` + `model.safetensors` from a folder (HF or timm key names).
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
      throw new EinopsError(`Cannot read ${configPath}: ${(e as Error).message}`, {
        cause: e,
        rule: 'config-file',
      });
    }
    let cfg = parseConfig(json);
    const ignoreHead = opts.ignoreHead === true || opts.numLabels !== undefined;
    const file = openSafetensors(join(dir, 'model.safetensors'));
    let params: Map<string, TensorData>;
    try {
      params = loadCheckpoint(file, cfg, { ignoreHead });
    } finally {
      file.close();
    }
    if (opts.numLabels !== undefined) {
      if (!Number.isInteger(opts.numLabels) || opts.numLabels < 0) {
        throw new EinopsError(`numLabels must be a non-negative integer, got ${opts.numLabels}`);
      }
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
   * The trainable variables under internal (timm) names. The map is the model's own: do not dispose
   * its entries.
   *
   * @example
   * const grads = tf.variableGrads(() => loss(), [...model.parameters().values()]);
   */
  parameters(): Map<string, tf.Variable> {
    return this.vars;
  }

  private p(name: string): tf.Variable {
    const v = this.vars.get(name);
    if (!v) throw new EinopsError(`ViT: parameter "${name}" does not exist (model disposed?)`);
    return v;
  }

  private opt(name: string): tf.Variable | undefined {
    return this.vars.get(name);
  }

  private checkPixels(pixels: tf.Tensor): [number, number] {
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

  // The position table for a gh x gw grid: the stored one, or a resampled copy when allowed.
  private positions(gh: number, gw: number, interpolate: boolean): tf.Tensor {
    const cfg = this.config;
    if (cfg.position_embedding === 'sinusoidal') {
      // Fixed MAE table, built once per grid and kept until dispose().
      const key = `${gh}x${gw}`;
      let t = this.sincos.get(key);
      if (!t) {
        t = tf.keep(sincosPosEmbed2d(cfg.hidden_size, gh, gw, this.numPrefixTokens));
        this.sincos.set(key, t);
      }
      return t;
    }
    const table = this.p('pos_embed');
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
   * Runs the model on `[N, C, H, W]` float32 pixels (already normalised). Returns `logits` and the
   * other outputs asked for in `opts`; the caller disposes them.
   *
   * @example
   * const out = model.forward(pixels, { outputAttentions: true });
   * out.logits.print();
   * tf.dispose([out.logits, ...out.attentions!]);
   */
  forward(pixels: tf.Tensor, opts: ForwardOptions = {}): ForwardOutput {
    const cfg = this.config;
    const [gh, gw] = this.checkPixels(pixels);
    const seeds = opts.training ? new SeedStream(opts.seed) : undefined;
    const hiddenDrop = cfg.hidden_dropout_prob ?? 0;
    const attnDrop = cfg.attention_probs_dropout_prob ?? 0;
    const eps = cfg.layer_norm_eps;
    return tf.tidy(() => {
      const n = pixels.shape[0] as number;
      const embed = this.patchEmbedding === 'conv' ? patchEmbedConv : patchEmbed;
      let x = embed(
        pixels,
        this.p('patch_embed.proj.weight'),
        this.opt('patch_embed.proj.bias'),
        cfg.patch_size,
      );
      const pos = this.positions(gh, gw, opts.interpolatePosEncoding === true);
      if (cfg.class_token) {
        const cls = repeat(this.p('cls_token'), '1 n e -> b n e', { b: n });
        x = addBroadcast(pack([cls, x], 'b * e')[0], pos);
      } else {
        x = addBroadcast(x, pos);
      }
      x = dropout(x, hiddenDrop, seeds);

      const hiddenStates: tf.Tensor[] = [x];
      const attentions: tf.Tensor[] = [];
      for (let i = 0; i < cfg.num_hidden_layers; i++) {
        const b = `blocks.${i}.`;
        const { out, probs } = selfAttention(
          layerNorm(x, this.p(`${b}norm1.weight`), this.p(`${b}norm1.bias`), eps),
          {
            qkvWeight: this.p(`${b}attn.qkv.weight`),
            qkvBias: this.opt(`${b}attn.qkv.bias`),
            projWeight: this.p(`${b}attn.proj.weight`),
            projBias: this.opt(`${b}attn.proj.bias`),
          },
          cfg.num_attention_heads,
          { attnDropout: attnDrop, projDropout: hiddenDrop, seeds },
        );
        const ls1 = this.opt(`${b}ls1.gamma`);
        x = tf.add(x, ls1 ? tf.mul(out, ls1) : out);
        const m = mlp(
          layerNorm(x, this.p(`${b}norm2.weight`), this.p(`${b}norm2.bias`), eps),
          this.p(`${b}mlp.fc1.weight`),
          this.opt(`${b}mlp.fc1.bias`),
          this.p(`${b}mlp.fc2.weight`),
          this.opt(`${b}mlp.fc2.bias`),
          cfg.hidden_act,
          { dropout: hiddenDrop, seeds },
        );
        const ls2 = this.opt(`${b}ls2.gamma`);
        x = tf.add(x, ls2 ? tf.mul(m, ls2) : m);
        hiddenStates.push(x);
        attentions.push(probs);
      }

      const norm = this.opt('norm.weight');
      const lastHiddenState = norm ? layerNorm(x, norm, this.p('norm.bias'), eps) : x;
      const prefix = this.numPrefixTokens;
      const tokens = lastHiddenState.shape[1] as number;
      let pooled: tf.Tensor;
      if (cfg.pooling === 'mean') {
        const [, patches] =
          prefix > 0
            ? unpack(lastHiddenState, [[prefix], [tokens - prefix]], 'b * e')
            : [undefined, lastHiddenState];
        pooled = reduce(patches, 'b n e -> b e', 'mean');
      } else {
        const [first] = unpack(lastHiddenState, [[1], [tokens - 1]], 'b * e');
        pooled = rearrange(first, 'b 1 e -> b e');
      }
      const fcNorm = this.opt('fc_norm.weight');
      const preLogits = fcNorm ? layerNorm(pooled, fcNorm, this.p('fc_norm.bias'), eps) : pooled;
      const head = this.opt('head.weight');
      const logits = head ? linear(preLogits, head, this.opt('head.bias')) : preLogits;
      // tf.tidy frees whatever is not returned: the caller owns exactly what it asked for.
      const result: ForwardOutput = { logits };
      if (opts.outputPreLogits) result.preLogits = preLogits;
      if (opts.outputLastHiddenState) result.lastHiddenState = lastHiddenState;
      if (opts.outputHiddenStates) result.hiddenStates = hiddenStates;
      if (opts.outputAttentions) result.attentions = attentions;
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
    if (!this.vars.has('head.weight')) {
      throw new EinopsError('ViT.predict: this model has no classification head (num_labels is 0)', {
        rule: 'no-head',
      });
    }
    const probs = tf.tidy(() => tf.softmax(this.forward(pixels).logits));
    const classes = probs.shape[1] as number;
    const kk = Math.max(1, Math.min(k, classes));
    const { values, indices } = tf.topk(probs, kk);
    const vals = values.arraySync() as number[][];
    const idx = indices.arraySync() as number[][];
    values.dispose();
    indices.dispose();
    const labels = this.config.id2label ?? {};
    const top = idx.map((row, r) =>
      row.map((index, j) => ({ index, label: labels[String(index)] ?? `LABEL_${index}`, prob: vals[r][j] })),
    );
    return { probs, top };
  }

  /** The parameters as plain float32 data under internal (timm) names. */
  state(): Map<string, TensorData> {
    const out = new Map<string, TensorData>();
    for (const [name, v] of this.vars)
      out.set(name, { shape: [...v.shape], data: v.dataSync() as Float32Array });
    return out;
  }

  /**
   * Writes `model.safetensors` and `config.json` into `dir`, each atomically. Models HF
   * `ViTForImageClassification` can hold are written with Hub key names (transformers loads them);
   * the others (mean pooling, fc_norm, LayerScale, no class token, no head) with timm names.
   *
   * @example
   * await model.save('runs/cifar-tiny');
   * const again = await ViT.fromPretrained('runs/cifar-tiny');
   */
  async save(dir: string, metadata: Record<string, string> = {}): Promise<void> {
    await mkdir(dir, { recursive: true });
    const hf = hfIncompatibilities(this.config).length === 0;
    const tensors = hf ? toHuggingFace(this.state(), this.config) : this.state();
    const json = hf ? toHFConfigJson(this.config) : { ...this.config, naming: 'timm' };
    writeSafetensors(join(dir, 'model.safetensors'), tensors, { format: 'pt', ...metadata });
    const configPath = join(dir, 'config.json');
    const tmp = `${configPath}.tmp-${process.pid}`;
    await writeFile(tmp, JSON.stringify(json, null, 2) + '\n');
    await rename(tmp, configPath);
  }

  /** Frees every variable; the model is unusable afterwards. */
  dispose(): void {
    for (const v of this.vars.values()) v.dispose();
    this.vars.clear();
    for (const t of this.sincos.values()) t.dispose();
    this.sincos.clear();
  }
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
    throw new EinopsError(
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
