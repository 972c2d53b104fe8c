// The compiler's one entry: `compile(op, pattern, shapes...)` returns the immutable plan of one call,
// cached as einops caches them (LRU, keyed by operation, pattern, shapes and given lengths). Plans know
// shapes, never tensors; the appliers run them (apply.ts, einsum-apply.ts, pack.ts).
import type { Expression, PackPattern, Pattern } from '../dsl/ast.js';
import { parsePackPattern, parsePattern, parseShapePattern } from '../dsl/index.js';
import { LRU } from './cache.js';
import { einsumLabels, type EinsumLabels } from './einsum-recipe.js';
import { planEinsum, type EinsumPlan } from './einsum-plan.js';
import { checkPackedShapes, planPack, planUnpack, type PackPlan, type UnpackPlan } from './pack.js';
import { deepFreeze, makePlan, type Plan } from './plan.js';
import { prepareRecipe, type Operation, type Recipe } from './recipe.js';
import { readShape } from './shape.js';

export type { Plan, Step } from './plan.js';
export type { EinsumPlan } from './einsum-plan.js';
export type { PackPlan, UnpackPlan } from './pack.js';
export type { Operation } from './recipe.js';

/** Entries kept by each cache. */
export const CACHE_SIZE = 1024;

const patterns = new LRU<string, Pattern>(CACHE_SIZE);
const recipes = new LRU<string, Recipe>(CACHE_SIZE);
const plans = new LRU<string, Plan>(CACHE_SIZE);
const labels = new LRU<string, EinsumLabels>(CACHE_SIZE);
const einsumPlans = new LRU<string, EinsumPlan>(CACHE_SIZE);
const packPatterns = new LRU<string, PackPattern>(CACHE_SIZE);
const packPlans = new LRU<string, PackPlan>(CACHE_SIZE);
const unpackPlans = new LRU<string, UnpackPlan>(CACHE_SIZE);
const shapePatterns = new LRU<string, Expression>(CACHE_SIZE);
const shapeReadings = new LRU<string, Readonly<Record<string, number>>>(CACHE_SIZE);

const ALL = [
  patterns,
  recipes,
  plans,
  labels,
  einsumPlans,
  packPatterns,
  packPlans,
  unpackPlans,
  shapePatterns,
  shapeReadings,
];

/**
 * Statistics of the rearrange/reduce/repeat plan cache, and a reset of every cache (benchmarks, tests).
 *
 * @example
 * planCache.clear(); rearrange(x, 'a b -> b a'); planCache.stats(); // { plans: 1, hits: 0, misses: 1 }
 */
export const planCache = {
  stats: () => ({ plans: plans.size, hits: plans.hits, misses: plans.misses }),
  clear: () => {
    for (const c of ALL) c.clear();
  },
};

const SEP = '\u0000';
const shapesKey = (shapes: readonly (readonly number[])[]) => JSON.stringify(shapes);

function transformPlan(
  op: Operation,
  pattern: string,
  shape: readonly number[],
  lengths: ReadonlyMap<string, number>,
): Plan {
  const lengthKey = [...lengths]
    .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
    .map(([k, v]) => `${k}=${v}`)
    .join(',');
  const key = `${op}${SEP}${pattern}${SEP}${shape.join(',')}${SEP}${lengthKey}`;
  const hit = plans.get(key);
  if (hit) return hit;
  const parsed = patterns.getOrCreate(pattern, () => parsePattern(pattern));
  const names = [...lengths.keys()];
  const recipeKey = `${op}${SEP}${pattern}${SEP}${shape.length}${SEP}${[...names].sort().join(',')}`;
  const recipe = recipes.getOrCreate(recipeKey, () => prepareRecipe(parsed, op, names, shape.length));
  const plan = makePlan(recipe, op, shape, lengths);
  plans.set(key, plan);
  return plan;
}

