// A plan: the exact tfjs steps for one recipe and one input shape. Immutable and cached.
import { EinopsError } from '../errors.js';
import { checkShape, MAX_ELEMENTS, sizeOf } from './limits.js';
import { GIVEN, UNKNOWN, type Operation, type Recipe } from './recipe.js';

export type Step =
  | { readonly kind: 'reshape'; readonly shape: readonly number[] }
  | { readonly kind: 'transpose'; readonly perm: readonly number[] }
  | { readonly kind: 'reduce'; readonly axes: readonly number[]; readonly reduction: Operation }
  | { readonly kind: 'tile'; readonly reps: readonly number[] };

export interface Plan {
  readonly inputShape: readonly number[];
  readonly outputShape: readonly number[];
  readonly steps: readonly Step[];
  /** Lengths of all elementary axes, by display name (for explain and parse-shape-like uses). */
  readonly axisLengths: ReadonlyArray<readonly [string, number]>;
}

function product(xs: readonly number[]): number {
  let p = 1;
  for (const x of xs) p *= x;
  return p;
}

/**
 * tfjs' transpose kernels are fast up to rank 4 and fall to a generic loop above it (measured on
 * wasm: a rank-5 or rank-6 transpose of 0.3-0.6M floats takes 35-110 ms, the same data as rank 4
 * takes 0.6-2 ms). Higher-rank permutations are run as a few rank-4 block swaps instead.
 */
const MAX_FAST_TRANSPOSE_RANK = 4;

/**
 * Decomposes `perm` of a tensor of `shape` into swaps of two adjacent blocks of axes, each a
 * transpose [0, 2, 1, 3] of a rank-4 view [before, blockA, blockB, after]. Greedy: put the next
 * wanted axis (with the run of axes that follows it in both orders) in place.
 */
export function blockSwaps(shape: readonly number[], perm: readonly number[]): Array<{ shape: number[] }> {
  const order = [...Array(shape.length).keys()]; // axes in their current order
  const swaps: Array<{ shape: number[] }> = [];
  for (let i = 0; i < perm.length; i++) {
    const j = order.indexOf(perm[i]);
    if (j === i) continue;
    let run = 1;
    while (i + run < perm.length && j + run < order.length && order[j + run] === perm[i + run]) run++;
    const size = (from: number, to: number) => product(order.slice(from, to).map((a) => shape[a]));
    swaps.push({ shape: [size(0, i), size(i, j), size(j, j + run), size(j + run, order.length)] });
    order.splice(i, 0, ...order.splice(j, run));
  }
  return swaps;
}

/**
 * A transpose that only rotates the reduced axes from the front to the back, followed by the
 * reduction, is a reduction of the leading axes: drop the transpose (it was a full copy), reduce
 * in place (apply.ts sums leading axes with one matMul, fast on every backend).
 */
function reduceLeadingInPlace(steps: Step[]): Step[] {
  const i = steps.findIndex((s) => s.kind === 'transpose');
  const t = steps[i];
  const r = steps[i + 1];
  if (!t || t.kind !== 'transpose' || !r || r.kind !== 'reduce') return steps;
  const n = t.perm.length;
  const m = r.axes.length; // reduced axes, at the end after the transpose
  const rotation = t.perm.every((p, k) => p === (k + m) % n);
  const trailing = r.axes.every((a, k) => a === n - m + k);
  if (!rotation || !trailing) return steps;
  const leading = [...Array(m).keys()];
  return [
    ...steps.slice(0, i),
    { kind: 'reduce', axes: leading, reduction: r.reduction },
    ...steps.slice(i + 2),
  ];
}

function same(a: readonly number[], b: readonly number[]): boolean {
  return a.length === b.length && a.every((x, i) => x === b[i]);
}

/**
 * einops' `_reconstruct_from_shape`, then the lowering: infers every elementary length, checks the
 * input against them, and emits reshape -> transpose -> reduce -> tile -> reshape with identity steps
 * dropped and axes that move together merged (so transposes have the smallest possible rank).
 */
