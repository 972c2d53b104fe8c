// The onnxruntime trainer engine: the whole training step (forward, label-smoothed cross-entropy,
// backward, global-norm clipping, AdamW) is one compiled graph (src/train-graph/step.ts); the host
// feeds a batch, the learning rate and the parameter/moment buffers, and swaps in the buffers the
// step returns. Evaluation runs a second compiled graph, the forward pass with its parameters as
// inputs (src/train-graph/eval.ts), fed from the same buffers: nothing is recompiled per epoch.
//
// Dropout: the step graph takes one mask input per dropout site, drawn on the host from the step's
// seed (src/train-graph/dropout.ts), so a dropout run is as reproducible and resumable as any other.
//
// Determinism: the sessions are created with a fixed number of intra-op threads (the run's
// `--workers` + 1; `workers` is stored in the run's options and kept on resume), one inter-op
// thread, sequential execution and graph optimisation level `all` (src/onnx/runtime.ts pins the last
// three). With these, the same command gives byte-identical model.safetensors and metrics.jsonl
// (test/train/engine.test.ts, with 2 threads). Measured on a small config, 1, 2 and 4 threads gave
// the same bytes too, but that is not promised for every kernel and shape (a runtime may split a
// reduction across threads), hence the thread count is part of the run.
import { tf } from '../tf.js';
import { CompileError, EinvitError } from '../errors.js';
import type { EmitOptions } from '../onnx/emit.js';
import { compileGraph, type CompiledProgram } from '../onnx/program.js';
import { EVAL_IO, evalGraph } from '../train-graph/eval.js';
import { StepState, trainStepGraph } from '../train-graph/step.js';
import { dropoutMasks, traceTrainingViT, type DropoutSite } from '../train-graph/dropout.js';
import type { ViT } from '../vit/model.js';
import { buildParams } from '../vit/params.js';
import { PIXEL_INPUT, traceViT } from '../vit/trace.js';
import { batches } from './batches.js';
import type { Dataset } from './data.js';
import type { EvalResult, StepOptions, TrainEngine } from './engine.js';
import type { OptimizerState } from './optimizer.js';
import type { GradBatch } from './parallel.js';

/** The step's fixed hyper-parameters (baked into the compiled graph) and its thread count. */
export interface OnnxEngineOptions {
  weightDecay: number;
  labelSmoothing: number;
  clip: number;
  /** onnxruntime intra-op threads. */
  threads: number;
  /** ONNX forms of attention, LayerNorm and GELU (default: the emitter's, the fastest measured). */
  emit?: EmitOptions;
}

/** Evaluation batch size (as the tfjs engine's). */
const EVAL_BATCH = 500;

/**
 * The onnxruntime engine. Compiles the step and evaluation graphs of `model`'s config, starting from
 * `model`'s parameters and (when resuming) the saved optimizer state.
 *
 * @example
 * const engine = await OnnxEngine.create(model, undefined, { weightDecay: 0.05, labelSmoothing: 0.1, clip: 1, threads: 2 });
 * await engine.step(batch, { lr: 1e-3, labelSmoothing: 0.1, clip: 1, seed: 0 });
 * engine.syncModel();
 * await engine.dispose();
 */
export class OnnxEngine implements TrainEngine {
  readonly name = 'onnxruntime' as const;
  private disposed = false;

  private constructor(
    private readonly model: ViT,
    private readonly options: OnnxEngineOptions,
    private readonly state: StepState,
    private readonly stepProgram: CompiledProgram,
    private readonly evalProgram: CompiledProgram,
    private readonly dropout: readonly DropoutSite[],
  ) {}

  get description(): string {
    const t = this.options.threads;
    return `onnxruntime, ${t} thread${t === 1 ? '' : 's'}`;
  }

