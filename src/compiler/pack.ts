// pack and unpack: einops' rules on shapes (plans, cached by the compiler) and their execution.
import { tf } from '../tf.js';
import { EinopsError } from '../errors.js';
import type { PackPattern } from '../dsl/ast.js';
import { widest } from './arguments.js';
import { checkAllocation, checkShape } from './limits.js';
import { deepFreeze } from './plan.js';

/** How to pack tensors of given shapes: reshape each to `pieceShapes[i]`, concatenate on `axis`. */
export interface PackPlan {
  readonly inputShapes: readonly (readonly number[])[];
  readonly pieceShapes: readonly (readonly number[])[];
  readonly axis: number;
  readonly outputShape: readonly number[];
  /** What `*` stood for in each input (pack's second result). */
  readonly packedShapes: readonly (readonly number[])[];
}

/** How to unpack: slice [begin, begin + size) along the packed axis, reshape each to its target. */
export interface UnpackPlan {
  readonly inputShape: readonly number[];
  readonly axis: number;
  readonly pieces: readonly {
    readonly begin: number;
    readonly size: number;
    readonly shape: readonly number[];
  }[];
}

function product(xs: readonly number[]): number {
  return xs.reduce((p, x) => p * x, 1);
}

/**
 * einops' pack rules for inputs of `shapes`: each has at least the named axes, and all agree on them.
 *
 * @example
 * planPack(parsePackPattern('b * e', 'pack'), [[2, 1, 8], [2, 16, 8]]).outputShape; // [2, 17, 8]
 */
export function planPack(p: PackPattern, shapes: readonly (readonly number[])[]): PackPlan {
  const pattern = p.source;
  const before = p.star;
  const after = p.names.length - p.star;
  const minAxes = before + after;
  if (shapes.length === 0) throw new EinopsError('pack: no tensors to pack', { rule: 'empty-list-input' });
  shapes.forEach((s, i) => {
    if (s.length < minAxes) {
      throw new EinopsError(
        `pack: tensor #${i} has shape [${s}], while pattern "${pattern}" needs at least ${minAxes} axes`,
        { rule: 'pack-rank-too-small' },
      );
    }
  });
  const packedShapes = shapes.map((s) => s.slice(before, s.length - after));
  const first = shapes[0];
  const keep = (s: readonly number[]) => [...s.slice(0, before), ...s.slice(s.length - after)];
  const reference = keep(first);
  shapes.forEach((s, i) => {
    const k = keep(s);
    const bad = k.findIndex((d, j) => d !== reference[j]);
    if (bad >= 0) {
      throw new EinopsError(
        `pack: tensor #${i} has shape [${s}] but tensor #0 has [${first}]: all axes except '*' must match (axis '${p.names[bad]}': ${k[bad]} != ${reference[bad]})`,
        { rule: 'pack-shape-mismatch' },
      );
    }
  });
  const pieceShapes = shapes.map((s, i) => [
    ...s.slice(0, before),
    product(packedShapes[i]),
    ...s.slice(s.length - after),
  ]);
  const outputShape = [...reference.slice(0, before), 0, ...reference.slice(before)];
  outputShape[before] = pieceShapes.reduce((sum, s) => sum + s[before], 0);
  checkShape(
    outputShape,
    'packed output',
    [...p.names.slice(0, before), '*', ...p.names.slice(before)].map((n) => `'${n}'`),
  );
  return deepFreeze({
    inputShapes: shapes.map((s) => [...s]),
    pieceShapes,
    axis: before,
    outputShape,
    packedShapes,
  });
}

/**
 * Runs a pack plan: the inputs in the widest of their dtypes, concatenated along the `*` axis.
 *
 * @example
 * const packed = applyPack(plan, [cls, patches]);
 */
export function applyPack(plan: PackPlan, tensors: readonly tf.Tensor[]): tf.Tensor {
  const dtype = widest(tensors.map((t) => t.dtype));
  checkAllocation(product(plan.outputShape as number[]), dtype, 'packed output');
  return tf.tidy(() => {
    const pieces = tensors.map((t, i) => {
      const r = tf.reshape(t, plan.pieceShapes[i] as number[]);
      return r.dtype === dtype ? r : tf.cast(r, dtype);
    });
    return pieces.length === 1 ? pieces[0].clone() : tf.concat(pieces, plan.axis);
  });
}

