// Layer forms of the operations, usable inside tfjs models and serialisable with tfjs' registry.
import { tf } from '../tf.js';
import { EinopsError } from '../errors.js';
import type { Expression } from '../dsl/ast.js';
import { parsePattern, parseSide } from '../dsl/index.js';
import { einsum, planFor, rearrange, reduce, type AxesLengths } from '../ops.js';
import type { Operation, ReductionName } from '../compiler/recipe.js';

type Shape = Array<number | null>;
type LayerArgs = ConstructorParameters<typeof tf.layers.Layer>[0];

/** Output shape of a pattern for an input shape with unknown (null) dimensions. */
function patternOutputShape(op: Operation, pattern: string, shape: Shape, lengths: AxesLengths): Shape {
  // Run the plan with two different stand-ins for each unknown length: dimensions that change with
  // them depend on an unknown one and are unknown too.
  const given = new Map(Object.entries(lengths));
  const withStandIn = (k: number) => shape.map((d) => (d === null ? k : d));
  const a = planFor(op, pattern, withStandIn(2 * 3 * 5 * 7 * 11 * 13), given).outputShape;
  if (!shape.includes(null)) return [...a];
  const b = planFor(op, pattern, withStandIn(2 * 3 * 5 * 7 * 11 * 13 * 17), given).outputShape;
  return a.map((d, i) => (d === b[i] ? d : null));
}

function single(inputs: tf.Tensor | tf.Tensor[]): tf.Tensor {
  return Array.isArray(inputs) ? inputs[0] : inputs;
}

export interface RearrangeArgs extends NonNullable<LayerArgs> {
  pattern: string;
  axesLengths?: Record<string, number>;
}

/**
 * `rearrange` as a layer.
 *
 * @example
 * const model = tf.sequential({ layers: [
 *   new Rearrange({ pattern: 'b h w c -> b (h w c)', inputShape: [4, 4, 3] }),
 *   tf.layers.dense({ units: 10 }),
 * ] });
 */
export class Rearrange extends tf.layers.Layer {
  static className = 'Rearrange';
  readonly pattern: string;
  readonly axesLengths: Record<string, number>;

  constructor(args: RearrangeArgs) {
    super(args);
    this.pattern = args.pattern;
    this.axesLengths = { ...(args.axesLengths ?? {}) };
    parsePattern(this.pattern); // reject a malformed pattern when the layer is made
  }

  override computeOutputShape(inputShape: Shape): Shape {
    return patternOutputShape('rearrange', this.pattern, inputShape, this.axesLengths);
  }

  override call(inputs: tf.Tensor | tf.Tensor[]): tf.Tensor {
    return rearrange(single(inputs), this.pattern, this.axesLengths);
  }

  override getConfig(): tf.serialization.ConfigDict {
    return { ...super.getConfig(), pattern: this.pattern, axesLengths: this.axesLengths };
  }
}

export interface ReduceArgs extends RearrangeArgs {
  reduction: ReductionName;
}

/**
 * `reduce` as a layer (pooling written as a pattern).
 *
 * @example
 * new Reduce({ pattern: 'b (h 2) (w 2) c -> b h w c', reduction: 'max' }); // 2x2 max pooling
 */
export class Reduce extends tf.layers.Layer {
  static className = 'Reduce';
  readonly pattern: string;
  readonly reduction: ReductionName;
  readonly axesLengths: Record<string, number>;

  constructor(args: ReduceArgs) {
    super(args);
    this.pattern = args.pattern;
    this.reduction = args.reduction;
    this.axesLengths = { ...(args.axesLengths ?? {}) };
    parsePattern(this.pattern);
  }

  override computeOutputShape(inputShape: Shape): Shape {
    return patternOutputShape(this.reduction, this.pattern, inputShape, this.axesLengths);
  }

  override call(inputs: tf.Tensor | tf.Tensor[]): tf.Tensor {
    return reduce(single(inputs), this.pattern, this.reduction, this.axesLengths);
  }

