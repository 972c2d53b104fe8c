// The public operations. Each one: check the input, look up (or build) a cached plan, run it.
import { tf } from './tf.js';
import { EinopsError } from './errors.js';
import type { Expression, Pattern } from './dsl/ast.js';
import { parseEinsum, parsePackPattern, parsePattern, parseShapePattern } from './dsl/index.js';
import { LRU } from './compiler/cache.js';
import { applyPlan, type ReductionFn } from './compiler/apply.js';
import { makePlan, type Plan } from './compiler/plan.js';
import {
  prepareRecipe,
  REDUCTIONS,
  type Operation,
  type Recipe,
  type ReductionName,
} from './compiler/recipe.js';
import { planEinsum, runEinsum, type EinsumPlan } from './compiler/einsum.js';
// [trace] symbolic tensors record IR instead of running tfjs (src/ir/trace.ts)
import { isSymbolic, traceEinsum, tracePack, traceTransform, traceUnpack } from './ir/trace.js';
import type { Sym } from './ir/builder.js';

export type Tensor = tf.Tensor;
/** A reduction name as in einops, or a function `(x, axes) => tensor`. */
export type Reduction = ReductionName | ReductionFn;
/** Lengths of named axes, as einops' `**axes_lengths`. */
export type AxesLengths = Readonly<Record<string, number>>;

const CACHE_SIZE = 1024;
const patterns = new LRU<string, Pattern>(CACHE_SIZE);
const recipes = new LRU<string, Recipe>(CACHE_SIZE);
const plans = new LRU<string, Plan>(CACHE_SIZE);
const einsumPlans = new LRU<string, { plan: EinsumPlan }>(CACHE_SIZE);

/** Cache statistics and reset, for benchmarks and tests. */
export const planCache = {
  stats: () => ({ plans: plans.size, hits: plans.hits, misses: plans.misses }),
  clear: () => {
    for (const c of [patterns, recipes, plans, einsumPlans]) c.clear();
  },
};

function isTensor(x: unknown): x is tf.Tensor {
  return x instanceof tf.Tensor;
}

function describe(x: unknown): string {
  if (x === null) return 'null';
  if (Array.isArray(x)) return 'an array';
  return typeof x === 'object' ? (x.constructor?.name ?? 'object') : typeof x;
}

function checkString(pattern: unknown, op: string): asserts pattern is string {
  if (typeof pattern !== 'string') {
    throw new EinopsError(`${op}: the pattern must be a string, got ${describe(pattern)}`, {
      rule: 'bad-argument',
    });
  }
}

function checkLengths(axesLengths: unknown, op: string): Map<string, number> {
  const out = new Map<string, number>();
  if (axesLengths === undefined || axesLengths === null) return out;
  if (typeof axesLengths !== 'object' || Array.isArray(axesLengths)) {
    throw new EinopsError(
      `${op}: axis lengths must be an object such as { h: 2 }, got ${describe(axesLengths)}`,
      {
        rule: 'bad-argument',
      },
    );
  }
  for (const [name, value] of Object.entries(axesLengths)) {
    if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < 0) {
      throw new EinopsError(
        `${op}: length of axis '${name}' must be a non-negative integer, got ${String(value)}`,
        {
          rule: 'invalid-axis-length',
        },
      );
    }
    out.set(name, value);
  }
  return out;
}

const DTYPE_ORDER = ['bool', 'int32', 'float32'] as const;

/** Stacks a list of tensors on a new first axis, as einops does for list input. */
function stackList(list: readonly unknown[], op: string): tf.Tensor {
  if (list.length === 0) {
    throw new EinopsError(`${op} can't be applied to an empty list`, { rule: 'empty-list-input' });
  }
  list.forEach((t, i) => {
    if (!isTensor(t))
      throw new EinopsError(`${op}: list element ${i} is not a tf.Tensor (${describe(t)})`, {
        rule: 'bad-argument',
      });
  });
  const tensors = list as tf.Tensor[];
  const shape = tensors[0].shape;
  tensors.forEach((t, i) => {
    if (t.shape.length !== shape.length || t.shape.some((d, j) => d !== shape[j])) {
      throw new EinopsError(
        `${op}: all tensors of a list must have one shape; tensor 0 is [${shape}], tensor ${i} is [${t.shape}]`,
        { rule: 'list-shape-mismatch' },
      );
    }
  });
  const dtype = widest(tensors.map((t) => t.dtype));
  return tf.tidy(() => tf.stack(tensors.map((t) => (t.dtype === dtype ? t : tf.cast(t, dtype)))));
}

