// The public operations: check the arguments, compile (a cached plan, src/compiler), apply the plan.
import { tf } from './tf.js';
import { EinopsError } from './errors.js';
import { compile } from './compiler/index.js';
import { applyPlan, type ReductionFn } from './compiler/apply.js';
import {
  checkLengths,
  checkList,
  checkString,
  checkTensor,
  describe,
  stackList,
  withContext,
} from './compiler/arguments.js';
import { runEinsum } from './compiler/einsum.js';
import { applyPack, applyUnpack } from './compiler/pack.js';
import { REDUCTIONS, type Operation, type ReductionName } from './compiler/recipe.js';

export { planCache, planFor } from './compiler/index.js';

export type Tensor = tf.Tensor;
/** A reduction name as in einops, or a function `(x, axes) => tensor`. */
export type Reduction = ReductionName | ReductionFn;
/** Lengths of named axes, as einops' `**axes_lengths`. */
export type AxesLengths = Readonly<Record<string, number>>;

function transform(
  op: 'rearrange' | 'repeat' | 'reduce',
  x: unknown,
  pattern: unknown,
  reduction: unknown,
  axesLengths: unknown,
): tf.Tensor {
  checkString(pattern, op);
  const isList = Array.isArray(x);
  if (!isList && !(x instanceof tf.Tensor)) {
    throw new EinopsError(`${op}: expected a tf.Tensor or an array of tensors, got ${describe(x)}`, {
      rule: 'bad-argument',
    });
  }
  let operation: Operation;
  let custom: ReductionFn | undefined;
  if (op === 'reduce') {
    if (typeof reduction === 'function') {
      operation = 'sum';
      custom = reduction as ReductionFn;
    } else if (typeof reduction === 'string') {
      operation = reduction as Operation;
    } else {
      throw new EinopsError(`reduce: the reduction must be one of ${REDUCTIONS.join(', ')} or a function`, {
        rule: 'unknown-reduction',
      });
    }
  } else {
    operation = op;
  }
  const label = op === 'reduce' ? (custom ? 'custom' : String(reduction)) : op;
  let lengths = new Map<string, number>();
  try {
    lengths = checkLengths(axesLengths, op);
    if (isList) {
      const list = x as tf.Tensor[];
      const { shape, dtype } = checkList(list, op);
      const plan = compile(operation, pattern, shape, lengths);
      const stacked = stackList(list, dtype);
      try {
        return applyPlan(plan, stacked, custom);
      } finally {
        stacked.dispose();
      }
    }
    checkTensor(x, `${op}: the input`, '', true);
    return applyPlan(compile(operation, pattern, x.shape, lengths), x, custom);
  } catch (e) {
    throw withContext(e, label, pattern, isList ? 'list' : (x as tf.Tensor).shape, lengths);
  }
}

/**
 * Reorders, splits, merges, adds and removes unit axes, as einops' `rearrange`.
 *
 * @param x a tensor, or an array of tensors of one shape (stacked on a new first axis)
 * @param pattern e.g. `'b c (h p1) (w p2) -> b (h w) (c p1 p2)'`
 * @param axesLengths lengths of axes the input shape does not determine, e.g. `{ p1: 16, p2: 16 }`
 * @example
 * const y = rearrange(x, 'b h w c -> b c h w');            // [2, 4, 4, 3] -> [2, 3, 4, 4]
 * const patches = rearrange(img, 'b c (h p1) (w p2) -> b (h w) (c p1 p2)', { p1: 16, p2: 16 });
 */
export function rearrange(x: Tensor | Tensor[], pattern: string, axesLengths?: AxesLengths): Tensor {
  return transform('rearrange', x, pattern, undefined, axesLengths);
}

/**
 * Reduces axes that are absent on the right side (`sum`, `mean`, `max`, `min`, `prod`, `any`, `all`,
 * or a function), with any rearrangement in the same pattern, as einops' `reduce`.
 *
 * @example
 * reduce(x, 'b c h w -> b c', 'mean');                     // global average pooling
 * reduce(x, 'b (h 2) (w 2) c -> b h w c', 'max');          // 2x2 max pooling
 * reduce(x, 'b c h w -> b c 1 1', 'mean');                 // keep dims
 */
export function reduce(
  x: Tensor | Tensor[],
  pattern: string,
  reduction: Reduction,
  axesLengths?: AxesLengths,
): Tensor {
  return transform('reduce', x, pattern, reduction, axesLengths);
}