  override getConfig(): tf.serialization.ConfigDict {
    return {
      ...super.getConfig(),
      pattern: this.pattern,
      reduction: this.reduction,
      axesLengths: this.axesLengths,
    };
  }
}

export interface EinMixArgs extends NonNullable<LayerArgs> {
  /** e.g. `'b t c -> b t c_out'`. */
  pattern: string;
  /** Axes of the weight, e.g. `'c c_out'`. */
  weightShape: string;
  /** Axes of the bias (all on the right side), e.g. `'c_out'`; no bias when absent. */
  biasShape?: string;
  /** Lengths of every weight and bias axis. */
  axesLengths: Record<string, number>;
}

function names(e: Expression): string[] {
  const out: string[] = [];
  for (const d of e.dims) for (const a of d.axes) if (a.kind === 'named') out.push(a.name);
  return out;
}

/** Elementary axes of a side, each dimension flattened (`(h c) w` -> `h c w`). */
function flatten(e: Expression): string {
  return e.dims
    .map((d) =>
      d.axes
        .map((a) => (a.kind === 'named' ? a.name : a.kind === 'ellipsis' ? '...' : String(a.value)))
        .join(' '),
    )
    .filter((s) => s !== '')
    .join(' ');
}

function report(axes: string[], message: string): void {
  if (axes.length > 0) throw new EinopsError(`EinMix: ${message}: ${axes.map((a) => `'${a}'`).join(', ')}`);
}

/**
 * einops' EinMix: a dense layer whose weight and bias shapes come from a pattern; the contraction
 * runs as einvit's einsum (2-D matMuls). Weights are initialised uniform(±sqrt(3 / fan_in)), biases
 * uniform(±sqrt(1 / fan_in)), fan_in = the product of weight axes absent on the right.
 *
 * @example
 * new EinMix({ pattern: 'b t c -> b t c_out', weightShape: 'c c_out', biasShape: 'c_out', axesLengths: { c: 64, c_out: 128 } });
 * // a per-head linear layer
 * new EinMix({ pattern: 'b t (h c) -> b t (h d)', weightShape: 'h c d', axesLengths: { h: 4, c: 16, d: 16 } });
 */
export class EinMix extends tf.layers.Layer {
  static className = 'EinMix';
  readonly pattern: string;
  readonly weightShape: string;
  readonly biasShape?: string;
  readonly axesLengths: Record<string, number>;
  private readonly pre?: { pattern: string; lengths: Record<string, number> };
  private readonly post?: { pattern: string; lengths: Record<string, number> };
  private readonly contraction: string;
  private readonly weightDims: number[];
  private readonly biasDims?: number[];
  private readonly fanIn: number;
  private kernel?: tf.LayerVariable;
  private bias?: tf.LayerVariable;

