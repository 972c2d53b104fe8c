// The trace path of the public ops: `rearrange` / `reduce` / `repeat` / `einsum` / `pack` /
// `unpack` called on symbolic tensors record IR instead of running tfjs. Same plans, same checks,
// same errors as the eager path (src/ops.ts); failures become CompileErrors naming op and pattern.
import { CompileError, EinopsError } from '../errors.js';
import type { Plan } from '../compiler/plan.js';
import type { EinsumPlan } from '../compiler/index.js';
import type { Operation } from '../compiler/recipe.js';
import { planningSymbolic } from '../compiler/limits.js';
import { Sym } from './builder.js';
import { fmtShape, isSym, numel, StandIns, type Dim } from './dims.js';
import { applyEinsumPlanIR, applyPlanIR } from './from-plan.js';
import type { DType } from './kinds.js';

/** Plans an einops operation for a concrete shape (src/ops.ts' `planFor`). */
export type Planner = (
  op: Operation,
  pattern: string,
  shape: readonly number[],
  lengths: Map<string, number>,
) => Plan;

/** `true` for a symbolic tensor (or an array holding one): the op records IR. */
export function isSymbolic(x: unknown): boolean {
  return x instanceof Sym || (Array.isArray(x) && x.some((t) => t instanceof Sym));
}

const standIns = new StandIns();

function untraceable(op: string, pattern: string, why: string): never {
  throw new CompileError(`${op} "${pattern}" cannot be traced: ${why}`, { rule: 'untraceable' });
}

/** Re-throws a planner's error with the symbolic shape and the op named, as a CompileError. */
function rethrow(e: unknown, op: string, pattern: string, shapes: string): never {
  if (e instanceof EinopsError || e instanceof CompileError) {
    throw new CompileError(`${op} "${pattern}" on symbolic input ${shapes}: ${standIns.explain(e.message)}`, {
      rule: e.rule,
      cause: e,
    });
  }
  throw e;
}

const ORDER: DType[] = ['bool', 'int32', 'float32'];
const widest = (xs: readonly Sym[]): DType => ORDER[Math.max(...xs.map((x) => ORDER.indexOf(x.dtype)))];

function allSyms(op: string, pattern: string, xs: readonly unknown[]): Sym[] {
  xs.forEach((t, i) => {
    if (!(t instanceof Sym))
      untraceable(op, pattern, `element ${i} is not a symbolic tensor (mixing eager tensors into a trace)`);
  });
  return xs as Sym[];
}

/**
 * `rearrange` / `reduce` / `repeat` on a symbolic tensor (or a list of them, stacked first).
 *
 * @example
 * traceTransform('rearrange', x, 'b c h w -> b h w c', undefined, {}, planFor);
 */
export function traceTransform(
  op: 'rearrange' | 'repeat' | 'reduce',
  x: Sym | Sym[],
  pattern: string,
  reduction: unknown,
  axesLengths: Readonly<Record<string, number>> | undefined,
  planner: Planner,
): Sym {
  let operation: Operation = op === 'reduce' ? (reduction as Operation) : op;
  if (op === 'reduce' && typeof reduction !== 'string') {
    untraceable('reduce', pattern, 'a custom reduction function is not traceable (use a named reduction)');
  }
  if (op === 'reduce' && reduction === 'sum') operation = 'sum';
  let input: Sym;
  if (Array.isArray(x)) {
    const xs = allSyms(op, pattern, x);
    if (xs.length === 0) untraceable(op, pattern, 'an empty list');
    const dt = widest(xs);
    input = xs[0].builder.concat(
      xs.map((t) => t.cast(dt).reshape([1, ...t.shape])),
      0,
    );
  } else input = x;
  const shape = input.shape;
  let plan: Plan;
  try {
    const lengths = new Map(Object.entries(axesLengths ?? {}));
    plan = planningSymbolic(() => planner(operation, pattern, standIns.concreteShape(shape), lengths));
  } catch (e) {
    rethrow(e, op, pattern, fmtShape(shape));
  }
  if (operation === 'mean' && input.dtype !== 'float32' && plan.steps.some((s) => s.kind === 'reduce')) {
    untraceable(op, pattern, `mean of a ${input.dtype} tensor`);
  }
  try {
    return applyPlanIR(plan, input, standIns);
  } catch (e) {
    rethrow(e, op, pattern, fmtShape(shape));
  }
}

