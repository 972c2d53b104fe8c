// Einsum planning: validates operands the way numpy's einsum does, then makes an immutable plan of cheap,
// differentiable steps (prepare each operand, contract pairs, finish). Knows shapes, never tensors; the
// strategies (einsum-strategies.ts) and the executor (einsum-apply.ts) run it.
import { EinopsError } from '../errors.js';
import { checkShape } from './limits.js';
import { deepFreeze } from './plan.js';

const RULE = 'einsum-backend-error';
const ELLIPSIS = '...';

/** How a contraction with batch labels (shared by both operands and the output) is executed. */
export type BatchStrategy = 'batched' | 'dwconv' | 'mulsum' | 'split';

/** Options for {@link planEinsum}; only benchmarks and tests need them. */
export interface EinsumOptions {
  /** Force one strategy for every batched contraction instead of the measured cost model. */
  readonly strategy?: BatchStrategy;
}

/** Per-operand preparation: drop length-1 dims, take diagonals, sum labels nobody else needs. */
export interface PrepareStep {
  readonly kind: 'prepare';
  readonly operand: number;
  /** Shape after dropping length-1 dims, or null when nothing is dropped. */
  readonly squeezeTo: readonly number[] | null;
  /** Diagonals taken in order: keep axis `a`, fold axis `b` (same label, length n) into it. */
  readonly diagonals: readonly { readonly a: number; readonly b: number; readonly n: number }[];
  /** Axes summed after the diagonals. */
  readonly sumAxes: readonly number[];
  /** Labels of the prepared operand, in axis order. */
  readonly labels: readonly string[];
}

/**
 * Pairwise contraction of slots `left` and `right` into a new slot. Each operand is permuted (when `perm*` is
 * set) and reshaped to 3-D `[g, rows, k]` (`*T` false for the left, true for the right) or `[g, k, rows]`.
 */
export interface ContractStep {
  readonly kind: 'contract';
  readonly left: number;
  readonly right: number;
  readonly permLeft: readonly number[] | null;
  readonly permRight: readonly number[] | null;
  /** Left is `[g, k, m]` instead of `[g, m, k]`. */
  readonly leftT: boolean;
  /** Right is `[g, n, k]` instead of `[g, k, n]`. */
  readonly rightT: boolean;
  readonly g: number;
  readonly m: number;
  readonly k: number;
  readonly n: number;
  /** Strategy when g > 1 ('auto' = cost model at run time). */
  readonly strategy: BatchStrategy | 'auto';
  /** Shape and labels of the result `[batch..., leftOnly..., rightOnly...]`. */
  readonly shape: readonly number[];
  readonly labels: readonly string[];
}

/** Final permutation to the output label order and reshape to the full output shape. */
export interface FinishStep {
  readonly kind: 'finish';
  readonly perm: readonly number[] | null;
  readonly shape: readonly number[];
}

export type EinsumStep = PrepareStep | ContractStep | FinishStep;

/** An immutable, cacheable execution plan made by {@link planEinsum} and run by `runEinsum`. */
export interface EinsumPlan {
  readonly inputShapes: readonly (readonly number[])[];
  readonly outputShape: readonly number[];
  /** Some label has length 0: the result is all zeros (wasm sums over empty axes return garbage). */
  readonly zeroSize: boolean;
  readonly steps: readonly EinsumStep[];
}

export function fail(message: string): never {
  throw new EinopsError(message, { rule: RULE });
}

export function fmtShape(shape: readonly number[]): string {
  return `[${shape.join(', ')}]`;
}

const prod = (xs: readonly number[]): number => xs.reduce((a, b) => a * b, 1);
const isIdentity = (perm: readonly number[]): boolean => perm.every((p, i) => p === i);