function widest(dtypes: readonly string[]): tf.DataType {
  let best = 0;
  for (const d of dtypes) {
    const i = DTYPE_ORDER.indexOf(d as (typeof DTYPE_ORDER)[number]);
    if (i < 0) throw new EinopsError(`Unsupported dtype '${d}'`, { rule: 'bad-argument' });
    best = Math.max(best, i);
  }
  return DTYPE_ORDER[best];
}

function formatLengths(lengths: Map<string, number>): string {
  return `{${[...lengths].map(([k, v]) => `${k}: ${v}`).join(', ')}}`;
}

/** Adds einops' context line (operation, pattern, input shape, lengths) to an error. */
function withContext(
  e: unknown,
  op: string,
  pattern: string,
  shape: readonly number[] | 'list',
  lengths: Map<string, number>,
): unknown {
  if (!(e instanceof EinopsError)) return e;
  const input = shape === 'list' ? 'Input is a list' : `Input tensor shape: [${shape.join(', ')}]`;
  return new EinopsError(
    `Error while processing ${op}-reduction pattern "${pattern}". ${input}. Additional info: ${formatLengths(lengths)}.\n${e.message}`,
    { rule: e.rule, cause: e },
  );
}

function getPattern(source: string): Pattern {
  return patterns.getOrCreate(source, () => parsePattern(source));
}

/**
 * Builds (or fetches from the cache) the plan of one call: the lowering is cached per
 * (operation, pattern, input shape, given lengths), as in einops.
 */
export function planFor(
  op: Operation,
  pattern: string,
  shape: readonly number[],
  lengths: Map<string, number>,
): Plan {
  const lengthKey = [...lengths]
    .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
    .map(([k, v]) => `${k}=${v}`)
    .join(',');
  const key = `${op}\u0000${pattern}\u0000${shape.join(',')}\u0000${lengthKey}`;
  const hit = plans.get(key);
  if (hit) return hit;
  const parsed = getPattern(pattern);
  const names = [...lengths.keys()];
  const recipeKey = `${op}\u0000${pattern}\u0000${shape.length}\u0000${[...names].sort().join(',')}`;
  const recipe = recipes.getOrCreate(recipeKey, () => prepareRecipe(parsed, op, names, shape.length));
  const plan = makePlan(recipe, op, shape, lengths);
  plans.set(key, plan);
  return plan;
}

