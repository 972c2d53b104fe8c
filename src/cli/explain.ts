// `einvit explain`: shows what a pattern compiles to.
import { EinopsError, UsageError } from '../errors.js';
import { explainPlan } from '../compiler/explain.js';
import { REDUCTIONS, type Operation } from '../compiler/recipe.js';
import { planFor, rearrange, reduce, repeat } from '../ops.js';
import { GraphBuilder, optimize, printGraph, sym, type Dim, type Graph } from '../ir/index.js';
import { traceFolder } from './export-onnx.js';

export interface ExplainOptions {
  shape: string;
  op?: string;
  reduction?: string;
  /** Print the IR graph (traced, then after the passes) instead of the tfjs plan. */
  graph?: boolean;
}

/** Parses `N,3,224,224` into dims: a name is a symbolic dim (a dynamic axis). */
export function parseGraphShapeArg(text: string): Dim[] {
  if (text.trim() === '') return [];
  return text.split(',').map((s) => {
    const t = s.trim();
    if (/^[A-Za-z_]\w*$/.test(t)) return sym(t);
    const n = Number(t);
    if (!Number.isSafeInteger(n) || n < 0)
      throw new UsageError(`--shape: '${s}' is neither a non-negative integer nor a symbol name`);
    return n;
  });
}

/**
 * The lines of `einvit explain --graph`: the pattern traced to IR, then after the graph passes.
 *
 * @example
 * explainGraph('b (h w) c -> b c h w', { shape: 'N,16,3' }, ['h=4']);
 */
export function explainGraph(pattern: string, opts: ExplainOptions, lengthArgs: readonly string[]): string[] {
  const shape = parseGraphShapeArg(opts.shape);
  const lengths = Object.fromEntries(parseLengthArgs(lengthArgs));
  const op = opts.op ?? 'rearrange';
  const g = new GraphBuilder();
  const x = g.input('x', shape);
  let y;
  if (op === 'reduce') y = reduce(x, pattern, (opts.reduction ?? 'sum') as 'sum', lengths);
  else if (op === 'repeat') y = repeat(x, pattern, lengths);
  else if (op === 'rearrange') y = rearrange(x, pattern, lengths);
  else throw new UsageError(`--op must be rearrange, reduce or repeat, not '${op}'`);
  const traced = g.build({ y });
  return [
    `${op === 'reduce' ? `reduce(${opts.reduction ?? 'sum'})` : op}  '${pattern}'`,
    'traced graph:',
    ...printGraph(traced)
      .split('\n')
      .map((l) => `  ${l}`),
    'after the graph passes:',
    ...printGraph(optimize(traced))
      .split('\n')
      .map((l) => `  ${l}`),
  ];
}

/** Parses `2,3,4` into [2, 3, 4]. */
export function parseShapeArg(text: string): number[] {
  if (text.trim() === '') return [];
  return text.split(',').map((s) => {
    const n = Number(s.trim());
    if (!Number.isSafeInteger(n) || n < 0)
      throw new UsageError(`--shape: '${s}' is not a non-negative integer`);
    return n;
  });
}

/** Parses `h=2 w=3` into a map of axis lengths. */
export function parseLengthArgs(args: readonly string[]): Map<string, number> {
  const out = new Map<string, number>();
  for (const a of args) {
    const m = /^([^=]+)=(-?\d+)$/.exec(a);
    if (!m) throw new UsageError(`Axis length '${a}' must look like name=number`);
    out.set(m[1], Number(m[2]));
  }
  return out;
}

function indented(g: Graph): string[] {
  return printGraph(g)
    .split('\n')
    .map((l) => `  ${l}`);
}

/**
 * The lines of `einvit explain --model <dir>`: the whole model's forward pass as the graph it compiles
 * to (dynamic batch), after the graph passes, with the node counts before and after them.
 *
 * @example
 * await explainModel('test/vit-reference/cifar-tiny'); // ['model test/vit-reference/cifar-tiny: 412 nodes traced, ...', ...]
 */
export async function explainModel(dir: string): Promise<string[]> {
  const { graph } = await traceFolder(dir, { batch: 'dynamic' });
  const optimized = optimize(graph);
  return [
    `model ${dir}: ${graph.nodes.length} nodes traced, ${optimized.nodes.length} after the graph passes`,
    ...indented(optimized),
  ];
}

/** Returns the lines `einvit explain` prints. */
export function explain(pattern: string, opts: ExplainOptions, lengthArgs: readonly string[]): string[] {
  if (opts.graph) return explainGraph(pattern, opts, lengthArgs);
  const shape = parseShapeArg(opts.shape);
  const op = opts.op ?? 'rearrange';
  let operation: Operation;
  if (op === 'reduce') {
    const r = opts.reduction ?? 'sum';
    if (!(REDUCTIONS as readonly string[]).includes(r)) {
      throw new UsageError(
        `--reduction: unknown reduction '${r}'. Expected one of: ${REDUCTIONS.join(', ')}`,
      );
    }
    operation = r as Operation;
  } else if (op === 'rearrange' || op === 'repeat') {
    operation = op;
  } else {
    throw new UsageError(`--op must be rearrange, reduce or repeat, not '${op}'`);
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
