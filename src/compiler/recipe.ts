// A recipe: what a pattern means for an input of a given rank, independent of the actual lengths.
// Mirrors einops' TransformRecipe; knows nothing about tensors.
import type { Axis, Expression, Pattern } from '../dsl/ast.js';
import { axisNameProblem } from '../dsl/index.js';
import { EinopsError } from '../errors.js';

export const REDUCTIONS = ['sum', 'mean', 'max', 'min', 'prod', 'any', 'all'] as const;
export type ReductionName = (typeof REDUCTIONS)[number];
export type Operation = 'rearrange' | 'repeat' | ReductionName;

/** Length marker of an axis whose length comes from the input shape. */
export const UNKNOWN = -1;
/** Length marker of an axis whose length the caller gives in axes_lengths. */
export const GIVEN = -2;

export interface Recipe {
  /** Known lengths of elementary axes (anonymous axes), else UNKNOWN or GIVEN. */
  readonly elementaryLengths: readonly number[];
  /** Display names of elementary axes (for errors and explain). */
  readonly elementaryNames: readonly string[];
  /** axes_lengths name -> elementary axis index. */
  readonly givenAxes: ReadonlyMap<string, number>;
  /** Per input dimension: elementary axes of known length, and the (at most one) unknown one. */
  readonly inputComposition: ReadonlyArray<{
    readonly known: readonly number[];
    readonly unknown: readonly number[];
  }>;
  /** Input elementary axes (in input order) taken in this order: kept axes in output order, then reduced. */
  readonly permutation: readonly number[];
  readonly firstReducedAxis: number;
  /** Position in the output elementary order -> elementary axis, for axes new on the right (repeat). */
  readonly addedAxes: ReadonlyMap<number, number>;
  /** Output dimensions as lists of elementary axes. */
  readonly outputComposition: ReadonlyArray<readonly number[]>;
}

type Key = string;

function keyOf(axis: Axis): Key {
  if (axis.kind === 'named') return axis.name;
  if (axis.kind === 'anonymous') return `#${axis.span.start}`; // every numeric axis is distinct
  return '…';
}

function identifiers(e: Expression): Set<Key> {
  const s = new Set<Key>();
  for (const d of e.dims) for (const a of d.axes) s.add(keyOf(a));
  return s;
}

function display(keys: Iterable<Key>, names: Map<Key, string>): string {
  return [...keys].map((k) => `'${names.get(k) ?? k}'`).join(', ');
}

function fail(rule: string, message: string): never {
  throw new EinopsError(message, { rule });
}

/** Pattern-level rules of one operation (before the input is looked at). */
export function checkPatternRules(
  pattern: Pattern,
  op: Operation | string,
  givenNames: readonly string[],
): void {
  const { left, right } = pattern;
  if (!left.hasEllipsis && right.hasEllipsis) {
    fail(
      'ellipsis-right-only',
      `Ellipsis found on the right side but not on the left side of "${pattern.source}"`,
    );
  }
  if (left.hasEllipsis && left.ellipsisInGroup) {
    fail(
      'ellipsis-in-parentheses-left',
      `Ellipsis inside parentheses on the left side is not allowed: "${pattern.source}"`,
    );
  }
  const names = new Map<Key, string>();
  for (const e of [left, right])
    for (const d of e.dims)
      for (const a of d.axes) if (a.kind === 'anonymous') names.set(keyOf(a), String(a.value));
  const l = identifiers(left);
  const r = identifiers(right);
  if (op === 'rearrange') {
    if (left.hasAnonymous || right.hasAnonymous) {
      fail(
        'anonymous-axis-in-rearrange',
        'Numeric axes other than 1 are not allowed in rearrange (use a named axis and give its length)',
      );
    }
    const oneSide = [...l, ...r].filter((k) => !(l.has(k) && r.has(k)));
    if (oneSide.length > 0) {
      fail(
        'axis-on-one-side',
        `Identifiers only on one side of the pattern (should be on both): ${display(new Set(oneSide), names)}`,
      );
    }
  } else if (op === 'repeat') {
    const missing = [...l].filter((k) => !r.has(k));
    if (missing.length > 0) {
      fail(
        'repeat-axis-missing-on-right',
        `Unexpected identifiers on the left side of repeat: ${display(missing, names)}`,
      );
    }
    const given = new Set(givenNames);
    const withoutSize = [...r].filter((k) => !k.startsWith('#') && k !== '…' && !l.has(k) && !given.has(k));
    if (withoutSize.length > 0) {
      fail(
        'repeat-new-axis-without-size',
        `Specify sizes for new axes in repeat: ${display(withoutSize, names)}`,
      );
    }
  } else if ((REDUCTIONS as readonly string[]).includes(op)) {
    const extra = [...r].filter((k) => !l.has(k));
    if (extra.length > 0) {
      fail(
        'reduce-new-axis-on-right',
        `Unexpected identifiers on the right side of reduce ${op}: ${display(extra, names)}`,
      );
    }
  } else {
    fail('unknown-reduction', `Unknown reduction '${op}'. Expected one of: ${REDUCTIONS.join(', ')}`);
  }
}

