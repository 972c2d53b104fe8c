// A ViT compiled whole: the network definition traced into one graph (trace.ts), optimised by the IR
// passes, emitted as ONNX and run on onnxruntime. Same forward contract and outputs as ViT.forward,
// asynchronous because onnxruntime is.
import { tf } from '../tf.js';
import { EinopsError, UsageError } from '../errors.js';
import type { Graph } from '../ir/graph.js';
import type { EmitOptions } from '../onnx/emit.js';
import { compileGraph, type CompiledProgram } from '../onnx/program.js';
import type { ViTConfig } from './config.js';
import type { ForwardOutput, Prediction } from './model.js';
import { checkTopK, topClasses } from './model.js';
import type { ViTParams } from './params.js';
import type { TensorData } from './safetensors.js';
import { PIXEL_INPUT, traceViT } from './trace.js';

/** Options of `ViT.compile`. */
export interface CompileOptions {
  /** A fixed batch size, or 'dynamic' (default): any batch. */
  batch?: 'dynamic' | number;
  /**
   * Make `hiddenStates` available to `forward`. Each optional output is a graph output only when
   * compiled in, so a model compiled for logits computes and copies nothing else.
   */
  outputHiddenStates?: boolean;
  /** Make `attentions` available to `forward`. */
  outputAttentions?: boolean;
  /** Make `preLogits` available to `forward`. */
  outputPreLogits?: boolean;
  /** Make `lastHiddenState` available to `forward`. */
  outputLastHiddenState?: boolean;
  /** onnxruntime intra-op threads (default: every core). */
  threads?: number;
  /** ONNX forms of attention / LayerNorm / GELU (default: the fastest measured; see src/onnx). */
  emit?: EmitOptions;
}

/** Options of {@link CompiledViT.forward}: the outputs to return (each must have been compiled in). */
export type CompiledForwardOptions = Pick<
  CompileOptions,
  'outputHiddenStates' | 'outputAttentions' | 'outputPreLogits' | 'outputLastHiddenState'
>;

const OPTIONAL_OUTPUTS = [
  'outputHiddenStates',
  'outputAttentions',
  'outputPreLogits',
  'outputLastHiddenState',
] as const;

/**
 * Traces a model's forward pass into a graph with the outputs `opts` asks for (not yet optimised).
 *
 * @example
 * const graph = vitGraph(model.config, tree, { outputAttentions: true });
 */
export function vitGraph(cfg: ViTConfig, params: ViTParams<TensorData>, opts: CompileOptions = {}): Graph {
  return traceViT(cfg, params, {
    batch: opts.batch,
    outputPreLogits: opts.outputPreLogits,
    outputLastHiddenState: opts.outputLastHiddenState,
    outputHiddenStates: opts.outputHiddenStates,
    outputAttentions: opts.outputAttentions,
  });
}

/**
 * A ViT compiled to ONNX and running on onnxruntime. Make one with `await model.compile()`; it holds
 * its own copy of the weights (later changes to the model's variables do not reach it).
 *
 * @example
 * const fast = await model.compile({ outputAttentions: true });
 * const { logits, attentions } = await fast.forward(pixels, { outputAttentions: true });
 * await fast.dispose();
 */
export class CompiledViT {
  private constructor(
    readonly config: ViTConfig,
    private readonly options: CompileOptions,
    private readonly program: CompiledProgram,
  ) {}

  /** The optimised graph that runs. */
  get graph(): Graph {
    return this.program.graph;
  }

  /** The ONNX model bytes (what `einvit export-onnx` writes). */
  get onnx(): Uint8Array {
    return this.program.onnx;
  }

