// The whole training step as one graph: forward, label-smoothed cross-entropy, backward (the IR's
// autodiff), global-norm clipping and the AdamW update, with the eager trainer's semantics
// (src/train/optimizer.ts). Parameters and optimizer moments are graph inputs and outputs, so a host
// loop only feeds a batch and swaps buffers; the whole step is one call of any runtime that runs the
// IR (its tfjs interpreter, or onnxruntime through the ONNX emitter).
import { CompileError, UsageError } from '../errors.js';
import { dimEq, fmtShape, type Dim } from '../ir/dims.js';
import { grad } from '../ir/grad.js';
import { rebuild, type Sym } from '../ir/builder.js';
import type { Graph } from '../ir/graph.js';
import { defaultNoDecay, type OptimizerState } from '../train/optimizer.js';
import type { tf } from '../tf.js';

/** Options of {@link trainStepGraph}; defaults are the trainer's recipe and PyTorch's AdamW. */
export interface TrainStepOptions {
  /** The forward graph's logits output `[N, classes]`. Default `'logits'`. */
  readonly logits?: string;
  /** Label smoothing of the cross-entropy, as in `tf.losses.softmaxCrossEntropy`. Default 0.1. */
  readonly labelSmoothing?: number;
  /** Global gradient-norm clip (PyTorch `clip_grad_norm_`); 0 turns it off. Default 1. */
  readonly clip?: number;
  /** Decoupled weight decay. Default 0.01 (AdamW's). */
  readonly weightDecay?: number;
  readonly beta1?: number;
  readonly beta2?: number;
  readonly eps?: number;
  /**
   * Parameters exempt from weight decay. Default: the trainer's `defaultNoDecay` (rank <= 1: biases
   * and norms; class/distillation/register tokens and position embeddings).
   */
  readonly noDecay?: (name: string, shape: readonly number[]) => boolean;
  /** Also output each parameter's gradient (before clipping) as `grad.<name>`. Default false. */
  readonly outputGrads?: boolean;
}

/** One trainable parameter of a step graph: its name, shape and initial values (from the forward graph). */
export interface StepParam {
  readonly name: string;
  readonly shape: readonly number[];
  readonly initial: Float32Array;
  /** Whether weight decay applies. */
  readonly decay: boolean;
  /** Where its values start in the flat `params` buffer (and its moments in theirs). */
  readonly offset: number;
  /** Its element count. */
  readonly size: number;
}

/** Names of the step graph's scalar inputs and outputs. */
export const STEP_IO = {
  /** Every parameter's values end to end, float32 `[P]` (see `StepParam.offset`). */
  params: 'params',
  /** AdamW's first and second moments, laid out as `params`. */
  expAvg: 'exp_avg',
  expAvgSq: 'exp_avg_sq',
  labels: 'labels',
  lr: 'lr',
  step: 'step',
  loss: 'loss',
  correct: 'correct',
  gradNorm: 'grad_norm',
} as const;

/** Names of a parameter's moments (as the eager AdamW's state names them) and of updated buffers. */
export const stepNames = {
  expAvg: (name: string) => `${name}.exp_avg`,
  expAvgSq: (name: string) => `${name}.exp_avg_sq`,
  /** The output holding the updated value of a flat input (`params`, `exp_avg`, `exp_avg_sq`). */
  next: (name: string) => `next.${name}`,
};

/** The three flat buffers a step reads and replaces. */
const FLAT_BUFFERS = [STEP_IO.params, STEP_IO.expAvg, STEP_IO.expAvgSq] as const;