/**
 * `einsum` on symbolic tensors: the eager path's plan, recorded as IR.
 *
 * @example
 * traceEinsum('b h q d, b h k d -> b h q k', [q, k], (shapes) => planEinsum(...));
 */
export function traceEinsum(
  pattern: string,
  xs: readonly unknown[],
  plan: (shapes: number[][]) => EinsumPlan,
): Sym {
  const syms = allSyms('einsum', pattern, xs);
  let p: EinsumPlan;
  try {
    p = planningSymbolic(() => plan(syms.map((t) => standIns.concreteShape(t.shape))));
  } catch (e) {
    rethrow(e, 'einsum', pattern, syms.map((t) => fmtShape(t.shape)).join(', '));
  }
  return applyEinsumPlanIR(p, syms, standIns);
}

/** `pack` on symbolic tensors: reshape each to one `*` axis, concatenate. */
export function tracePack(
  xs: readonly unknown[],
  pattern: string,
  before: number,
  after: number,
): [Sym, number[][]] {
  const syms = allSyms('pack', pattern, xs);
  const dt = widest(syms);
  const packedShapes: number[][] = [];
  const pieces = syms.map((t, i) => {
    if (t.rank < before + after)
      untraceable('pack', pattern, `tensor #${i} ${fmtShape(t.shape)} has too few axes`);
    const mid = t.shape.slice(before, t.rank - after);
    if (mid.some(isSym))
      untraceable('pack', pattern, `the '*' axes of tensor #${i} ${fmtShape(t.shape)} are symbolic`);
    packedShapes.push(mid as number[]);
    return t
      .cast(dt)
      .reshape([...t.shape.slice(0, before), numel(mid) as number, ...t.shape.slice(t.rank - after)]);
  });
  try {
    return [pieces.length === 1 ? pieces[0] : syms[0].builder.concat(pieces, before), packedShapes];
  } catch (e) {
    rethrow(e, 'pack', pattern, syms.map((t) => fmtShape(t.shape)).join(', '));
  }
}

/** `unpack` on a symbolic tensor: slices along the `*` axis, reshaped. */
export function traceUnpack(
  x: Sym,
  packedShapes: readonly (readonly number[])[],
  pattern: string,
  before: number,
): Sym[] {
  const total = x.shape[before];
  if (isSym(total)) untraceable('unpack', pattern, `the '*' axis of ${fmtShape(x.shape)} is symbolic`);
  const sizes = packedShapes.map((s) => (s.includes(-1) ? -1 : s.reduce((p, d) => p * d, 1)));
  const known = sizes.filter((d) => d >= 0).reduce((p, d) => p + d, 0);
  const resolved = sizes.map((d) => (d < 0 ? total - known : d));
  if (resolved.reduce((p, d) => p + d, 0) !== total || resolved.some((d) => d < 0)) {
    throw new CompileError(
      `unpack "${pattern}": cannot split axis of size ${total} into ${JSON.stringify(packedShapes)}`,
      { rule: 'unpack-cannot-split' },
    );
  }
  let start = 0;
  return packedShapes.map((s, i) => {
    const piece = x.slice(before, start, start + resolved[i]);
    start += resolved[i];
    const mid: Dim[] = s.includes(-1)
      ? s.map((d) => (d === -1 ? resolved[i] / s.filter((e) => e !== -1).reduce((p, e) => p * e, 1) : d))
      : [...s];
    return piece.reshape([...x.shape.slice(0, before), ...mid, ...x.shape.slice(before + 1)]);
  });
}
