// Runs an einsum plan with tfjs ops: the only part of einsum that touches tensors.
import { tf } from '../tf.js';
import { checkAllocation, sizeOf } from './limits.js';
import { matMul2d } from './matmul.js';
import { batchProduct, chooseBatchStrategy } from './einsum-strategies.js';
import {
  fail,
  fmtShape,
  type BatchStrategy,
  type ContractStep,
  type EinsumPlan,
  type PrepareStep,
} from './einsum-plan.js';

function contract(
  step: ContractStep,
  left: tf.Tensor,
  right: tf.Tensor,
  dtype: 'float32' | 'int32',
): tf.Tensor {
  const { g, m, k, n } = step;
  const l = step.permLeft ? tf.transpose(left, [...step.permLeft]) : left;
  const r = step.permRight ? tf.transpose(right, [...step.permRight]) : right;
  const a = l.reshape(step.leftT ? [g, k, m] : [g, m, k]) as tf.Tensor3D;
  const b = r.reshape(step.rightT ? [g, n, k] : [g, k, n]) as tf.Tensor3D;
  let strategy: BatchStrategy;
  if (dtype === 'int32')
    strategy = 'mulsum'; // tfjs-wasm matMul and conv are float32-only; this is exact
  else if (g === 1 && step.strategy !== 'mulsum') {
    const a2 = a.reshape(step.leftT ? [k, m] : [m, k]) as tf.Tensor2D;
    const b2 = b.reshape(step.rightT ? [n, k] : [k, n]) as tf.Tensor2D;
    const y = matMul2d(step.leftT ? tf.transpose(a2) : a2, step.rightT ? tf.transpose(b2) : b2);
    return y.reshape(step.shape as number[]);
  } else strategy = step.strategy === 'auto' ? chooseBatchStrategy(g, m, k, n) : step.strategy;
  return batchProduct(a, b, step.leftT, step.rightT, strategy).reshape(step.shape as number[]);
}

function prepare(step: PrepareStep, x: tf.Tensor): tf.Tensor {
  let y = step.squeezeTo ? x.reshape(step.squeezeTo as number[]) : x;
  for (const { a, b, n } of step.diagonals) {
    // Multiply by an identity mask spanning axes a and b, then sum b away: differentiable, no gather.
    const maskShape = y.shape.map((_, axis) => (axis === a || axis === b ? n : 1));
    y = tf.sum(tf.mul(y, tf.eye(n, n, undefined, y.dtype as 'float32' | 'int32').reshape(maskShape)), b);
  }
  return step.sumAxes.length > 0 ? tf.sum(y, step.sumAxes as number[]) : y;
}

const zerosWithGrad = (shape: number[], dtype: tf.DataType) =>
  tf.customGrad((...args: unknown[]) => {
    const inputs = args.slice(0, -1) as tf.Tensor[];
    return { value: tf.zeros(shape, dtype), gradFunc: () => inputs.map((t) => tf.zerosLike(t)) };
  });

/**
 * Executes a plan from {@link planEinsum} on tensors of exactly the planned shapes, under tf.tidy.
 * Result dtype: int32 when every input is int32 (or bool), bool when every input is bool, else float32.
 *
 * @example
 * const plan = planEinsum([['b', 'n', 'i'], ['o', 'i']], ['b', 'n', 'o'], [[8, 17, 96], [384, 96]]);
 * const y = runEinsum(plan, [x, weight]); // one [136, 96] @ [96, 384] product
 */
export function runEinsum(plan: EinsumPlan, tensors: readonly tf.Tensor[]): tf.Tensor {
  if (tensors.length !== plan.inputShapes.length) {
    fail(`Einsum plan expects ${plan.inputShapes.length} tensor(s) but got ${tensors.length}.`);
  }
  tensors.forEach((t, i) => {
    const want = plan.inputShapes[i];
    if (t.shape.length !== want.length || t.shape.some((d, axis) => d !== want[axis])) {
      fail(`Einsum operand ${i} has shape ${fmtShape(t.shape)} but the plan was made for ${fmtShape(want)}.`);
    }
    if (t.dtype !== 'float32' && t.dtype !== 'int32' && t.dtype !== 'bool') {
      fail(`Einsum operand ${i} has dtype ${t.dtype}; expected float32, int32 or bool.`);
    }
  });
  const allBool = tensors.every((t) => t.dtype === 'bool');
  const dtype = tensors.some((t) => t.dtype === 'float32') ? 'float32' : 'int32';
  checkAllocation(peakElements(plan, dtype), dtype, 'einsum (largest tensor it makes)');
  return tf.tidy(() => {
    const inputs = tensors.map((t) => (t.dtype === dtype ? t : tf.cast(t, dtype)));
    let result: tf.Tensor;
    if (plan.zeroSize) {
      result = zerosWithGrad(plan.outputShape as number[], dtype)(...inputs) as tf.Tensor;
    } else {
      const slots: tf.Tensor[] = [];
      for (const step of plan.steps) {
        if (step.kind === 'prepare') slots.push(prepare(step, inputs[step.operand]));
        else if (step.kind === 'contract')
          slots.push(contract(step, slots[step.left], slots[step.right], dtype));
        else {
          const last = slots[slots.length - 1];
          result = (step.perm ? tf.transpose(last, step.perm as number[]) : last).reshape(
            step.shape as number[],
          );
        }
      }
      result = result!;
      // A pure relabelling must still return a new tensor that tidy does not dispose.
      if (inputs.includes(result)) result = tf.clone(result);
    }
    return allBool ? tf.notEqual(result, 0) : result;
  });
}

/**
 * Elements of the largest tensor running `plan` makes: the output or a pairwise product, and for int32
 * the broadcast product of 'mulsum' (g * m * k * n), the only int32 strategy.
 */
function peakElements(plan: EinsumPlan, dtype: 'float32' | 'int32'): number {
  let peak = sizeOf(plan.outputShape);
  for (const step of plan.steps) {
    if (step.kind !== 'contract') continue;
    peak = Math.max(peak, sizeOf(step.shape));
    if (dtype === 'int32') peak = Math.max(peak, sizeOf([step.g, step.m, step.k, step.n]));
  }
  return peak;
}