/** A training step graph and what a host loop needs to drive it. */
export interface TrainStep {
  /**
   * Inputs: the forward graph's own inputs (e.g. `pixel_values`), `labels` `[N]` int32, `lr` (the
   * scheduled learning rate) and `step` (the 1-based count of this update, for bias correction), both
   * float32 scalars; `params`, `exp_avg` and `exp_avg_sq`: every parameter's values and moments in
   * one flat float32 buffer each (layout in `params`). Outputs: `loss` (mean label-smoothed
   * cross-entropy), `correct` (arg-max hits), `grad_norm` (before clipping), and `next.params`,
   * `next.exp_avg`, `next.exp_avg_sq`.
   */
  readonly graph: Graph;
  /** The parameters in the flat buffers' order: decayed ones first, so decay scales one prefix. */
  readonly params: readonly StepParam[];
  /** Elements of each flat buffer. */
  readonly size: number;
  /** The forward graph's data inputs (not parameters), by name. */
  readonly dataInputs: readonly string[];
}

/**
 * Builds the training step of a traced forward graph (e.g. `traceViT(cfg, model.state())`): its
 * parameters become inputs, and the step computes the loss, gradients, clipping and the AdamW update
 * exactly as the eager trainer does (`p -= lr*wd*p` for decayed names; `m = b1*m + (1-b1)*g`;
 * `v = b2*v + (1-b2)*g²`; `p -= lr/(1-b1^t) * m / (sqrt(v)/sqrt(1-b2^t) + eps)`). Every parameter
 * is updated every step: all of a ViT's parameters get a gradient.
 *
 * @example
 * const step = trainStepGraph(traceViT(cfg, model.state()), { weightDecay: 0.05 });
 * const state = new StepState(step);
 * const out = evaluate(step.graph, { pixel_values, ...state.feeds(labels, lr) });
 */