/** Expands '...' into per-dim labels aligned from the right, as numpy broadcasts ellipsis dims. */
function expandLabels(
  operands: readonly (readonly string[])[],
  output: readonly string[],
  shapes: readonly (readonly number[])[],
): { inputs: string[][]; out: string[]; ellipsisRank: number } {
  const ellipsisDims: number[] = [];
  operands.forEach((labels, i) => {
    const named = labels.filter((l) => l !== ELLIPSIS).length;
    const hasEllipsis = labels.length !== named;
    const rank = shapes[i].length;
    const where = `operand ${i} (labels '${labels.join(' ')}', shape ${fmtShape(shapes[i])})`;
    if (labels.filter((l) => l === ELLIPSIS).length > 1) fail(`Einsum ${where} has more than one '...'.`);
    if (rank < named) fail(`Einsum ${where}: ${named} labels for a tensor of rank ${rank}.`);
    if (!hasEllipsis && rank > named) {
      fail(`Einsum ${where}: tensor of rank ${rank} has more dims than its ${named} labels and no '...'.`);
    }
    ellipsisDims.push(hasEllipsis ? rank - named : 0);
  });
  const ellipsisRank = Math.max(0, ...ellipsisDims);
  const ell = (j: number) => `${ELLIPSIS}${j}`;
  const inputs = operands.map((labels, i) =>
    labels.flatMap((l) =>
      l === ELLIPSIS
        ? Array.from({ length: ellipsisDims[i] }, (_, j) => ell(ellipsisRank - ellipsisDims[i] + j))
        : [l],
    ),
  );
  if (output.filter((l) => l === ELLIPSIS).length > 1) fail(`Einsum output has more than one '...'.`);
  if (!output.includes(ELLIPSIS) && ellipsisRank > 0) {
    fail(
      `Einsum '...' covers ${ellipsisRank} dim(s) in the inputs but the output has no '...' to hold them ` +
        `(numpy does not sum over '...').`,
    );
  }
  const out = output.flatMap((l) =>
    l === ELLIPSIS ? Array.from({ length: ellipsisRank }, (_, j) => ell(j)) : [l],
  );
  return { inputs, out, ellipsisRank };
}

function showLabel(label: string): string {
  return label.startsWith(ELLIPSIS) ? `'...' (dim ${label.slice(3)})` : `'${label}'`;
}

/** Resolves each label's length: equal everywhere, or 1 where it broadcasts (numpy's rule). */
function resolveLengths(
  inputs: readonly string[][],
  shapes: readonly (readonly number[])[],
): Map<string, number> {
  const lengths = new Map<string, { len: number; operand: number }>();
  inputs.forEach((labels, i) => {
    const local = new Map<string, number>();
    labels.forEach((l, axis) => {
      const len = shapes[i][axis];
      const seen = local.get(l);
      if (seen !== undefined && seen !== len) {
        fail(
          `Einsum operand ${i}: repeated label ${showLabel(l)} (a diagonal) has different lengths ${seen} and ${len}.`,
        );
      }
      local.set(l, len);
    });
    for (const [l, len] of local) {
      const prev = lengths.get(l);
      if (prev === undefined || prev.len === 1) lengths.set(l, { len, operand: i });
      else if (len !== 1 && len !== prev.len) {
        fail(
          `Einsum label ${showLabel(l)} has length ${prev.len} in operand ${prev.operand} but ${len} in operand ${i} ` +
            `(lengths must be equal, or 1 to broadcast).`,
        );
      }
    }
  });
  return new Map([...lengths].map(([l, v]) => [l, v.len]));
}

/**
 * Validates an einsum call like numpy's einsum and returns an immutable plan. `operands[i]` are operand i's
 * axis labels (`'...'` for an ellipsis), `output` the output labels, `shapes[i]` operand i's shape. Labels
 * repeated in one operand take a diagonal; labels missing from the output are summed; a labelled dim of
 * length 1 broadcasts against the same label elsewhere. Throws EinopsError (rule 'einsum-backend-error').
 *
 * @example
 * const plan = planEinsum([['b', 'h', 'q', 'd'], ['b', 'h', 'k', 'd']], ['b', 'h', 'q', 'k'],
 *   [[2, 4, 17, 24], [2, 4, 17, 24]]);
 * const scores = runEinsum(plan, [q, k]); // shape [2, 4, 17, 17]
 */