function einsumPlan(pattern: string, shapes: readonly (readonly number[])[]): EinsumPlan {
  return einsumPlans.getOrCreate(`${pattern}${SEP}${shapesKey(shapes)}`, () => {
    const { operands, output } = labels.getOrCreate(pattern, () => einsumLabels(pattern));
    return planEinsum(operands, output, shapes);
  });
}

function packPattern(pattern: string, op: 'pack' | 'unpack'): PackPattern {
  return packPatterns.getOrCreate(`${op}${SEP}${pattern}`, () => parsePackPattern(pattern, op));
}

/**
 * Compiles one call into its immutable, cached plan; throws einops' EinopsError (with its `rule`)
 * for any pattern or shape it cannot take, before any tensor is made.
 *
 * - `compile(op, pattern, shape, lengths)` for rearrange, repeat and the reductions: a {@link Plan}.
 * - `compile('einsum', pattern, shapes)`: an {@link EinsumPlan}.
 * - `compile('pack', pattern, shapes)` / `compile('unpack', pattern, shape, packedShapes)`.
 * - `compile('parseShape', pattern, shape)`: the named lengths (frozen; copy before changing it).
 *
 * @example
 * compile('rearrange', 'b c h w -> b h w c', [2, 3, 4, 5], new Map()).steps;
 * // [{ kind: 'transpose', perm: [0, 2, 3, 1] }]
 * compile('einsum', 'i j, j k -> i k', [[2, 3], [3, 4]]).outputShape; // [2, 4]
 */
export function compile(
  op: Operation,
  pattern: string,
  shape: readonly number[],
  lengths: ReadonlyMap<string, number>,
): Plan;
export function compile(op: 'einsum', pattern: string, shapes: readonly (readonly number[])[]): EinsumPlan;
export function compile(op: 'pack', pattern: string, shapes: readonly (readonly number[])[]): PackPlan;
export function compile(
  op: 'unpack',
  pattern: string,
  shape: readonly number[],
  packedShapes: unknown,
): UnpackPlan;
export function compile(
  op: 'parseShape',
  pattern: string,
  shape: readonly number[],
): Readonly<Record<string, number>>;
export function compile(
  op: Operation | 'einsum' | 'pack' | 'unpack' | 'parseShape',
  pattern: string,
  shape: readonly number[] | readonly (readonly number[])[],
  extra?: unknown,
): Plan | EinsumPlan | PackPlan | UnpackPlan | Readonly<Record<string, number>> {
  switch (op) {
    case 'einsum':
      return einsumPlan(pattern, shape as readonly (readonly number[])[]);
    case 'pack': {
      const shapes = shape as readonly (readonly number[])[];
      const p = packPattern(pattern, 'pack');
      return packPlans.getOrCreate(`${pattern}${SEP}${shapesKey(shapes)}`, () => planPack(p, shapes));
    }
    case 'unpack': {
      const s = shape as readonly number[];
      const p = packPattern(pattern, 'unpack');
      checkPackedShapes(extra);
      const key = `${pattern}${SEP}${s.join(',')}${SEP}${JSON.stringify(extra)}`;
      return unpackPlans.getOrCreate(key, () => planUnpack(p, s, extra));
    }
    case 'parseShape': {
      const s = shape as readonly number[];
      const exp = shapePatterns.getOrCreate(pattern, () => parseShapePattern(pattern));
      return shapeReadings.getOrCreate(`${pattern}${SEP}${s.join(',')}`, () =>
        deepFreeze(readShape(exp, pattern, s)),
      );
    }
    default:
      return transformPlan(op, pattern, shape as readonly number[], extra as ReadonlyMap<string, number>);
  }
}

/**
 * The plan of rearrange, repeat or a reduction (the form `compile` takes for them).
 *
 * @example
 * planFor('rearrange', 'b (h w) c -> b c (h w)', [2, 12, 5], new Map([['h', 3]])).outputShape; // [2, 5, 12]
 */
export function planFor(
  op: Operation,
  pattern: string,
  shape: readonly number[],
  lengths: ReadonlyMap<string, number>,
): Plan {
  return transformPlan(op, pattern, shape, lengths);
}