export function trainStepGraph(forward: Graph, options: TrainStepOptions = {}): TrainStep {
  const o = {
    logits: options.logits ?? 'logits',
    labelSmoothing: options.labelSmoothing ?? 0.1,
    clip: options.clip ?? 1,
    weightDecay: options.weightDecay ?? 0.01,
    beta1: options.beta1 ?? 0.9,
    beta2: options.beta2 ?? 0.999,
    eps: options.eps ?? 1e-8,
    noDecay:
      options.noDecay ??
      ((name: string, shape: readonly number[]) =>
        // defaultNoDecay reads the rank only.
        defaultNoDecay(name, { rank: shape.length } as unknown as tf.Variable)),
  };
  for (const [key, v] of [
    ['labelSmoothing', o.labelSmoothing],
    ['clip', o.clip],
    ['weightDecay', o.weightDecay],
    ['beta1', o.beta1],
    ['beta2', o.beta2],
    ['eps', o.eps],
  ] as const) {
    const bad =
      !(Number.isFinite(v) && v >= 0) ||
      ((key === 'beta1' || key === 'beta2' || key === 'labelSmoothing') && v >= 1);
    if (bad) throw new UsageError(`trainStepGraph: ${key} = ${v} is out of range`, { rule: 'train-step' });
  }
  const logitsOut = forward.outputs.find((x) => x.name === o.logits);
  if (!logitsOut) {
    throw new CompileError(
      `trainStepGraph: the forward graph has no output '${o.logits}' (outputs: ${forward.outputs.map((x) => x.name).join(', ')})`,
      { rule: 'train-step' },
    );
  }

  // Parameters become views of one flat input: the optimizer then runs a handful of ops over every
  // value at once instead of a dozen per parameter (onnxruntime pays per node, and a ViT has dozens
  // of small parameters).
  const params = flatLayout(forward, o.noDecay);
  const total = params.length === 0 ? 0 : params[params.length - 1].offset + params[params.length - 1].size;
  if (total === 0) {
    throw new CompileError('trainStepGraph: the forward graph has no float32 parameter to train', {
      rule: 'train-step',
    });
  }
  const byName = new Map(params.map((p) => [p.name, p]));
  let flat: Sym | undefined;
  const { g, syms } = rebuild(forward, (node, b) => {
    if (node.op.kind !== 'param') return undefined;
    const p = byName.get(node.op.name);
    if (!p) return undefined; // an integer table stays a constant
    flat ??= b.input(STEP_IO.params, [total]);
    return flat.slice(0, p.offset, p.offset + p.size).reshape(p.shape);
  });
  const dataInputs = forward.nodes.flatMap((n) => (n.op.kind === 'input' ? [n.op.name] : []));
  const logits = syms[logitsOut.id];
  if (logits.rank !== 2) {
    throw new CompileError(`trainStepGraph: logits must be [N, classes], got ${fmtShape(logits.shape)}`, {
      rule: 'train-step',
    });
  }
  const [n, classes] = logits.shape as [Dim, Dim];
  if (typeof classes !== 'number') {
    throw new CompileError(`trainStepGraph: the class axis of ${fmtShape(logits.shape)} is symbolic`, {
      rule: 'train-step',
    });
  }

  // Loss: tf.losses.softmaxCrossEntropy with label smoothing, mean over the batch.
  const labels = g.input(STEP_IO.labels, [n], 'int32');
  const hit = labels.reshape([n, 1]).equal(
    g.constant(
      Int32Array.from({ length: classes }, (_, i) => i),
      [1, classes],
    ),
  );
  const ls = o.labelSmoothing;
  const target = g.where(hit, 1 - ls + ls / classes, ls / classes);
  const loss = target.mul(logits.logSoftmax(-1)).sum([1]).mean([0]).neg();
  const correct = logits.argMax(-1).equal(labels).cast('float32').sum([0]);

  const paramSyms = params.map(
    (p) => syms[forward.nodes.findIndex((x) => x.op.kind === 'param' && x.op.name === p.name)],
  );
  const grads = grad(loss, paramSyms);
  const outputs: Record<string, Sym> = {
    [STEP_IO.loss]: loss,
    [STEP_IO.correct]: correct,
  };
  if (options.outputGrads) params.forEach((p, i) => (outputs[`grad.${p.name}`] = grads[i]));
  const gf =
    grads.length === 1
      ? grads[0].reshape([total])
      : g.concat(
          grads.map((x, i) => x.reshape([params[i].size])),
          0,
        );

  // Global-norm clipping: g * min(1, max / (norm + 1e-6)), the factor clipByGlobalNorm applies. The
  // factor c is a scalar: it joins AdamW's scalars below (m += c(1-b1)·g, v += c²(1-b2)·g², with g²
  // shared with the norm) instead of scaling every gradient first (two fewer passes over them).
  const sq = gf.mul(gf);
  const norm = sq.sum([0]).sqrt();
  const c = o.clip > 0 ? norm.add(1e-6).reciprocal().mul(o.clip).minimum(1) : undefined;

  // AdamW, PyTorch's update with one global step count, over the flat buffers.
  const p = flat!;
  const m = g.input(STEP_IO.expAvg, [total]);
  const v = g.input(STEP_IO.expAvgSq, [total]);
  const lr = g.input(STEP_IO.lr, []);
  const t = g.input(STEP_IO.step, []);
  const stepSize = lr.div(oneMinusPow(o.beta1, t));
  const invBc2Sqrt = oneMinusPow(o.beta2, t).rsqrt();
  const m1 = m.mul(o.beta1).add(gf.mul(c ? c.mul(1 - o.beta1) : 1 - o.beta1));
  const v1 = v.mul(o.beta2).add(sq.mul(c ? c.mul(c).mul(1 - o.beta2) : 1 - o.beta2));
  // Decayed parameters come first in the layout: the decay scales a prefix.
  const decayed = params.filter((x) => x.decay).reduce((s, x) => s + x.size, 0);
  let p0 = p;
  if (o.weightDecay !== 0 && decayed > 0) {
    const factor = lr.mul(o.weightDecay).rsub(1);
    p0 =
      decayed === total
        ? p.mul(factor)
        : g.concat([p.slice(0, 0, decayed).mul(factor), p.slice(0, decayed, total)], 0);
  }
  const update = stepSize.mul(m1.div(v1.sqrt().mul(invBc2Sqrt).add(o.eps)));
  outputs[STEP_IO.gradNorm] = norm;
  outputs[stepNames.next(STEP_IO.params)] = p0.sub(update);
  outputs[stepNames.next(STEP_IO.expAvg)] = m1;
  outputs[stepNames.next(STEP_IO.expAvgSq)] = v1;
  checkBatch(n, dataInputs, forward);
  return { graph: g.build(outputs), params, size: total, dataInputs };
}