function transform(
  op: 'rearrange' | 'repeat' | 'reduce',
  x: unknown,
  pattern: unknown,
  reduction: unknown,
  axesLengths: unknown,
): tf.Tensor {
  const name = op === 'reduce' ? 'reduce' : op;
  checkString(pattern, name);
  let lengths = new Map<string, number>();
  const isList = Array.isArray(x);
  if (!isList && !isTensor(x)) {
    throw new EinopsError(`${name}: expected a tf.Tensor or an array of tensors, got ${describe(x)}`, {
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
  let input: tf.Tensor | undefined;
  try {
    lengths = checkLengths(axesLengths, name);
    input = isList ? stackList(x as unknown[], name) : (x as tf.Tensor);
    const plan = planFor(operation, pattern, input.shape, lengths);
    if (operation === 'mean' && input.dtype !== 'float32' && plan.steps.some((s) => s.kind === 'reduce')) {
      throw new EinopsError(`mean is not available for ${input.dtype} tensors (use a float tensor)`, {
        rule: 'mean-of-non-float',
      });
    }
    return applyPlan(plan, input, custom);
  } catch (e) {
    throw withContext(e, label, pattern, isList ? 'list' : (x as tf.Tensor).shape, lengths);
  } finally {
    if (isList && input) input.dispose();
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
export function rearrange(x: Tensor | Tensor[], pattern: string, axesLengths?: AxesLengths): Tensor;
export function rearrange(x: Sym | Sym[], pattern: string, axesLengths?: AxesLengths): Sym;
export function rearrange(
  x: Tensor | Tensor[] | Sym | Sym[],
  pattern: string,
  axesLengths?: AxesLengths,
): Tensor | Sym {
  if (isSymbolic(x)) return traceTransform('rearrange', x as Sym, pattern, undefined, axesLengths, planFor); // [trace]
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
): Tensor;
export function reduce(x: Sym | Sym[], pattern: string, reduction: Reduction, axesLengths?: AxesLengths): Sym;
export function reduce(
  x: Tensor | Tensor[] | Sym | Sym[],
  pattern: string,
  reduction: Reduction,
  axesLengths?: AxesLengths,
): Tensor | Sym {
  if (isSymbolic(x)) return traceTransform('reduce', x as Sym, pattern, reduction, axesLengths, planFor); // [trace]
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
export function repeat(x: Tensor | Tensor[], pattern: string, axesLengths?: AxesLengths): Tensor;
export function repeat(x: Sym | Sym[], pattern: string, axesLengths?: AxesLengths): Sym;
export function repeat(
  x: Tensor | Tensor[] | Sym | Sym[],
  pattern: string,
  axesLengths?: AxesLengths,
): Tensor | Sym {
  if (isSymbolic(x)) return traceTransform('repeat', x as Sym, pattern, undefined, axesLengths, planFor); // [trace]
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
  if (!isTensor(x))
    throw new EinopsError(`parseShape: expected a tf.Tensor, got ${describe(x)}`, { rule: 'bad-argument' });
  const shape = x.shape;
  const exp: Expression = parseShapePattern(pattern);
  const where = `in pattern "${pattern}" for shape [${shape.join(', ')}]`;
  if (exp.dims.some((d) => d.axes.length > 1)) {
    throw new EinopsError(`Can't parse shape with composite axes ${where}`, {
      rule: 'parse-shape-composite-axis',
    });
  }
  const ellipsisAt = exp.dims.findIndex((d) => d.axes.length === 1 && d.axes[0].kind === 'ellipsis');
  if (shape.length !== exp.dims.length) {
    if (ellipsisAt >= 0) {
      if (shape.length < exp.dims.length - 1) {
        throw new EinopsError(`Can't parse shape with this number of dimensions ${where}`, {
          rule: 'parse-shape-rank-too-small',
        });
      }
    } else {
      throw new EinopsError(`Can't parse shape with a different number of dimensions ${where}`, {
        rule: 'parse-shape-rank-mismatch',
      });
    }
  }
  const dims = [...exp.dims];
  const result: Record<string, number> = {};
  let s = 0;
  for (let i = 0; i < dims.length; i++) {
    const d = dims[i];
    if (i === ellipsisAt) {
      s += shape.length - (dims.length - 1);
      continue;
    }
    const length = shape[s++];
    if (d.axes.length === 0) {
      if (length !== 1)
        throw new EinopsError(`Length of axis ${i} is ${length}, not 1, ${where}`, {
          rule: 'parse-shape-unitary-mismatch',
        });
      continue;
    }
    const axis = d.axes[0];
    if (axis.kind === 'named') {
      if (axis.name !== '_') result[axis.name] = length;
    } else if (axis.kind === 'anonymous') {
      if (axis.value !== length) {
        throw new EinopsError(`Length of anonymous axis ${axis.value} does not match ${length} ${where}`, {
          rule: 'parse-shape-anonymous-mismatch',
        });
      }
    } else {
      throw new EinopsError(`Ellipsis inside parentheses is not allowed ${where}`, {
        rule: 'parse-shape-composite-axis',
      });
    }
  }
  return result;
}

function product(xs: readonly number[]): number {
  return xs.reduce((p, x) => p * x, 1);
}

/**
 * Packs several tensors into one along the `*` axis, as einops' `pack`; returns the packed tensor and
 * the shapes that `*` stood for in each input (for `unpack`).
 *
 * @example
 * const [packed, shapes] = pack([cls, patches], 'b * e');  // [b,1,e] + [b,196,e] -> [b,197,e]
 * const [cls2, patches2] = unpack(packed, shapes, 'b * e');
 */
export function pack(tensors: Tensor[], pattern: string): [Tensor, number[][]];
export function pack(tensors: Sym[], pattern: string): [Sym, number[][]];
export function pack(input: Tensor[] | Sym[], pattern: string): [Tensor | Sym, number[][]] {
  if (isSymbolic(input)) {
    // [trace]
    checkString(pattern, 'pack');
    const sp = parsePackPattern(pattern, 'pack');
    return tracePack(input, pattern, sp.star, sp.names.length - sp.star);
  }
  const tensors = input as Tensor[];
  checkString(pattern, 'pack');
  if (!Array.isArray(tensors)) {
    throw new EinopsError(`pack: expected an array of tensors, got ${describe(tensors)}`, {
      rule: 'bad-argument',
    });
  }
  const p = parsePackPattern(pattern, 'pack');
  const before = p.star;
  const after = p.names.length - p.star;
  const minAxes = before + after;
  if (tensors.length === 0) throw new EinopsError('pack: no tensors to pack', { rule: 'empty-list-input' });
  tensors.forEach((t, i) => {
    if (!isTensor(t))
      throw new EinopsError(`pack: element ${i} is not a tf.Tensor (${describe(t)})`, {
        rule: 'bad-argument',
      });
    if (t.rank < minAxes) {
      throw new EinopsError(
        `pack: tensor #${i} has shape [${t.shape}], while pattern "${pattern}" needs at least ${minAxes} axes`,
        { rule: 'pack-rank-too-small' },
      );
    }
  });
  const packedShapes = tensors.map((t) => t.shape.slice(before, t.rank - after));
  const first = tensors[0].shape;
  const keep = (s: readonly number[]) => [...s.slice(0, before), ...s.slice(s.length - after)];
  const reference = keep(first);
  tensors.forEach((t, i) => {
    const k = keep(t.shape);
    const bad = k.findIndex((d, j) => d !== reference[j]);
    if (bad >= 0) {
      throw new EinopsError(
        `pack: tensor #${i} has shape [${t.shape}] but tensor #0 has [${first}]: all axes except '*' must match (axis '${p.names[bad]}': ${k[bad]} != ${reference[bad]})`,
        { rule: 'pack-shape-mismatch' },
      );
    }
  });
  const dtype = widest(tensors.map((t) => t.dtype));
  const packed = tf.tidy(() => {
    const pieces = tensors.map((t, i) => {
      const shape = [...t.shape.slice(0, before), product(packedShapes[i]), ...t.shape.slice(t.rank - after)];
      const r = tf.reshape(t, shape);
      return r.dtype === dtype ? r : tf.cast(r, dtype);
    });
    return pieces.length === 1 ? pieces[0].clone() : tf.concat(pieces, before);
  });
  return [packed, packedShapes];
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

/**
 * Splits a packed tensor back into pieces of the given shapes along the `*` axis, as einops'
 * `unpack`. One piece's shape may contain `-1` (inferred).
 *
 * @example
 * const [a, b] = unpack(packed, [[1], [14, 14]], 'b * e'); // [b,197,e] -> [b,1,e], [b,14,14,e]
 */
export function unpack(x: Tensor, packedShapes: readonly (readonly number[])[], pattern: string): Tensor[];
export function unpack(x: Sym, packedShapes: readonly (readonly number[])[], pattern: string): Sym[];
export function unpack(
  x: Tensor | Sym,
  packedShapes: readonly (readonly number[])[],
  pattern: string,
): Tensor[] | Sym[] {
  checkString(pattern, 'unpack');
  if (isSymbolic(x))
    return traceUnpack(x as Sym, packedShapes, pattern, parsePackPattern(pattern, 'unpack').star); // [trace]
  if (!isTensor(x))
    throw new EinopsError(`unpack: expected a tf.Tensor, got ${describe(x)}`, { rule: 'bad-argument' });
  const p = parsePackPattern(pattern, 'unpack');
  if (
    !Array.isArray(packedShapes) ||
    packedShapes.some((s) => !Array.isArray(s) || s.some((d) => !Number.isSafeInteger(d) || d < -1))
  ) {
    throw new EinopsError('unpack: packed shapes must be arrays of integers (>= -1)', {
      rule: 'bad-argument',
    });
  }
  const before = p.star;
  const after = p.names.length - p.star;
  const shape = x.shape;
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
    return { a, b, target };
  });
  return pieces.map(({ a, b, target }) =>
    tf.tidy(() => {
      const begin = shape.map((_, d) => (d === before ? a : 0));
      const size = shape.map((n, d) => (d === before ? b - a : n));
      return tf.reshape(tf.slice(x, begin, size), target);
    }),
  );
}

const LETTERS_LIMIT = 52; // einops maps names to single letters a-zA-Z for the backend

function einsumOperands(source: string): { operands: string[][]; output: string[] } {
  const parsed = parseEinsum(source);
  const seen = new Set<string>();
  const names = (e: Expression, isOutput: boolean): string[] =>
    e.dims.map((d) => {
      if (!d.grouped && d.axes.length === 1 && d.axes[0].kind === 'ellipsis') return '...';
      if (d.axes.length === 0) {
        throw new EinopsError(`Unit axes '()' and '1' are not supported in einsum: "${source}"`, {
          rule: 'einsum-unitary-axis',
        });
      }
      if (d.axes.length > 1) {
        throw new EinopsError(`Axis composition is not supported in einsum: "${source}"`, {
          rule: 'einsum-composition',
        });
      }
      const axis = d.axes[0];
      if (axis.kind === 'anonymous') {
        throw new EinopsError(`Anonymous (numeric) axes are not supported in einsum: "${source}"`, {
          rule: 'einsum-anonymous-axis',
        });
      }
      const name = axis.kind === 'named' ? axis.name : '…';
      if (isOutput) {
        if (!seen.has(name)) {
          throw new EinopsError(`Unknown axis '${name}' on the right side of einsum "${source}"`, {
            rule: 'einsum-unknown-output-axis',
          });
        }
      } else if (!seen.has(name)) {
        if (seen.size >= LETTERS_LIMIT) {
          throw new EinopsError(`Too many axes in einsum (at most ${LETTERS_LIMIT}): "${source}"`, {
            rule: 'einsum-too-many-axes',
          });
        }
        seen.add(name);
      }
      return name;
    });
  const operands = parsed.inputs.map((e) => names(e, false));
  return { operands, output: names(parsed.output, true) };
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
export function einsum(pattern: string, ...tensors: Sym[]): Sym;
export function einsum(...tensorsAndPattern: [...Tensor[], string]): Tensor;
export function einsum(...args: unknown[]): Tensor | Sym {
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
  if (isSymbolic(tensors)) {
    // [trace]
    const source = pattern;
    return traceEinsum(source, tensors, (shapes) => {
      const { operands, output } = einsumOperands(source);
      return planEinsum(operands, output, shapes);
    });
  }
  tensors.forEach((t, i) => {
    if (!isTensor(t))
      throw new EinopsError(`einsum: operand ${i} is not a tf.Tensor (${describe(t)})`, {
        rule: 'bad-argument',
      });
  });
  const ts = tensors as tf.Tensor[];
  const key = `${pattern}\u0000${ts.map((t) => t.shape.join(',')).join(';')}`;
  const { plan } = einsumPlans.getOrCreate(key, () => {
    const { operands, output } = einsumOperands(pattern as string);
    return {
      plan: planEinsum(
        operands,
        output,
        ts.map((t) => t.shape),
      ),
    };
  });
  return runEinsum(plan, ts);
}