/** Expands the ellipsis of one side into `…0, …1, ...` for an input of rank `ndim`. */
function compose(e: Expression, ellipsisKeys: Key[]): Key[][] {
  const out: Key[][] = [];
  for (const d of e.dims) {
    if (!d.grouped && d.axes.length === 1 && d.axes[0].kind === 'ellipsis') {
      for (const k of ellipsisKeys) out.push([k]);
      continue;
    }
    const group: Key[] = [];
    for (const a of d.axes) {
      if (a.kind === 'ellipsis') group.push(...ellipsisKeys);
      else group.push(keyOf(a));
    }
    out.push(group);
  }
  return out;
}

/**
 * einops' `_prepare_transformation_recipe`: checks the pattern against the rank and the given axis
 * names, and returns the rank-specific recipe.
 */
export function prepareRecipe(
  pattern: Pattern,
  op: Operation | string,
  givenNames: readonly string[],
  ndim: number,
): Recipe {
  checkPatternRules(pattern, op, givenNames);
  const { left, right } = pattern;
  let ellipsisKeys: Key[] = [];
  if (left.hasEllipsis) {
    const others = left.dims.length - 1;
    if (ndim < others) {
      fail('rank-too-small-for-ellipsis', `Expected at least ${others} dimensions, got ${ndim}`);
    }
    ellipsisKeys = Array.from({ length: ndim - others }, (_, i) => `…${i}`);
  } else if (ndim !== left.dims.length) {
    fail('rank-mismatch', `Wrong shape: expected ${left.dims.length} dims, received a ${ndim}-dim tensor`);
  }
  const leftComposition = compose(left, ellipsisKeys);
  const rightComposition = compose(right, ellipsisKeys);

  const names = new Map<Key, string>();
  const lengthOf = new Map<Key, number>();
  for (const e of [left, right]) {
    for (const d of e.dims) {
      for (const a of d.axes) {
        if (a.kind === 'anonymous') names.set(keyOf(a), String(a.value));
      }
    }
  }
  const anonymousValue = (k: Key): number | undefined =>
    k.startsWith('#') ? Number(names.get(k)) : undefined;
  for (const group of leftComposition) for (const k of group) lengthOf.set(k, anonymousValue(k) ?? UNKNOWN);
  const leftKeys = new Set(lengthOf.keys());
  const rightKeys = new Set(rightComposition.flat());
  for (const k of rightKeys) if (!lengthOf.has(k)) lengthOf.set(k, anonymousValue(k) ?? UNKNOWN);
  const position = new Map<Key, number>([...lengthOf.keys()].map((k, i) => [k, i]));

  const givenAxes = new Map<string, number>();
  for (const name of givenNames) {
    const problem = axisNameProblem(name);
    if (problem) fail('invalid-axes-lengths-name', `Invalid name for an axis length: '${name}' (${problem})`);
    if (!lengthOf.has(name)) fail('unused-axes-length', `Axis '${name}' is not used in the pattern`);
    lengthOf.set(name, GIVEN);
    givenAxes.set(name, position.get(name)!);
  }

  const inputComposition = leftComposition.map((group) => {
    const known = group.filter((k) => lengthOf.get(k) !== UNKNOWN);
    const unknown = group.filter((k) => lengthOf.get(k) === UNKNOWN);
    if (unknown.length > 1) {
      fail(
        'cannot-infer-sizes',
        `Could not infer sizes for ${display(unknown, names)}: give all but one of them`,
      );
    }
    return { known: known.map((k) => position.get(k)!), unknown: unknown.map((k) => position.get(k)!) };
  });

  const orderedLeft = leftComposition.flat();
  const orderedRight = rightComposition.flat();
  const reduced = orderedLeft.filter((k) => !rightKeys.has(k));
  const afterTransposition = [...orderedRight.filter((k) => leftKeys.has(k)), ...reduced];
  const permutation = afterTransposition.map((k) => orderedLeft.indexOf(k));
  const addedAxes = new Map<number, number>();
  orderedRight.forEach((k, i) => {
    if (!leftKeys.has(k)) addedAxes.set(i, position.get(k)!);
  });
  const elementaryNames = [...lengthOf.keys()].map((k) => names.get(k) ?? (k.startsWith('…') ? '...' : k));
  return {
    elementaryLengths: [...lengthOf.values()],
    elementaryNames,
    givenAxes,
    inputComposition,
    permutation,
    firstReducedAxis: afterTransposition.length - reduced.length,
    addedAxes,
    outputComposition: rightComposition.map((g) => g.map((k) => position.get(k)!)),
  };
}