export function makePlan(
  recipe: Recipe,
  op: Operation,
  shape: readonly number[],
  given: ReadonlyMap<string, number>,
): Plan {
  const lengths = [...recipe.elementaryLengths];
  for (const [name, value] of given) lengths[recipe.givenAxes.get(name)!] = value;

  recipe.inputComposition.forEach(({ known, unknown }, dim) => {
    const length = shape[dim];
    if (known.length === 0 && unknown.length === 1) {
      lengths[unknown[0]] = length;
      return;
    }
    const knownProduct = product(known.map((i) => lengths[i]));
    if (unknown.length === 0) {
      if (length !== knownProduct) {
        throw new EinopsError(`Shape mismatch, ${length} != ${knownProduct} (input dimension ${dim})`, {
          rule: 'axis-length-mismatch',
        });
      }
    } else {
      if (knownProduct === 0 || length % knownProduct !== 0) {
        throw new EinopsError(
          `Shape mismatch, can't divide axis of length ${length} in chunks of ${knownProduct} (input dimension ${dim})`,
          { rule: 'non-divisible-axis' },
        );
      }
      lengths[unknown[0]] = length / knownProduct;
    }
  });
  for (const [pos, elementary] of recipe.addedAxes) {
    if (lengths[elementary] === UNKNOWN || lengths[elementary] === GIVEN) {
      throw new EinopsError(`Length of new axis at output position ${pos} is unknown`, {
        rule: 'cannot-infer-sizes',
      });
    }
  }

  // Bounds before any tensor exists: every axis, the output and every intermediate (limits.ts).
  lengths.forEach((length, i) => {
    if (length > MAX_ELEMENTS) {
      throw new EinopsError(
        `Axis '${recipe.elementaryNames[i]}' has length ${length}, more than the ${MAX_ELEMENTS} (2^31 - 1) einvit allows`,
        { rule: 'tensor-too-large' },
      );
    }
  });
  const outputShape = recipe.outputComposition.map((g) => product(g.map((i) => lengths[i])));
  const outputNames = recipe.outputComposition.map((g) =>
    g.length === 1
      ? `'${recipe.elementaryNames[g[0]]}'`
      : `'(${g.map((i) => recipe.elementaryNames[i]).join(' ')})'`,
  );
  checkShape(outputShape, 'output', outputNames);
  const axisLengths = recipe.elementaryNames.map((n, i) => [n, lengths[i]] as const);

  // Merging axes lowers the rank of transposes but can add reshapes; keep the shorter plan.
  const merged = reduceLeadingInPlace(lower(recipe, op, shape, lengths, outputShape, true));
  const plain = reduceLeadingInPlace(lower(recipe, op, shape, lengths, outputShape, false));
  const steps = plain.length < merged.length ? plain : merged;
  for (const s of stepShapes(shape, steps)) checkShape(s, `intermediate tensor`);
  return deepFreeze({ inputShape: [...shape], outputShape, steps, axisLengths });
}

/** The shape after each step of a plan that starts from `shape`. */
export function stepShapes(shape: readonly number[], steps: readonly Step[]): number[][] {
  let current = [...shape];
  return steps.map((step) => {
    switch (step.kind) {
      case 'reshape':
        current = [...step.shape];
        break;
      case 'transpose':
        current = step.perm.map((p) => current[p]);
        break;
      case 'reduce':
        current = current.filter((_, i) => !step.axes.includes(i));
        break;
      case 'tile':
        current = current.map((d, i) => d * step.reps[i]);
        break;
    }
    return current;
  });
}

const footprints = new WeakMap<Plan, { peak: number; total: number }>();

/**
 * What running a plan allocates, in elements: its largest tensor (`peak`) and all of them together
 * (`total`: applyPlan runs under one tf.tidy, so intermediates live until it ends). Reshapes share
 * their input's data and count 0.
 *
 * @example
 * planFootprint(planFor('repeat', 'a -> a b', [2], new Map([['b', 3]]))); // { peak: 6, total: 6 }
 */
export function planFootprint(plan: Plan): { peak: number; total: number } {
  let footprint = footprints.get(plan);
  if (footprint === undefined) {
    const shapes = stepShapes(plan.inputShape, plan.steps);
    let peak = 0;
    let total = 0;
    plan.steps.forEach((s, i) => {
      if (s.kind === 'reshape') return;
      peak = Math.max(peak, sizeOf(shapes[i]));
      total += sizeOf(shapes[i]);
    });
    footprint = { peak, total };
    footprints.set(plan, footprint);
  }
  return footprint;
}

/** Freezes a plan and everything in it: plans are shared through the cache. */
export function deepFreeze<T>(x: T): T {
  // Recurse into frozen objects too: a step frozen by itself may still hold mutable arrays.
  if (typeof x === 'object' && x !== null) {
    for (const v of Object.values(x)) deepFreeze(v);
    Object.freeze(x);
  }
  return x;
}