/** The float32 parameters of a forward graph in flat-buffer order: decayed first, then the rest. */
function flatLayout(
  forward: Graph,
  noDecay: (name: string, shape: readonly number[]) => boolean,
): StepParam[] {
  const found = forward.nodes.flatMap((node) => {
    const op = node.op;
    if (op.kind !== 'param' || op.type.dtype !== 'float32') return [];
    const shape = op.type.shape as number[];
    return [{ name: op.name, shape, initial: op.data as Float32Array, decay: !noDecay(op.name, shape) }];
  });
  const ordered = [...found.filter((p) => p.decay), ...found.filter((p) => !p.decay)];
  let offset = 0;
  return ordered.map((p) => {
    const size = p.shape.reduce((a, b) => a * b, 1);
    const placed = { ...p, offset, size };
    offset += size;
    return placed;
  });
}

/**
 * `1 - beta^t` for a graph scalar `t`, accurate in float32 where `beta` is near 1: the direct form
 * loses digits to cancellation (float32 `1 - 0.999` is off by 1.3e-5 relative), so it is computed
 * as `-expm1(t·ln beta)` with `expm1(a) = 2u / (1 - u)`, `u = tanh(a/2)`.
 */
function oneMinusPow(beta: number, t: Sym): Sym {
  const u = t.mul(0.5 * Math.log(beta)).tanh();
  return u.mul(-2).div(u.rsub(1));
}

/** The batch axis must be the first axis of a data input, so the runtime can bind it from the feed. */
function checkBatch(n: Dim, dataInputs: readonly string[], forward: Graph): void {
  if (typeof n === 'number') return;
  const defined = forward.nodes.some(
    (x) => x.op.kind === 'input' && dataInputs.includes(x.op.name) && x.type.shape.some((d) => dimEq(d, n)),
  );
  if (!defined) {
    throw new CompileError(
      `trainStepGraph: no data input has the batch axis ${fmtShape([n])} of the logits`,
      {
        rule: 'train-step',
      },
    );
  }
}

/** Float32 data with its shape (what a step's feeds and outputs carry). */
export interface HostTensor {
  readonly data: Float32Array | Int32Array;
  readonly shape: readonly number[];
}

/**
 * The host side of a step graph: the flat parameter and moment buffers, fed into the graph and
 * replaced by its outputs after each step (the buffer swap), plus the step count. `values` views
 * them by name (`<name>`, `<name>.exp_avg`, `<name>.exp_avg_sq`): no copies.
 *
 * @example
 * const state = new StepState(step);
 * for (const batch of batches) {
 *   const out = await session.run({ pixel_values: batch.pixels, ...state.feeds(batch.labels, lr) });
 *   const { loss, correct } = state.accept(out);
 * }
 */
export class StepState {
  /** Updates done so far (the `step` input of the next update is this plus one). */
  count = 0;
  /** Each parameter's values and moments by name: views of the current flat buffers. */
  readonly values = new Map<string, Float32Array>();
  private readonly buffers = new Map<string, Float32Array>();

  constructor(
    readonly step: TrainStep,
    /** Starting parameters by name (default: the forward graph's values); moments start at zero. */
    initial?: ReadonlyMap<string, Float32Array>,
  ) {
    for (const name of FLAT_BUFFERS) this.buffers.set(name, new Float32Array(step.size));
    const params = this.buffers.get(STEP_IO.params)!;
    for (const p of step.params) {
      const start = initial?.get(p.name) ?? p.initial;
      if (start.length !== p.size) {
        throw new UsageError(`StepState: '${p.name}' has ${start.length} values, expected ${p.size}`, {
          rule: 'train-step',
        });
      }
      params.set(start, p.offset);
    }
    this.view();
  }