  /**
   * Builds and compiles the graphs. A config the compiled step cannot handle is a CompileError naming
   * what failed, raised here, before any training.
   */
  static async create(
    model: ViT,
    optimizer: OptimizerState | undefined,
    options: OnnxEngineOptions,
  ): Promise<OnnxEngine> {
    const cfg = model.config;
    // One download of the parameters: the trace's values and the step state's starting buffers.
    const saved = model.state();
    const initial = new Map([...saved].map(([name, t]) => [name, t.data as Float32Array]));
    let stepProgram: CompiledProgram | undefined;
    try {
      const tree = buildParams(cfg, (name) => saved.get(name)!);
      const forward = traceViT(cfg, tree);
      // With dropout, the step's forward takes a mask per dropout site (drawn on the host per step).
      const dropout = cfg.hidden_dropout_prob > 0 || cfg.attention_probs_dropout_prob > 0;
      const training = dropout ? traceTrainingViT(cfg, tree) : { graph: forward, sites: [] };
      const step = trainStepGraph(training.graph, {
        weightDecay: options.weightDecay,
        labelSmoothing: options.labelSmoothing,
        clip: options.clip,
      });
      const state = new StepState(step, initial);
      if (optimizer) state.importState(optimizer);
      const compile = { ...options.emit, threads: options.threads };
      stepProgram = await compileGraph(step.graph, compile);
      const evalProgram = await compileGraph(evalGraph(forward), compile);
      return new OnnxEngine(model, options, state, stepProgram, evalProgram, training.sites);
    } catch (e) {
      await stepProgram?.dispose();
      if (e instanceof CompileError) {
        throw new CompileError(
          `--engine onnxruntime cannot compile the training step of this config: ${e.message} (--engine tfjs trains it eagerly)`,
          { rule: 'train-step', cause: e },
        );
      }
      if (e instanceof EinvitError) throw e;
      throw new CompileError(
        `--engine onnxruntime could not build the training step: ${(e as Error).message}`,
        { rule: 'train-step', cause: e },
      );
    }
  }

  private pixels(images: Float32Array, size: number) {
    const c = this.model.config;
    return { data: images, shape: [size, c.num_channels, c.image_size, c.image_size] };
  }

  async step(batch: GradBatch, o: StepOptions): Promise<{ loss: number; correct: number }> {
    // labelSmoothing and clip are baked into the graph (the run's options); the step's seed draws
    // the dropout masks.
    const raw = await this.stepProgram.runRaw({
      [PIXEL_INPUT]: this.pixels(batch.images, batch.size),
      ...dropoutMasks(this.dropout, batch.size, o.seed),
      ...this.state.feeds(batch.labels, o.lr),
    });
    const outputs: Record<string, Float32Array> = {};
    for (const [k, t] of Object.entries(raw)) outputs[k] = t.data as Float32Array;
    const { loss, correct } = this.state.accept(outputs);
    return { loss, correct };
  }

  async evaluate(ds: Dataset): Promise<EvalResult> {
    const params: Record<string, { data: Float32Array; shape: readonly number[] }> = {};
    for (const p of this.state.step.params)
      params[p.name] = { data: this.state.values.get(p.name)!, shape: p.shape };
    const predictions = new Int32Array(ds.count);
    let lossSum = 0;
    let at = 0;
    for (const b of batches(ds, { batchSize: EVAL_BATCH, shuffle: false })) {
      const raw = await this.evalProgram.runRaw({
        [PIXEL_INPUT]: this.pixels(b.images, b.size),
        [EVAL_IO.labels]: { data: b.labels, shape: [b.size] },
        ...params,
      });
      lossSum += Number((raw[EVAL_IO.lossSum].data as Float32Array)[0]);
      const pred = raw[EVAL_IO.predictions].data as Int32Array | BigInt64Array;
      for (let i = 0; i < b.size; i++) predictions[at + i] = Number(pred[i]);
      at += b.size;
    }
    let correct = 0;
    for (let i = 0; i < ds.count; i++) if (predictions[i] === ds.labels[i]) correct++;
    return { loss: lossSum / ds.count, acc: correct / ds.count, predictions };
  }

  syncModel(): void {
    for (const [name, v] of this.model.parameters()) {
      const data = this.state.values.get(name);
      if (data) tf.tidy(() => v.assign(tf.tensor(data, v.shape, 'float32')));
    }
  }

  optimizerState(): OptimizerState {
    return this.state.exportState();
  }

  async dispose(): Promise<void> {
    if (this.disposed) return;
    this.disposed = true;
    await this.stepProgram.dispose();
    await this.evalProgram.dispose();
  }
}
