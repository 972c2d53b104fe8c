// Executes a plan with tfjs ops. The only place where reduction names meet tfjs functions.
import { tf } from '../tf.js';
import { EinopsError } from '../errors.js';
import { bytesPerElement, checkAllocation } from './limits.js';
import { planFootprint, type Plan, type Step } from './plan.js';
import type { Operation } from './recipe.js';

/** A custom reduction: receives the tensor and the (positive) axes to reduce. */
export type ReductionFn = (x: tf.Tensor, axes: number[]) => tf.Tensor;

/**
 * Reductions over zero elements give the identity (numpy's results); computed here because some
 * backends return uninitialised memory for them.
 */
function emptyReduction(x: tf.Tensor, axes: number[], reduction: Operation): tf.Tensor {
  const shape = x.shape.filter((_, i) => !axes.includes(i));
  const widened = x.dtype === 'bool' ? 'int32' : x.dtype;
  switch (reduction) {
    case 'sum':
      return tf.zeros(shape, widened);
    case 'prod':
      return tf.ones(shape, widened);
    case 'mean':
      return tf.fill(shape, NaN, 'float32');
    case 'any':
      return tf.zeros(shape, 'bool');
    case 'all':
      return tf.ones(shape, 'bool');
    default:
      if (shape.reduce((p, d) => p * d, 1) === 0) return tf.zeros(shape, x.dtype);
      throw new EinopsError(`Cannot take ${reduction} over an axis of length 0 (it has no identity)`, {
        rule: 'empty-reduction',
      });
  }
}

/**
 * Sum over the leading axes of a float tensor as one matMul with a row of ones: tfjs' sum kernels
 * reduce the innermost axes and transpose everything else first (a full copy). The gradient is the
 * upstream gradient repeated over the summed rows.
 */
const sumLeading = tf.customGrad((x) => {
  const x2d = x as tf.Tensor2D;
  const [rows, cols] = x2d.shape;
  return {
    value: tf.reshape(tf.matMul(tf.ones([1, rows]), x2d), [cols]),
    gradFunc: (dy) => tf.tile(tf.reshape(dy as tf.Tensor, [1, cols]), [rows, 1]),
  };
}) as (x: tf.Tensor2D) => tf.Tensor1D;

/**
 * `tf.tile` with a gradient that sums the repeats in one reduction; tfjs' own Tile gradient adds
 * one slice per repeat (hundreds of ops for a batch-wide repeat).
 */
function tileWithGrad(x: tf.Tensor, reps: number[]): tf.Tensor {
  const tile = tf.customGrad((input) => {
    const t = input as tf.Tensor;
    return {
      value: tf.tile(t, reps),
      gradFunc: (dy) => {
        const g = dy as tf.Tensor;
        const interleaved = t.shape.flatMap((d, i) => [reps[i], d]);
        const repAxes = reps.map((_, i) => 2 * i).filter((a) => reps[a / 2] !== 1);
        const split = tf.reshape(g, interleaved);
        if (repAxes.length === 1 && repAxes[0] === 0 && t.dtype === 'float32') {
          return tf.reshape(sumLeading(tf.reshape(split, [reps[0], t.size])), t.shape);
        }
        return tf.reshape(tf.sum(split, repAxes), t.shape);
      },
    };
  });
  return tile(x);
}

function isLeading(axes: readonly number[]): boolean {
  return axes.length > 0 && axes.every((a, i) => a === i);
}