/** Python slice bound semantics (negative counts from the end, clamped). */
function sliceBound(i: number, length: number): number {
  if (i < 0) i += length;
  return Math.min(Math.max(i, 0), length);
}

/** numpy's reshape size rule, with at most one -1. */
function resolveShape(size: number, shape: readonly number[]): number[] | undefined {
  if (shape.filter((d) => d === -1).length > 1) return undefined;
  const unknown = shape.indexOf(-1);
  if (unknown < 0) return product(shape) === size ? [...shape] : undefined;
  const known = product(shape.filter((_, i) => i !== unknown));
  if (known === 0 || size % known !== 0) return undefined;
  const out = [...shape];
  out[unknown] = size / known;
  return out;
}

/** Checks unpack's packed shapes: arrays of integers, each >= -1. */
export function checkPackedShapes(packedShapes: unknown): asserts packedShapes is number[][] {
  if (
    !Array.isArray(packedShapes) ||
    packedShapes.some((s) => !Array.isArray(s) || s.some((d) => !Number.isSafeInteger(d) || d < -1))
  ) {
    throw new EinopsError('unpack: packed shapes must be arrays of integers (>= -1)', {
      rule: 'bad-argument',
    });
  }
}

/**
 * einops' unpack rules: where each piece starts along the `*` axis, and its shape.
 *
 * @example
 * planUnpack(parsePackPattern('b * e', 'unpack'), [2, 17, 8], [[1], [16]]).pieces[1].begin; // 1
 */
export function planUnpack(
  p: PackPattern,
  shape: readonly number[],
  packedShapes: readonly (readonly number[])[],
): UnpackPlan {
  const pattern = p.source;
  const before = p.star;
  const after = p.names.length - p.star;
  if (shape.length !== before + 1 + after) {
    throw new EinopsError(`unpack(..., "${pattern}") received input of wrong rank with shape [${shape}]`, {
      rule: 'unpack-rank-mismatch',
    });
  }
  const lengths = packedShapes.map((s) => (s.includes(-1) ? -1 : product(s)));
  const unknowns = lengths.filter((l) => l === -1).length;
  if (unknowns > 1) {
    throw new EinopsError(
      `unpack(..., "${pattern}") received more than one -1 in ${JSON.stringify(packedShapes)}`,
      {
        rule: 'unpack-multiple-unknown',
      },
    );
  }
  const total = shape[before];
  const splits = new Array<number>(packedShapes.length + 1).fill(0);
  splits[packedShapes.length] = total;
  const unknownAt = lengths.indexOf(-1);
  if (unknownAt < 0) {
    for (let i = 0; i < lengths.length - 1; i++) splits[i + 1] = splits[i] + lengths[i];
  } else {
    for (let i = 0; i < unknownAt; i++) splits[i + 1] = splits[i] + lengths[i];
    for (let j = lengths.length - 1; j > unknownAt; j--) splits[j] = splits[j + 1] - lengths[j];
  }
  const head = shape.slice(0, before);
  const tail = shape.slice(before + 1);
  const pieces = packedShapes.map((s, i) => {
    const a = sliceBound(splits[i], total);
    const b = Math.max(a, sliceBound(splits[i + 1], total));
    const target = resolveShape(product(head) * (b - a) * product(tail), [...head, ...s, ...tail]);
    if (!target) {
      throw new EinopsError(
        `Error during unpack(..., "${pattern}"): could not split axis of size ${total} into requested ${JSON.stringify(packedShapes)}`,
        { rule: 'unpack-cannot-split' },
      );
    }
    return { begin: a, size: b - a, shape: target };
  });
  return deepFreeze({ inputShape: [...shape], axis: before, pieces });
}

/**
 * Runs an unpack plan: one slice and reshape per piece (slices copy at most the input's data).
 *
 * @example
 * const [cls, patches] = applyUnpack(plan, tokens);
 */
export function applyUnpack(plan: UnpackPlan, x: tf.Tensor): tf.Tensor[] {
  const shape = plan.inputShape;
  return plan.pieces.map(({ begin, size, shape: target }) =>
    tf.tidy(() => {
      const start = shape.map((_, d) => (d === plan.axis ? begin : 0));
      const extent = shape.map((n, d) => (d === plan.axis ? size : n));
      return tf.reshape(tf.slice(x, start, extent), target as number[]);
    }),
  );
}