/** The steps of a plan, with or without merging axes that move together. */
function lower(
  recipe: Recipe,
  op: Operation,
  shape: readonly number[],
  lengths: readonly number[],
  outputShape: readonly number[],
  merge: boolean,
): Step[] {
  // Elementary input axes, in input order (only those that exist in the input).
  const nInput = recipe.permutation.length;
  const perm = recipe.permutation;
  const reduced = (k: number) => k >= recipe.firstReducedAxis;

  // Output elementary order, with kept axes numbered by their place after transposition.
  const addedAt = new Set(recipe.addedAxes.keys());
  // Merge runs of axes that are consecutive in the input and stay consecutive after transposition,
  // on the same side of the reduction boundary, with no new axis inserted between them.
  const nOut = recipe.firstReducedAxis + recipe.addedAxes.size;
  const keptOutputPos: number[] = []; // output position of each kept (transposed) axis
  for (let pos = 0, kept = 0; pos < nOut; pos++) if (!addedAt.has(pos)) keptOutputPos[kept++] = pos;
  const groupOf: number[] = []; // transposed position -> merged group index
  let groups = 0;
  for (let k = 0; k < nInput; k++) {
    const mergeable =
      k > 0 &&
      perm[k] === perm[k - 1] + 1 &&
      reduced(k) === reduced(k - 1) &&
      (reduced(k) || keptOutputPos[k] === keptOutputPos[k - 1] + 1);
    groupOf[k] = merge && mergeable ? groupOf[k - 1] : groups++;
  }
  // Group lengths and the transposition over groups.
  const groupLength = new Array<number>(groups).fill(1);
  const groupFirstInput = new Array<number>(groups).fill(Infinity);
  for (let k = 0; k < nInput; k++) {
    groupLength[groupOf[k]] *= lengths[perm[k]];
    groupFirstInput[groupOf[k]] = Math.min(groupFirstInput[groupOf[k]], perm[k]);
  }
  const inputOrder = [...Array(groups).keys()].sort((a, b) => groupFirstInput[a] - groupFirstInput[b]);
  const initShape = inputOrder.map((g) => groupLength[g]);
  const groupPerm = [...Array(groups).keys()].map((g) => inputOrder.indexOf(g));
  const firstReducedGroup = recipe.firstReducedAxis < nInput ? groupOf[recipe.firstReducedAxis] : groups;

  const steps: Step[] = [];
  let current: readonly number[] = [...shape];
  let beforeLastReshape: readonly number[] = current;
  const reshape = (to: readonly number[]) => {
    if (steps[steps.length - 1]?.kind === 'reshape') {
      steps.pop(); // a reshape of a reshape is one reshape from the earlier shape
      current = beforeLastReshape;
    }
    if (same(current, to)) return;
    beforeLastReshape = current;
    steps.push({ kind: 'reshape', shape: [...to] });
    current = [...to];
  };
  reshape(initShape);
  if (!groupPerm.every((g, i) => g === i)) {
    if (groupPerm.length <= MAX_FAST_TRANSPOSE_RANK) {
      steps.push({ kind: 'transpose', perm: groupPerm });
      current = groupPerm.map((i) => current[i]);
    } else {
      for (const s of blockSwaps(current, groupPerm)) {
        reshape(s.shape);
        steps.push({ kind: 'transpose', perm: [0, 2, 1, 3] });
        current = [s.shape[0], s.shape[2], s.shape[1], s.shape[3]];
      }
    }
    const permuted = groupPerm.map((i) => initShape[i]);
    reshape(permuted);
  }
  if (firstReducedGroup < groups) {
    const axes = [...Array(groups - firstReducedGroup).keys()].map((i) => i + firstReducedGroup);
    steps.push({ kind: 'reduce', axes, reduction: op });
    current = current.slice(0, firstReducedGroup);
  }
  if (recipe.addedAxes.size > 0) {
    // Insert unit axes for the new ones, then tile them to their lengths.
    const withUnits: number[] = [];
    const reps: number[] = [];
    let keptGroup = 0;
    let prevGroup = -1;
    for (let pos = 0; pos < nOut; pos++) {
      if (addedAt.has(pos)) {
        withUnits.push(1);
        reps.push(lengths[recipe.addedAxes.get(pos)!]);
      } else {
        const k = keptOutputPos.indexOf(pos);
        const g = groupOf[k];
        if (g !== prevGroup) {
          withUnits.push(current[keptGroup++]);
          reps.push(1);
          prevGroup = g;
        }
      }
    }
    reshape(withUnits);
    if (reps.some((r) => r !== 1)) {
      steps.push({ kind: 'tile', reps });
      current = current.map((c, i) => c * reps[i]);
    }
  }
  reshape(outputShape);
  return steps;
}