/**
 * Adds new axes, repeats (tiles) along them, as einops' `repeat`. New named axes need a length.
 *
 * @example
 * repeat(gray, 'h w -> h w c', { c: 3 });                  // [h, w] -> [h, w, 3]
 * repeat(cls, '() n e -> b n e', { b: 8 });                // broadcast a class token over the batch
 * repeat(img, 'h w -> (h 2) (w 2)');                       // nearest-neighbour upsampling
 */
export function repeat(x: Tensor | Tensor[], pattern: string, axesLengths?: AxesLengths): Tensor {
  return transform('repeat', x, pattern, undefined, axesLengths);
}

/**
 * Reads named lengths from a tensor's shape; `_` skips a dimension, `...` any number of them.
 *
 * @example
 * parseShape(tf.zeros([2, 3, 4, 4]), 'b _ h w');           // { b: 2, h: 4, w: 4 }
 */
export function parseShape(x: Tensor, pattern: string): Record<string, number> {
  checkString(pattern, 'parseShape');
  checkTensor(x, 'parseShape: the input', `parseShape: expected a tf.Tensor, got ${describe(x)}`, false);
  return { ...compile('parseShape', pattern, x.shape) };
}

/**
 * Packs several tensors into one along the `*` axis, as einops' `pack`; returns the packed tensor and
 * the shapes that `*` stood for in each input (for `unpack`).
 *
 * @example
 * const [packed, shapes] = pack([cls, patches], 'b * e');  // [b,1,e] + [b,196,e] -> [b,197,e]
 * const [cls2, patches2] = unpack(packed, shapes, 'b * e');
 */
export function pack(tensors: Tensor[], pattern: string): [Tensor, number[][]] {
  checkString(pattern, 'pack');
  if (!Array.isArray(tensors)) {
    throw new EinopsError(`pack: expected an array of tensors, got ${describe(tensors)}`, {
      rule: 'bad-argument',
    });
  }
  tensors.forEach((t, i) =>
    checkTensor(t, `pack: element ${i}`, `pack: element ${i} is not a tf.Tensor (${describe(t)})`, false),
  );
  const plan = compile(
    'pack',
    pattern,
    tensors.map((t) => t.shape),
  );
  return [applyPack(plan, tensors), plan.packedShapes.map((s) => [...s])];
}

/**
 * Splits a packed tensor back into pieces of the given shapes along the `*` axis, as einops'
 * `unpack`. One piece's shape may contain `-1` (inferred).
 *
 * @example
 * const [a, b] = unpack(packed, [[1], [14, 14]], 'b * e'); // [b,197,e] -> [b,1,e], [b,14,14,e]
 */
export function unpack(x: Tensor, packedShapes: readonly (readonly number[])[], pattern: string): Tensor[] {
  checkString(pattern, 'unpack');
  checkTensor(x, 'unpack: the input', `unpack: expected a tf.Tensor, got ${describe(x)}`, false);
  return applyUnpack(compile('unpack', pattern, x.shape, packedShapes), x);
}

/**
 * Einstein summation with einops' pattern syntax (multi-letter names, spaces, `...`), compiled to
 * transposes, reshapes and plain 2-D matMuls (fast on every backend, with fast gradients).
 * The pattern comes first, as in `tf.einsum`; einops' order (tensors first) is accepted too.
 *
 * @example
 * const scores = einsum('b h q d, b h k d -> b h q k', q, k);
 * const y = einsum('b n i, o i -> b n o', x, weight);       // a dense layer, weight [out, in]
 * const tr = einsum('i i ->', m);                             // trace
 */
export function einsum(pattern: string, ...tensors: Tensor[]): Tensor;
export function einsum(...tensorsAndPattern: [...Tensor[], string]): Tensor;
export function einsum(...args: unknown[]): Tensor {
  let pattern: unknown;
  let tensors: unknown[];
  if (typeof args[0] === 'string') {
    pattern = args[0];
    tensors = args.slice(1);
  } else {
    pattern = args[args.length - 1];
    tensors = args.slice(0, -1);
  }
  checkString(pattern, 'einsum');
  if (tensors.length === 0) {
    throw new EinopsError('einsum takes at least one tensor besides the pattern', {
      rule: 'einsum-backend-error',
    });
  }
  // dtypes are runEinsum's to check (float32, int32 or bool, with its own message).
  tensors.forEach((t, i) =>
    checkTensor(t, `einsum: operand ${i}`, `einsum: operand ${i} is not a tf.Tensor (${describe(t)})`, false),
  );
  const ts = tensors as tf.Tensor[];
  const plan = compile(
    'einsum',
    pattern,
    ts.map((t) => t.shape),
  );
  return runEinsum(plan, ts);
}