function reduceStep(x: tf.Tensor, axes: number[], reduction: Operation | ReductionFn): tf.Tensor {
  if (typeof reduction === 'function') return reduction(x, axes);
  const dtype = x.dtype;
  const reducedSize = axes.reduce((p, a) => p * x.shape[a], 1);
  if (reducedSize === 0) return emptyReduction(x, axes, reduction);
  if (
    (reduction === 'sum' || reduction === 'mean') &&
    dtype === 'float32' &&
    x.size > 0 &&
    isLeading(axes) &&
    axes.length < x.rank
  ) {
    const rest = x.shape.slice(axes.length);
    const rows = reducedSize;
    const s = sumLeading(tf.reshape(x, [rows, rest.reduce((p, d) => p * d, 1)]));
    const shaped = tf.reshape(s, rest);
    return reduction === 'mean' ? tf.div(shaped, tf.scalar(rows)) : shaped;
  }
  switch (reduction) {
    case 'sum':
      return tf.sum(dtype === 'bool' ? tf.cast(x, 'int32') : x, axes);
    case 'mean':
      return tf.mean(x, axes);
    case 'prod':
      return tf.prod(dtype === 'bool' ? tf.cast(x, 'int32') : x, axes);
    case 'max':
    case 'min': {
      if (dtype === 'bool') {
        const r = reduction === 'max' ? tf.max(tf.cast(x, 'int32'), axes) : tf.min(tf.cast(x, 'int32'), axes);
        return tf.cast(r, 'bool');
      }
      return reduction === 'max' ? tf.max(x, axes) : tf.min(x, axes);
    }
    case 'any':
    case 'all': {
      const b = dtype === 'bool' ? x : tf.notEqual(x, tf.scalar(0, dtype));
      return reduction === 'any' ? tf.any(b, axes) : tf.all(b, axes);
    }
    default:
      throw new EinopsError(`Unknown reduction '${String(reduction)}'`, { rule: 'unknown-reduction' });
  }
}

function runStep(x: tf.Tensor, step: Step, reduction?: ReductionFn): tf.Tensor {
  switch (step.kind) {
    case 'reshape':
      return tf.reshape(x, step.shape as number[]);
    case 'transpose':
      // wasm's transpose divides by zero on empty tensors; an empty tensor only needs its shape
      if (x.size === 0)
        return tf.reshape(
          x,
          step.perm.map((p) => x.shape[p]),
        );
      return tf.transpose(x, step.perm as number[]);
    case 'reduce':
      return reduceStep(x, step.axes as number[], reduction ?? step.reduction);
    case 'tile':
      if (x.size === 0)
        return tf.zeros(
          x.shape.map((d, i) => d * step.reps[i]),
          x.dtype,
        );
      return x.dtype === 'float32'
        ? tileWithGrad(x, step.reps as number[])
        : tf.tile(x, step.reps as number[]);
  }
}

/**
 * What a plan needs of its input beyond its shape, checked before anything is allocated: a float
 * tensor for 'mean', and room for the largest tensor it makes (limits.ts).
 */
export function checkPlanInput(plan: Plan, x: tf.Tensor, reduction?: ReductionFn): void {
  const mean = plan.steps.some((s) => s.kind === 'reduce' && s.reduction === 'mean');
  if (mean && reduction === undefined && x.dtype !== 'float32') {
    throw new EinopsError(`mean is not available for ${x.dtype} tensors (use a float tensor)`, {
      rule: 'mean-of-non-float',
    });
  }
  const { peak, total } = planFootprint(plan);
  checkAllocation(peak, x.dtype, 'result', (total - peak) * bytesPerElement(x.dtype));
}

/**
 * Runs every step of `plan` on `x` (a tensor of `plan.inputShape`); intermediate tensors are disposed.
 * The input is checked first ({@link checkPlanInput}).
 *
 * @example
 * const y = applyPlan(compile('rearrange', 'a b -> b a', [2, 3], new Map()), tf.zeros([2, 3])); // [3, 2]
 */
export function applyPlan(plan: Plan, x: tf.Tensor, reduction?: ReductionFn): tf.Tensor {
  checkPlanInput(plan, x, reduction);
  if (plan.steps.length === 0) return x.clone();
  return tf.tidy(() => {
    let y = x;
    for (const step of plan.steps) y = runStep(y, step, reduction);
    return y;
  });
}
