// Einsum lowering: validates operands the way numpy's einsum does, then plans a sequence of cheap,
// differentiable tfjs ops. The expensive part (contractions) is lowered to plain 2-D matMul2d whenever no
// label is shared by both operands and the output; batched contractions pick a strategy by a cost model
// measured on the wasm backend (bench/einsum.ts).
import { tf } from '../tf.js';
import { EinopsError } from '../errors.js';
import { batchMatMul3d, matMul2d, productWithGrad } from './matmul.js';

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

/** An immutable, cacheable execution plan made by {@link planEinsum} and run by {@link runEinsum}. */
export interface EinsumPlan {
  readonly inputShapes: readonly (readonly number[])[];
  readonly outputShape: readonly number[];
  /** Some label has length 0: the result is all zeros (wasm sums over empty axes return garbage). */
  readonly zeroSize: boolean;
  readonly steps: readonly EinsumStep[];
}

function fail(message: string): never {
  throw new EinopsError(message, { rule: RULE });
}

function fmtShape(shape: readonly number[]): string {
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

function deepFreeze<T>(x: T): T {
  if (typeof x === 'object' && x !== null && !Object.isFrozen(x)) {
    for (const v of Object.values(x)) deepFreeze(v);
    Object.freeze(x);
  }
  return x;
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

// ---------------------------------------------------------------------------------------------------------
// Execution

/**
 * Chooses how to run a batched product `[g, m, k] @ [g, k, n]` (g > 1) on the current backend. Only wasm
 * needs care; elsewhere tfjs' batched matMul is the fast path. Strategies: 'batched' (tf.matMul on 3-D),
 * 'dwconv' (one depthwise convolution with the groups as channels), 'mulsum' (broadcast multiply + sum),
 * 'split' (g plain 2-D matMuls on blocks split on the host).
 *
 * @example
 * chooseBatchStrategy(512, 17, 24, 17);  // 'dwconv' on wasm (MNIST attention scores)
 * chooseBatchStrategy(12, 197, 64, 197); // 'split' on wasm (ViT-B/16 attention scores)
 */
export function chooseBatchStrategy(g: number, m: number, k: number, n: number): BatchStrategy {
  if (tf.getBackend() !== 'wasm' || g <= 1) return 'batched';
  // An elementwise product is all there is when nothing is summed or one side is a vector.
  if (k === 1 || m === 1 || n === 1) return 'mulsum';
  // Big blocks: g plain 2-D matMuls on host-split blocks. bench/einsum.ts (wasm, best of 7, fwd+bwd ms, split vs
  // dwconv): ViT-B t197 d64 (block 2.5M) b1 24 vs 37, b8 408 vs 505; CIFAR t65 d12 (block 51k) 264 vs 164;
  // MNIST t17 d24 (block 7k) 48 vs 9. Batched matMul was 1.3-4x slower than dwconv (MNIST attn·v 30 vs 15).
  if (m * k * n >= SPLIT_MIN_BLOCK) return 'split';
  return 'dwconv';
}

const SPLIT_MIN_BLOCK = 1 << 18;

/** `[g, m, k] @ [g, k, n]` (or transposed layouts per flags) -> `[g, m, n]` with the given strategy. */
function batchProduct(
  a: tf.Tensor3D,
  b: tf.Tensor3D,
  aT: boolean,
  bT: boolean,
  strategy: BatchStrategy,
): tf.Tensor3D {
  const [g] = a.shape;
  const m = aT ? a.shape[2] : a.shape[1];
  const k = aT ? a.shape[1] : a.shape[2];
  const n = bT ? b.shape[1] : b.shape[2];
  const t = (x: tf.Tensor3D) => tf.transpose(x, [0, 2, 1]);
  switch (strategy) {
    case 'mulsum': {
      if (!aT && bT) return tf.sum(tf.mul(a.reshape([g, m, 1, k]), b.reshape([g, 1, n, k])), 3);
      if (!aT && !bT) return tf.sum(tf.mul(a.reshape([g, m, k, 1]), b.reshape([g, 1, k, n])), 2);
      const bb = bT ? t(b) : b;
      return tf.sum(tf.mul(a.reshape([g, k, m, 1]), bb.reshape([g, k, 1, n])), 1);
    }
    case 'dwconv':
      return dwconvProduct(aT ? tf.transpose(a, [2, 1, 0]) : tf.transpose(a, [1, 2, 0]), b, bT, g, m, k, n);
    case 'split':
      return splitProduct(aT ? t(a) : a, bT ? t(b) : b);
    case 'batched':
      return batchMatMul3d(aT ? t(a) : a, bT ? t(b) : b);
  }
}

/**
 * Batched product through one depthwise convolution: the groups become channels, the contracted axis the
 * kernel width. On wasm this is XNNPACK's grouped GEMM, faster than its BatchMatMul.
 */
function dwconvProduct(
  aMKG: tf.Tensor3D,
  b: tf.Tensor3D,
  bT: boolean,
  g: number,
  m: number,
  k: number,
  n: number,
): tf.Tensor3D {
  const x = aMKG.reshape([m, 1, k, g]) as tf.Tensor4D;
  const f = (bT ? tf.transpose(b, [2, 0, 1]) : tf.transpose(b, [1, 0, 2])).reshape([
    1,
    k,
    g,
    n,
  ]) as tf.Tensor4D;
  const y = dwconvGrad(x, f);
  return tf.transpose(y.reshape([m, g, n]), [1, 0, 2]) as tf.Tensor3D;
}

/**
 * The g blocks of `x: [g, r, c]` as separate 2-D tensors. One read of the data: tf.unstack / tf.slice on wasm
 * copy the whole input for every slice (O(g²) traffic).
 */
function blocksOf(x: tf.Tensor3D): tf.Tensor2D[] {
  const [g, r, c] = x.shape;
  const values = x.dataSync() as Float32Array;
  const size = r * c;
  return Array.from({ length: g }, (_, i) => tf.tensor2d(values.slice(i * size, (i + 1) * size), [r, c]));
}

function blockProducts(a: tf.Tensor3D, b: tf.Tensor3D): tf.Tensor3D {
  const [g, m] = a.shape;
  const n = b.shape[2];
  const as = blocksOf(a);
  const bs = blocksOf(b);
  return tf.concat(as.map((x, i) => tf.matMul(x, bs[i]))).reshape([g, m, n]);
}

// g plain 2-D products on host-split blocks; the gradient is two more rounds of the same.
const splitProduct = productWithGrad<tf.Tensor3D>(blockProducts, (x) => tf.transpose(x, [0, 2, 1]));

// tfjs' depthwise gradients have no wasm kernels. Both gradients are again depthwise products, computed
// directly in the channels-last layout: wasm transposes that move the group axis are the costly part.
const dwconvGrad = tf.customGrad((x, f, save) => {
  const xx = x as tf.Tensor4D;
  const ff = f as tf.Tensor4D;
  (save as tf.GradSaveFunc)([xx, ff]);
  return {
    value: tf.depthwiseConv2d(xx, ff, 1, 'valid'),
    gradFunc: (dy, saved) => {
      const [sx, sf] = saved as tf.Tensor4D[];
      const [m, , k, g] = sx.shape;
      const n = sf.shape[3];
      // dx[m, k, g] = sum_n dy[m, g, n] f[k, g, n]
      const x1 = tf.transpose(dy.reshape([m, g, n]), [0, 2, 1]).reshape([m, 1, n, g]) as tf.Tensor4D;
      const f1 = tf.transpose(sf.reshape([k, g, n]), [2, 1, 0]).reshape([1, n, g, k]) as tf.Tensor4D;
      const dx = tf.transpose(tf.depthwiseConv2d(x1, f1, 1, 'valid').reshape([m, g, k]), [0, 2, 1]);
      // df[k, g, n] = sum_m x[m, k, g] dy[m, g, n]
      const x2 = tf.transpose(sx.reshape([m, k, g]), [1, 0, 2]).reshape([k, 1, m, g]) as tf.Tensor4D;
      const df = tf.depthwiseConv2d(x2, dy.reshape([1, m, g, n]) as tf.Tensor4D, 1, 'valid');
      return [dx.reshape(sx.shape), df.reshape(sf.shape)];
    },
  };
}) as (x: tf.Tensor4D, f: tf.Tensor4D) => tf.Tensor4D;

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