export function planEinsum(
  operands: readonly (readonly string[])[],
  output: readonly string[],
  shapes: readonly (readonly number[])[],
  options: EinsumOptions = {},
): EinsumPlan {
  if (shapes.length > operands.length) {
    fail(
      `Einsum got ${shapes.length} tensors but the pattern has ${operands.length} input term(s) (too many operands).`,
    );
  }
  if (shapes.length < operands.length) {
    fail(
      `Einsum got ${shapes.length} tensor(s) but the pattern has ${operands.length} input terms (too few operands).`,
    );
  }
  if (operands.length === 0) fail('Einsum needs at least one operand.');
  const { inputs, out } = expandLabels(operands, output, shapes);
  const lengths = resolveLengths(inputs, shapes);
  const seenOut = new Set<string>();
  for (const l of out) {
    if (!lengths.has(l)) fail(`Einsum output label ${showLabel(l)} does not appear in any operand.`);
    if (seenOut.has(l)) fail(`Einsum output label ${showLabel(l)} appears twice.`);
    seenOut.add(l);
  }
  const outputShape = out.map((l) => lengths.get(l)!);
  checkShape(outputShape, 'einsum output', out.map(showLabel));
  const frozen = (s: readonly number[]) => Object.freeze([...s]);
  const inputShapes = Object.freeze(shapes.map(frozen));
  if ([...lengths.values()].some((n) => n === 0)) {
    return Object.freeze({
      inputShapes,
      outputShape: frozen(outputShape),
      zeroSize: true,
      steps: Object.freeze([]),
    });
  }

  const steps: EinsumStep[] = [];
  // Labels of length 1 carry no data: drop them everywhere and restore them in the final reshape.
  const live = (l: string) => lengths.get(l)! > 1;
  const outLive = out.filter(live);
  const slots: (string[] | null)[] = [];
  // Broadcast dims (length 1 against a longer label) vanish here, so only dims > 1 count as uses.
  const squeezed = inputs.map((labels, i) => labels.filter((_, axis) => shapes[i][axis] > 1));
  inputs.forEach((labels, i) => {
    const others = new Set([...outLive, ...squeezed.flatMap((ls, j) => (j === i ? [] : ls))]);
    const kept = labels.map((_, axis) => shapes[i][axis] > 1);
    let cur = squeezed[i];
    const squeezeTo = kept.every(Boolean) ? null : shapes[i].filter((_, axis) => kept[axis]);
    const diagonals: { a: number; b: number; n: number }[] = [];
    for (;;) {
      const b = cur.findIndex((l, axis) => cur.indexOf(l) !== axis);
      if (b < 0) break;
      diagonals.push({ a: cur.indexOf(cur[b]), b, n: lengths.get(cur[b])! });
      cur = cur.filter((_, axis) => axis !== b);
    }
    const sumAxes = cur.flatMap((l, axis) => (others.has(l) ? [] : [axis]));
    cur = cur.filter((l) => others.has(l));
    steps.push(Object.freeze({ kind: 'prepare', operand: i, squeezeTo, diagonals, sumAxes, labels: cur }));
    slots.push(cur);
  });

  // Contract pairwise, greedily picking the pair with the smallest result.
  for (;;) {
    const alive = slots.flatMap((s, i) => (s === null ? [] : [i]));
    if (alive.length < 2) break;
    let best: { i: number; j: number; size: number } | null = null;
    for (let x = 0; x < alive.length; x++) {
      for (let y = x + 1; y < alive.length; y++) {
        const [i, j] = [alive[x], alive[y]];
        const needed = neededLabels(slots, [i, j], outLive);
        const res = new Set([...slots[i]!, ...slots[j]!].filter((l) => needed.has(l)));
        const size = prod([...res].map((l) => lengths.get(l)!));
        if (best === null || size < best.size) best = { i, j, size };
      }
    }
    const { i, j } = best!;
    const isLast = alive.length === 2;
    const step = planContract(slots, i, j, outLive, lengths, isLast ? outLive : null, options);
    checkShape(step.shape, 'einsum intermediate product', step.labels.map(showLabel));
    steps.push(step);
    slots[i] = null;
    slots[j] = null;
    slots.push([...step.labels]);
  }
  const final = slots.find((s) => s !== null)!;
  const perm = outLive.map((l) => final.indexOf(l));
  steps.push(
    Object.freeze({ kind: 'finish', perm: isIdentity(perm) ? null : perm, shape: frozen(outputShape) }),
  );
  return deepFreeze({ inputShapes, outputShape, zeroSize: false, steps });
}