  /**
   * Compiles a model's parameters; throws RuntimeFailure when onnxruntime cannot load (callers that
   * can fall back check `loadOnnxruntime()` first), CompileError when the model cannot be traced.
   *
   * @example
   * const fast = await CompiledViT.create(cfg, tree, { batch: 8 });
   */
  static async create(
    cfg: ViTConfig,
    params: ViTParams<TensorData>,
    opts: CompileOptions = {},
  ): Promise<CompiledViT> {
    const program = await compileGraph(vitGraph(cfg, params, opts), {
      ...opts.emit,
      metadata: { config: JSON.stringify(cfg) },
      source: 'the compiled ViT',
      threads: opts.threads,
    });
    return new CompiledViT(cfg, opts, program);
  }

  private checkPixels(pixels: tf.Tensor): void {
    const cfg = this.config;
    const batch = this.options.batch ?? 'dynamic';
    const want = [batch === 'dynamic' ? 'N' : batch, cfg.num_channels, cfg.image_size, cfg.image_size];
    const got = pixels.shape;
    const fits =
      got.length === 4 && want.every((d, i) => (d === 'N' ? (got[i] as number) > 0 : d === got[i]));
    if (!fits) {
      throw new EinopsError(
        `CompiledViT.forward: pixels [${got.join(', ')}] do not fit the compiled graph's ${PIXEL_INPUT} [${want.join(', ')}]` +
          (got.length === 4 && got[2] !== cfg.image_size
            ? '; run other image sizes with ViT.forward({ interpolatePosEncoding: true })'
            : ''),
        { rule: 'input-shape' },
      );
    }
    if (pixels.dtype !== 'float32') {
      throw new EinopsError(`CompiledViT.forward: pixels must be float32, got ${pixels.dtype}`, {
        rule: 'input-dtype',
      });
    }
  }

  /**
   * Runs the compiled model on `[N, C, H, W]` float32 pixels: the outputs of `ViT.forward` as tfjs
   * tensors the caller owns.
   *
   * @example
   * const { logits } = await fast.forward(pixels);
   */
  async forward(pixels: tf.Tensor, opts: CompiledForwardOptions = {}): Promise<ForwardOutput> {
    for (const key of OPTIONAL_OUTPUTS) {
      if (opts[key] && !this.options[key]) {
        throw new UsageError(
          `CompiledViT.forward: ${key} was not compiled in; compile with { ${key}: true }`,
          {
            rule: 'not-compiled',
          },
        );
      }
    }
    this.checkPixels(pixels);
    const out = await this.program.run({ [PIXEL_INPUT]: pixels });
    const take = (name: string): tf.Tensor => {
      const t = out[name];
      delete out[name];
      return t;
    };
    const L = this.config.num_hidden_layers;
    const result: ForwardOutput = { logits: take('logits') };
    if (opts.outputPreLogits) result.preLogits = take('pre_logits');
    if (opts.outputLastHiddenState) result.lastHiddenState = take('last_hidden_state');
    if (opts.outputHiddenStates)
      result.hiddenStates = Array.from({ length: L + 1 }, (_, i) => take(`hidden_states.${i}`));
    if (opts.outputAttentions)
      result.attentions = Array.from({ length: L }, (_, i) => take(`attentions.${i}`));
    tf.dispose(Object.values(out));
    return result;
  }

  /**
   * Class probabilities and the `k` best classes per image, as `ViT.predict`.
   *
   * @example
   * const { top } = await fast.predict(pixels, 3);
   */
  async predict(pixels: tf.Tensor, k = 5): Promise<{ probs: tf.Tensor; top: Prediction[][] }> {
    if (this.config.num_labels === 0) {
      throw new UsageError('CompiledViT.predict: this model has no classification head (num_labels is 0)', {
        rule: 'no-head',
      });
    }
    checkTopK(k, 'CompiledViT.predict');
    const { logits } = await this.forward(pixels);
    const probs = tf.softmax(logits);
    logits.dispose();
    return { probs, top: topClasses(probs, k, this.config) };
  }

  /** Releases the onnxruntime session. */
  async dispose(): Promise<void> {
    await this.program.dispose();
  }
}
