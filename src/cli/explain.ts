// `einvit explain`: shows what a pattern compiles to.
import { EinopsError } from '../errors.js';
import { explainPlan } from '../compiler/explain.js';
import { REDUCTIONS, type Operation } from '../compiler/recipe.js';
import { planFor } from '../ops.js';

export interface ExplainOptions {
  shape: string;
  op?: string;
  reduction?: string;
}

/** Parses `2,3,4` into [2, 3, 4]. */
export function parseShapeArg(text: string): number[] {
  if (text.trim() === '') return [];
  return text.split(',').map((s) => {
    const n = Number(s.trim());
    if (!Number.isSafeInteger(n) || n < 0)
      throw new EinopsError(`--shape: '${s}' is not a non-negative integer`);
    return n;
  });
}

/** Parses `h=2 w=3` into a map of axis lengths. */
export function parseLengthArgs(args: readonly string[]): Map<string, number> {
  const out = new Map<string, number>();
  for (const a of args) {
    const m = /^([^=]+)=(-?\d+)$/.exec(a);
    if (!m) throw new EinopsError(`Axis length '${a}' must look like name=number`);
    out.set(m[1], Number(m[2]));
  }
  return out;
}

/** Returns the lines `einvit explain` prints. */
export function explain(pattern: string, opts: ExplainOptions, lengthArgs: readonly string[]): string[] {
  const shape = parseShapeArg(opts.shape);
  const op = opts.op ?? 'rearrange';
  let operation: Operation;
  if (op === 'reduce') {
    const r = opts.reduction ?? 'sum';
    if (!(REDUCTIONS as readonly string[]).includes(r)) {
      throw new EinopsError(`Unknown reduction '${r}'. Expected one of: ${REDUCTIONS.join(', ')}`);
    }
    operation = r as Operation;
  } else if (op === 'rearrange' || op === 'repeat') {
    operation = op;
  } else {
    throw new EinopsError(`--op must be rearrange, reduce or repeat, not '${op}'`);
  }
  const lengths = parseLengthArgs(lengthArgs);
  let plan;
  try {
    plan = planFor(operation, pattern, shape, lengths);
  } catch (e) {
    if (!(e instanceof EinopsError)) throw e;
    throw new EinopsError(`pattern "${pattern}" on shape [${shape.join(', ')}]: ${e.message}`, {
      rule: e.rule,
      cause: e,
    });
  }
  const axes = plan.axisLengths.map(([n, l]) => `${n}=${l}`).join(' ');
  return [
    `${op === 'reduce' ? `reduce(${operation})` : op}  '${pattern}'`,
    `input  [${plan.inputShape.join(', ')}]   axes: ${axes}`,
    ...explainPlan(plan).map((l, i) => `  ${i + 1}. ${l}`),
    `output [${plan.outputShape.join(', ')}]`,
  ];
}