/** Labels still needed after contracting `pair`: the output's and those of every other live slot. */
function neededLabels(
  slots: readonly (string[] | null)[],
  pair: readonly number[],
  outLive: readonly string[],
) {
  return new Set([...outLive, ...slots.flatMap((s, i) => (s === null || pair.includes(i) ? [] : s))]);
}

function planContract(
  slots: readonly (string[] | null)[],
  i: number,
  j: number,
  outLive: readonly string[],
  lengths: Map<string, number>,
  finalOrder: readonly string[] | null,
  options: EinsumOptions,
): ContractStep {
  const A = slots[i]!;
  const B = slots[j]!;
  const needed = neededLabels(slots, [i, j], outLive);
  const size = (ls: readonly string[]) => prod(ls.map((l) => lengths.get(l)!));
  const inB = new Set(B);
  const inA = new Set(A);
  // Preparation summed labels private to one operand, so every label here is shared or needed later.
  const batch = A.filter((l) => inB.has(l) && needed.has(l));
  const contracted0 = A.filter((l) => inB.has(l) && !needed.has(l));
  const freeA = A.filter((l) => !inB.has(l));
  const freeB = B.filter((l) => !inA.has(l));
  // Contracted labels take the order of the bigger operand so that it is more likely to need no transpose.
  const contracted = size(A) >= size(B) ? contracted0 : B.filter((l) => contracted0.includes(l));
  const layout = (labels: readonly string[], free: readonly string[], freeFirst: boolean) => {
    const order = freeFirst ? [...batch, ...free, ...contracted] : [...batch, ...contracted, ...free];
    return order.map((l) => labels.indexOf(l));
  };
  // Per operand, choose [g, free, k] or [g, k, free]: whichever needs no transpose, else the matMul one.
  const pick = (labels: readonly string[], free: readonly string[], natural: boolean) => {
    const freeFirst = layout(labels, free, true);
    const kFirst = layout(labels, free, false);
    if (isIdentity(freeFirst)) return { perm: null, freeFirst: true };
    if (isIdentity(kFirst)) return { perm: null, freeFirst: false };
    return natural ? { perm: freeFirst, freeFirst: true } : { perm: kFirst, freeFirst: false };
  };
  let a = pick(A, freeA, true);
  let b = pick(B, freeB, false);
  const g = size(batch);
  const k = size(contracted);
  let left = i;
  let right = j;
  let freeL = freeA;
  let freeR = freeB;
  if (g === 1) {
    // One 2-D product. Compare transposing the flagged operands with computing (B·A)ᵀ instead.
    const resultCost = (first: readonly string[], second: readonly string[]) => {
      const order = [...first, ...second];
      return finalOrder !== null && !isIdentity(finalOrder.map((l) => order.indexOf(l))) ? size(order) : 0;
    };
    const keep = (a.freeFirst ? 0 : size(A)) + (b.freeFirst ? size(B) : 0) + resultCost(freeA, freeB);
    const swap = (b.freeFirst ? 0 : size(B)) + (a.freeFirst ? size(A) : 0) + resultCost(freeB, freeA);
    if (swap < keep) {
      [left, right, freeL, freeR] = [j, i, freeB, freeA];
      [a, b] = [pick(B, freeB, true), pick(A, freeA, false)];
    }
  }
  const labels = [...batch, ...freeL, ...freeR];
  return Object.freeze({
    kind: 'contract',
    left,
    right,
    permLeft: a.perm,
    permRight: b.perm,
    leftT: !a.freeFirst,
    rightT: b.freeFirst,
    g,
    m: size(freeL),
    k,
    n: size(freeR),
    strategy: options.strategy ?? 'auto',
    shape: labels.map((l) => lengths.get(l)!),
    labels,
  });
}