  /** Points `values` at the current buffers. */
  private view(): void {
    const [params, m, v] = FLAT_BUFFERS.map((b) => this.buffers.get(b)!);
    for (const p of this.step.params) {
      const at = (buf: Float32Array) => buf.subarray(p.offset, p.offset + p.size);
      this.values.set(p.name, at(params));
      this.values.set(stepNames.expAvg(p.name), at(m));
      this.values.set(stepNames.expAvgSq(p.name), at(v));
    }
  }

  /**
   * The moments and step count in the eager AdamW's format (`AdamW.exportState`), so either engine
   * can resume the other's run.
   *
   * @example
   * const saved = state.exportState(); // { step, tensors: Map('<name>.exp_avg' -> ...) }
   */
  exportState(): OptimizerState {
    const tensors = new Map<string, { shape: number[]; data: Float32Array }>();
    for (const p of this.step.params) {
      for (const key of [stepNames.expAvg(p.name), stepNames.expAvgSq(p.name)]) {
        tensors.set(key, { shape: [...p.shape], data: this.values.get(key)!.slice() });
      }
    }
    return { step: this.count, tensors };
  }

  /**
   * Restores moments and the step count written by `exportState` here or by the eager `AdamW`;
   * every parameter's moments must be present with its shape.
   *
   * @example
   * state.importState(adamw.exportState());
   */
  importState(state: OptimizerState): void {
    if (!(Number.isInteger(state.step) && state.step >= 0)) {
      throw new UsageError(`StepState.importState: step must be a non-negative integer, got ${state.step}`, {
        rule: 'train-step',
      });
    }
    const known = new Set<string>();
    for (const p of this.step.params) {
      for (const key of [stepNames.expAvg(p.name), stepNames.expAvgSq(p.name)]) {
        known.add(key);
        const entry = state.tensors.get(key);
        const size = p.shape.reduce((a, b) => a * b, 1);
        if (!entry) throw new UsageError(`StepState.importState: missing '${key}'`, { rule: 'train-step' });
        if (entry.data.length !== size || entry.shape.join() !== p.shape.join()) {
          throw new UsageError(
            `StepState.importState: '${key}' has shape [${entry.shape.join(', ')}], parameter has [${p.shape.join(', ')}]`,
            { rule: 'train-step' },
          );
        }
      }
    }
    for (const key of state.tensors.keys()) {
      if (!known.has(key))
        throw new UsageError(`StepState.importState: unknown entry '${key}'`, { rule: 'train-step' });
    }
    for (const key of known) this.values.get(key)!.set(state.tensors.get(key)!.data);
    this.count = state.step;
  }

  /** The parameter, moment and scalar feeds of the next step (add the data inputs). */
  feeds(labels: Int32Array, lr: number): Record<string, HostTensor> {
    const out: Record<string, HostTensor> = {
      [STEP_IO.labels]: { data: labels, shape: [labels.length] },
      [STEP_IO.lr]: { data: Float32Array.of(lr), shape: [] },
      [STEP_IO.step]: { data: Float32Array.of(this.count + 1), shape: [] },
    };
    for (const name of FLAT_BUFFERS) out[name] = { data: this.buffers.get(name)!, shape: [this.step.size] };
    return out;
  }

  /** Takes a step's outputs (typed arrays by output name): swaps in the new buffers; returns loss and hits. */
  accept(outputs: Readonly<Record<string, ArrayLike<number>>>): {
    loss: number;
    correct: number;
    gradNorm: number;
  } {
    for (const name of FLAT_BUFFERS) {
      const next = outputs[stepNames.next(name)];
      if (!next || next.length !== this.step.size)
        throw new CompileError(
          `StepState: the step gave no '${stepNames.next(name)}' of ${this.step.size} values`,
          {
            rule: 'train-step',
          },
        );
      this.buffers.set(name, next instanceof Float32Array ? next : Float32Array.from(next));
    }
    this.view();
    this.count++;
    return {
      loss: outputs[STEP_IO.loss][0],
      correct: outputs[STEP_IO.correct][0],
      gradNorm: outputs[STEP_IO.gradNorm][0],
    };
  }
}