  constructor(args: EinMixArgs) {
    super(args);
    this.pattern = args.pattern;
    this.weightShape = args.weightShape;
    this.biasShape = args.biasShape;
    this.axesLengths = { ...args.axesLengths };
    const parsed = parsePattern(this.pattern);
    const { left, right } = parsed;
    const weight = parseSide(this.weightShape);
    const l = new Set(names(left));
    const r = new Set(names(right));
    const w = names(weight);
    report(
      [...r].filter((a) => !l.has(a) && !w.includes(a)),
      'unrecognized identifiers on the right side',
    );
    if (weight.hasEllipsis) throw new EinopsError('EinMix: ellipsis is not supported in the weight shape');
    if (left.hasEllipsis !== right.hasEllipsis) {
      throw new EinopsError(`EinMix: ellipsis must be on both sides or neither: "${this.pattern}"`);
    }
    if (left.ellipsisInGroup)
      throw new EinopsError(`EinMix: ellipsis on the left can't be in parentheses: "${this.pattern}"`);
    if (left.hasAnonymous || right.hasAnonymous || weight.hasAnonymous) {
      throw new EinopsError('EinMix: anonymous (numeric) axes are not allowed');
    }
    if (weight.dims.some((d) => d.grouped)) {
      throw new EinopsError(`EinMix: parentheses are not allowed in the weight shape: "${this.weightShape}"`);
    }
    report(
      w.filter((a) => !(a in this.axesLengths)),
      'give the length of weight axes',
    );
    report(
      Object.keys(this.axesLengths).filter((a) => !l.has(a) && !w.includes(a)),
      'axes not used in the pattern',
    );
    report(
      w.filter((a) => !l.has(a) && !r.has(a)),
      'redundant weight axes',
    );
    const leftFlat = flatten(left);
    const rightFlat = flatten(right);
    if (left.dims.some((d) => d.axes.length !== 1 || d.grouped)) {
      const lengths = Object.fromEntries(Object.entries(this.axesLengths).filter(([k]) => l.has(k)));
      this.pre = { pattern: `${parsed.source.split('->')[0]}-> ${leftFlat}`, lengths };
    }
    if (right.dims.some((d) => d.axes.length !== 1 || d.grouped)) {
      const lengths = Object.fromEntries(Object.entries(this.axesLengths).filter(([k]) => r.has(k)));
      this.post = { pattern: `${rightFlat} ->${parsed.source.split('->')[1]}`, lengths };
    }
    this.contraction = `${leftFlat}, ${w.join(' ')} -> ${rightFlat}`;
    this.weightDims = w.map((a) => this.axesLengths[a]);
    this.fanIn = w.filter((a) => !r.has(a)).reduce((p, a) => p * this.axesLengths[a], 1);
    if (this.biasShape !== undefined) {
      const bias = new Set(names(parseSide(this.biasShape)));
      report(
        [...bias].filter((a) => !r.has(a)),
        'bias axes not present in the output',
      );
      report(
        [...bias].filter((a) => !(a in this.axesLengths)),
        'give the length of bias axes',
      );
      const dims: number[] = [];
      let sawBias = false;
      for (const d of right.dims) {
        for (const a of d.axes) {
          if (a.kind === 'ellipsis') {
            if (sawBias)
              throw new EinopsError('EinMix: all bias axes must come after the ellipsis in the output');
          } else if (a.kind === 'named' && bias.has(a.name)) {
            dims.push(this.axesLengths[a.name]);
            sawBias = true;
          } else {
            dims.push(1);
          }
        }
      }
      this.biasDims = dims;
    }
  }

  override build(): void {
    const wBound = Math.sqrt(3 / this.fanIn);
    this.kernel = this.addWeight(
      'weight',
      this.weightDims,
      'float32',
      tf.initializers.randomUniform({ minval: -wBound, maxval: wBound }),
    );
    if (this.biasDims) {
      const bBound = Math.sqrt(1 / this.fanIn);
      this.bias = this.addWeight(
        'bias',
        this.biasDims,
        'float32',
        tf.initializers.randomUniform({ minval: -bBound, maxval: bBound }),
      );
    }
    this.built = true;
  }

  override computeOutputShape(inputShape: Shape): Shape {
    const probe = tf.zeros(inputShape.map((d) => (d === null ? 1 : d)));
    const out = this.apply(probe) as tf.Tensor;
    const shape: Shape = [...out.shape];
    tf.dispose([probe, out]);
    if (inputShape[0] === null) shape[0] = null;
    return shape;
  }

  override call(inputs: tf.Tensor | tf.Tensor[]): tf.Tensor {
    return tf.tidy(() => {
      let x = single(inputs);
      if (this.pre) x = rearrange(x, this.pre.pattern, this.pre.lengths);
      let y = einsum(this.contraction, x, this.kernel!.read());
      if (this.bias) y = tf.add(y, this.bias.read());
      if (this.post) y = rearrange(y, this.post.pattern, this.post.lengths);
      return y;
    });
  }

  override getConfig(): tf.serialization.ConfigDict {
    const config: tf.serialization.ConfigDict = {
      ...super.getConfig(),
      pattern: this.pattern,
      weightShape: this.weightShape,
      axesLengths: this.axesLengths,
    };
    if (this.biasShape !== undefined) config.biasShape = this.biasShape;
    return config;
  }
}

tf.serialization.registerClass(Rearrange);
tf.serialization.registerClass(Reduce);
tf.serialization.registerClass(EinMix);
