// Fuzzer for the pattern operations: random and mutated patterns, random small tensors, random axis
// lengths and reductions; huge literals and lengths (above the 2^31 - 1 bound: never allocated),
// disposed tensors and string tensors. Every rejection must be an EinopsError and nothing may leak.
//
//   npx tsx bench/fuzz.ts [--n 1000000] [--seed 1]
//
// The generators are exported: test/ops/property.test.ts drives the same ones from fast-check.
import { pathToFileURL } from 'node:url';
import { tf } from '../src/tf.js';
import { ready } from '../src/backends/index.js';
import { EinopsError } from '../src/errors.js';
import { einsum, pack, parseShape, rearrange, reduce, repeat, unpack } from '../src/ops.js';
import { Rng as SeededRng } from '../src/train/random.js';

/** A source of uniform numbers in [0, 1). */
export type Rng = () => number;

/**
 * A replayable stream of uniform numbers from the project's seeded generator (`Rng`), so every fuzz
 * run can be replayed from its seed.
 *
 * @example
 * const rng = seeded(1); rng(); // a number in [0, 1), the same on every run
 */
export function seeded(seed: number): Rng {
  const gen = new SeededRng(seed);
  return () => gen.nextFloat();
}

export const int = (rng: Rng, lo: number, hi: number): number => lo + Math.floor(rng() * (hi - lo + 1));
export const pick = <T>(rng: Rng, xs: readonly T[]): T => xs[Math.floor(rng() * xs.length)];
const chance = (rng: Rng, p: number): boolean => rng() < p;

function shuffle<T>(rng: Rng, xs: readonly T[]): T[] {
  const out = [...xs];
  for (let i = out.length - 1; i > 0; i--) {
    const j = int(rng, 0, i);
    [out[i], out[j]] = [out[j], out[i]];
  }
  return out;
}

// ---------------------------------------------------------------------------------------------
// Patterns

/** Characters patterns are made of, plus the ones that must be rejected (tabs, unicode, ...). */
const ALPHABET = [
  ...'abcdehwxyzABCXYZ0123456789',
  ...'      ',
  ...'()()..->->,*_',
  '\t',
  '\n',
  'é',
  'ß',
  'α',
  'Ω',
  '名',
  '…',
  '١', // Arabic-Indic digit one (a Unicode decimal)
  '²',
  '🙂',
];

/** Literals past the size bound (2^31 - 1), past 2^53, and one whose square is past the bound. */
const HUGE_LITERALS = [
  ' 2147483648 ',
  ' 4294967296 ',
  ' 9007199254740993 ',
  ' 99999999999999999999 ',
  ' 65536 ',
];

/** Valid patterns the mutator starts from, with the operations they are meant for. */
export const SEEDS = {
  transform: [
    'b c h w -> b h w c',
    'b (h w) c -> b c h w',
    'b c (h p1) (w p2) -> b (h w) (c p1 p2)',
    '... h w -> ... (h w)',
    'a b c -> a',
    'h w -> h w c',
    '() n e -> b n e',
    'b 1 c -> b c',
    'a b -> (a b)',
    'x -> x',
    '-> ',
    ' -> ',
    'a -> a 1 ()',
    'b (h 2) (w 2) c -> b h w c',
    '... -> ...',
    'b ... c -> (b ...) c',
    'h w -> (h 2) (w 2)',
    'a b c d -> d c b a',
  ],
  einsum: [
    'b n i, o i -> b n o',
    'b h q d, b h k d -> b h q k',
    'i i ->',
    'i j, j k -> i k',
    '... i, ... i -> ...',
    'a b c -> c b a',
    'i, i ->',
    'i, j -> i j',
    'b i j -> b',
  ],
  pack: ['b * c', '*', 'a b *', '* a', 'h  *\tw'],
  shape: ['b _ h w', 'b ... c', '_ _', '', 'a 1', 'a () b', '... h'],
} as const;

export type PatternKind = keyof typeof SEEDS;

function randomString(rng: Rng): string {
  const n = int(rng, 0, 16);
  let s = '';
  for (let i = 0; i < n; i++) s += pick(rng, ALPHABET);
  return s;
}

const WORD = /[\p{L}\p{N}_]+/gu;

/** One random edit of a valid pattern: insert/delete/replace/swap characters, duplicate axes, ... */
function mutateOnce(rng: Rng, s: string): string {
  const chars = [...s];
  const at = int(rng, 0, chars.length);
  switch (int(rng, 0, 8)) {
    case 0: // insert a character
      chars.splice(at, 0, pick(rng, ALPHABET));
      return chars.join('');
    case 1: // delete a character
      chars.splice(at, 1);
      return chars.join('');
    case 2: // replace a character
      chars[Math.min(at, chars.length - 1)] = pick(rng, ALPHABET);
      return chars.join('');
    case 3: {
      // swap two neighbours
      if (chars.length < 2) return s;
      const i = int(rng, 0, chars.length - 2);
      [chars[i], chars[i + 1]] = [chars[i + 1], chars[i]];
      return chars.join('');
    }
    case 4: {
      // duplicate an axis name somewhere
      const words = s.match(WORD) ?? ['a'];
      chars.splice(at, 0, ` ${pick(rng, words)} `);
      return chars.join('');
    }
    case 5: {
      // drop one parenthesis
      const idx = chars.flatMap((c, i) => (c === '(' || c === ')' ? [i] : []));
      if (idx.length === 0) return s;
      chars.splice(pick(rng, idx), 1);
      return chars.join('');
    }
    case 6: // add an arrow
      chars.splice(at, 0, pick(rng, ['->', ' -> ', '-', '>']));
      return chars.join('');
    case 7: {
      // wrap a stretch in parentheses
      const end = int(rng, at, chars.length);
      chars.splice(end, 0, ')');
      chars.splice(at, 0, '(');
      return chars.join('');
    }
    default: // add ellipsis or a number (huge ones too: above the bound, or not even safe integers)
      chars.splice(at, 0, pick(rng, [' ... ', ' 1 ', ' 2 ', ' 0 ', ' () ', '…', ' 07 ', ...HUGE_LITERALS]));
      return chars.join('');
  }
}

/** A pattern for `kind`: random characters, a mutated valid one, or a valid one. */
export function randomPattern(rng: Rng, kind: PatternKind): string {
  const r = rng();
  if (r < 0.2) return randomString(rng);
  let s: string = pick(rng, SEEDS[kind]);
  if (r < 0.35) return s;
  const edits = int(rng, 1, 3);
  for (let i = 0; i < edits; i++) s = mutateOnce(rng, s);
  return s;
}

// ---------------------------------------------------------------------------------------------
// Valid transform patterns with matching shapes (for the metamorphic properties and for inputs
// that get past the parser).

const NAMES = ['a', 'b', 'c', 'h', 'w', 'x', 'y', 'z', 'p1', 'q2', 'αβ'];

/** Splits `axes` into consecutive groups; each group is written `(x y)` unless it has one axis. */
function group(rng: Rng, axes: readonly string[]): string[][] {
  const out: string[][] = [];
  let i = 0;
  while (i < axes.length) {
    const size = chance(rng, 0.6) ? 1 : int(rng, 1, Math.min(3, axes.length - i));
    out.push(axes.slice(i, i + size));
    i += size;
  }
  return out;
}

/** Writes groups; single-axis groups are sometimes still parenthesised. Unit axes may be inserted. */
function write(rng: Rng, groups: readonly (readonly string[])[], units: boolean): string {
  const parts = groups.map((g) => (g.length === 1 && chance(rng, 0.8) ? g[0] : `(${g.join(' ')})`));
  if (units && chance(rng, 0.2)) parts.splice(int(rng, 0, parts.length), 0, pick(rng, ['1', '()']));
  return parts.join(' ');
}

export interface ValidCase {
  /** `left -> right` */
  readonly pattern: string;
  /** `right -> left`, the inverse (rearrange) or the reduction back (repeat). */
  readonly inverse: string;
  readonly shape: number[];
  /** Lengths the forward call needs. */
  readonly lengths: Record<string, number>;
  /** Lengths the inverse call needs. */
  readonly inverseLengths: Record<string, number>;
  /** Elementary axes of the left side, in order, and their lengths. */
  readonly axes: string[];
  readonly axisLength: Record<string, number>;
  readonly leftGroups: string[][];
  readonly rightGroups: string[][];
}

/** Lengths to give so that every group of `groups` has at most one unknown axis. */
function neededLengths(
  rng: Rng,
  groups: readonly (readonly string[])[],
  axisLength: Record<string, number>,
  always: readonly string[] = [],
): Record<string, number> {
  const out: Record<string, number> = {};
  for (const name of always) out[name] = axisLength[name];
  for (const g of groups) {
    const skip = chance(rng, 0.8) ? int(rng, 0, g.length - 1) : -1; // sometimes give them all
    g.forEach((name, i) => {
      if (g.length > 1 && i !== skip) out[name] = axisLength[name];
      else if (chance(rng, 0.15)) out[name] = axisLength[name];
    });
  }
  return out;
}

function lengthsOf(rng: Rng, axes: readonly string[], min: number): Record<string, number> {
  return Object.fromEntries(axes.map((a) => [a, int(rng, min, 3)]));
}

/** Shape of a side from its groups (unit axes written as `1`/`()` are not in the groups). */
function shapeOf(groups: readonly (readonly string[])[], axisLength: Record<string, number>): number[] {
  return groups.map((g) => g.reduce((p, a) => p * axisLength[a], 1));
}

/** Parses back unit axes: the shape of a written side, `1`/`()` included. */
export function writtenShape(side: string, axisLength: Record<string, number>): number[] {
  const out: number[] = [];
  for (const m of side.matchAll(/\(([^)]*)\)|(\S+)/g)) {
    const names = (m[1] ?? m[2]).split(' ').filter((n) => n !== '' && n !== '1');
    out.push(names.reduce((p, a) => p * axisLength[a], 1));
  }
  return out;
}

/**
 * A valid rearrange pattern, its inverse, a matching input shape and the lengths each direction
 * needs. Lengths are 1..3 (0 too when `allowZero`).
 */
export function validRearrange(rng: Rng, allowZero = false): ValidCase {
  const axes = shuffle(rng, NAMES).slice(0, int(rng, 0, 5));
  const axisLength = lengthsOf(rng, axes, allowZero && chance(rng, 0.1) ? 0 : 1);
  const leftGroups = group(rng, axes);
  const rightGroups = group(rng, shuffle(rng, axes));
  const left = write(rng, leftGroups, true);
  const right = write(rng, rightGroups, true);
  return {
    pattern: `${left} -> ${right}`,
    inverse: `${right} -> ${left}`,
    shape: writtenShape(left, axisLength),
    lengths: neededLengths(rng, leftGroups, axisLength),
    inverseLengths: neededLengths(rng, rightGroups, axisLength),
    axes,
    axisLength,
    leftGroups,
    rightGroups,
  };
}

/** A valid reduce pattern: the right side keeps a random subset of the left's axes, reordered. */
export function validReduce(rng: Rng): ValidCase {
  const axes = shuffle(rng, NAMES).slice(0, int(rng, 1, 5));
  const axisLength = lengthsOf(rng, axes, 1);
  const leftGroups = group(rng, axes);
  const kept = shuffle(
    rng,
    axes.filter(() => chance(rng, 0.5)),
  );
  const rightGroups = group(rng, kept);
  const left = write(rng, leftGroups, false);
  const right = write(rng, rightGroups, true);
  return {
    pattern: `${left} -> ${right}`,
    inverse: '',
    shape: shapeOf(leftGroups, axisLength),
    lengths: neededLengths(rng, leftGroups, axisLength),
    inverseLengths: {},
    axes,
    axisLength,
    leftGroups,
    rightGroups,
  };
}

/**
 * A valid repeat pattern (new axes of length >= 1 inserted anywhere on the right) and the reduce
 * pattern that takes the mean over the new axes again.
 */
export function validRepeat(rng: Rng): ValidCase {
  const axes = shuffle(rng, NAMES).slice(0, int(rng, 0, 4));
  const fresh = NAMES.filter((n) => !axes.includes(n)).slice(0, int(rng, 1, 2));
  const axisLength = { ...lengthsOf(rng, axes, 1), ...lengthsOf(rng, fresh, 1) };
  const leftGroups = group(rng, axes);
  const rightGroups = group(rng, shuffle(rng, [...axes, ...fresh]));
  const left = write(rng, leftGroups, false);
  const right = write(rng, rightGroups, false);
  return {
    pattern: `${left} -> ${right}`,
    inverse: `${right} -> ${left}`,
    shape: shapeOf(leftGroups, axisLength),
    lengths: neededLengths(rng, leftGroups, axisLength, fresh),
    inverseLengths: neededLengths(rng, rightGroups, axisLength),
    axes,
    axisLength,
    leftGroups,
    rightGroups,
  };
}

// ---------------------------------------------------------------------------------------------
// Tensors, lengths, reductions

export type DType = 'float32' | 'int32' | 'bool' | 'string';

/** A tensor to create (kept as a spec so that failing inputs can be printed). */
export interface TensorSpec {
  readonly shape: number[];
  readonly dtype: DType;
  /** Disposed before the call: the op must say so, not crash. */
  readonly disposed?: boolean;
}

export function randomShape(rng: Rng): number[] {
  return Array.from({ length: int(rng, 0, 4) }, () => int(rng, 0, 4));
}

export function randomSpec(rng: Rng, shape = randomShape(rng), odd = false): TensorSpec {
  if (odd && chance(rng, 0.04)) return { shape, dtype: 'float32', disposed: true };
  if (odd && chance(rng, 0.03)) return { shape, dtype: 'string' };
  return { shape, dtype: pick(rng, ['float32', 'float32', 'int32', 'bool'] as const) };
}

/** Creates the tensor of a spec with small integer values (sums and means stay exact). */
export function makeTensor(spec: TensorSpec, rng: Rng): tf.Tensor {
  const size = spec.shape.reduce((p, d) => p * d, 1);
  const values = Array.from({ length: size }, () => int(rng, -5, 5));
  if (spec.dtype === 'bool')
    return tf.tensor(
      values.map((v) => v > 0),
      spec.shape,
      'bool',
    );
  if (spec.dtype === 'string') return tf.tensor(values.map(String), spec.shape, 'string');
  return tf.tensor(values, spec.shape, spec.dtype);
}

/** Words of a pattern, to name axes in random axis lengths. */
function wordsOf(pattern: unknown): string[] {
  return typeof pattern === 'string' ? (pattern.match(WORD) ?? []) : [];
}

const BAD_NAMES = ['', '_x', 'x_', '1a', 'a b', '…', '...', '__proto__', 'constructor', 'toString', '_'];
const ODD_LENGTHS: unknown[] = [
  -1,
  -3,
  1.5,
  NaN,
  Infinity,
  -0,
  2 ** 53,
  '3',
  null,
  undefined,
  true,
  {},
  [2],
  // Safe integers above the size bound: refused before anything is allocated.
  2 ** 31,
  2 ** 32,
  2 ** 53 - 1,
  1e15,
];

/** Random axes lengths: names from the pattern or bad ones, values good or not; sometimes not an object. */
export function randomLengths(rng: Rng, pattern: unknown): unknown {
  const r = rng();
  if (r < 0.3) return undefined;
  if (r < 0.33) return pick(rng, [null, 3, 'h=2', [1, 2], () => 1, new Map([['h', 2]])]);
  const out: Record<string, unknown> = {};
  const words = wordsOf(pattern);
  const n = int(rng, 1, 3);
  for (let i = 0; i < n; i++) {
    const name = chance(rng, 0.8) && words.length > 0 ? pick(rng, words) : pick(rng, BAD_NAMES);
    const value = chance(rng, 0.8) ? int(rng, 0, 4) : pick(rng, ODD_LENGTHS);
    // defineProperty: `__proto__` becomes an own key, as JSON.parse would make it.
    Object.defineProperty(out, name, { value, enumerable: true, configurable: true, writable: true });
  }
  return out;
}

const REDUCTION_NAMES = ['sum', 'mean', 'max', 'min', 'prod', 'any', 'all'];
const BAD_REDUCTIONS: unknown[] = [
  'avg',
  'SUM',
  '',
  'rearrange',
  'repeat',
  'toString',
  '__proto__',
  3,
  null,
  undefined,
  {},
];

/** A well-behaved custom reduction (custom functions that throw are the caller's business). */
export const customReduction = (x: tf.Tensor, axes: number[]): tf.Tensor =>
  tf.sum(tf.cast(x, 'float32'), axes);

export function randomReduction(rng: Rng): unknown {
  const r = rng();
  if (r < 0.8) return pick(rng, REDUCTION_NAMES);
  if (r < 0.9) return customReduction;
  return pick(rng, BAD_REDUCTIONS);
}

/** Something that is not a tensor, for the first argument. */
const NOT_TENSORS: unknown[] = [0, 3.5, null, undefined, 'x', [1, 2], [[1]], {}, { shape: [2] }, [], true];
const NOT_STRINGS: unknown[] = [0, null, undefined, ['a -> a'], { toString: () => 'a -> a' }, Symbol('p')];

// ---------------------------------------------------------------------------------------------
// Inputs

export const OPS = ['rearrange', 'reduce', 'repeat', 'einsum', 'pack', 'unpack', 'parseShape'] as const;
export type OpName = (typeof OPS)[number];

/** One call: an operation and its arguments (tensors as specs, or raw junk). */
export interface FuzzInput {
  readonly op: OpName;
  readonly pattern: unknown;
  /** Tensor specs, or a raw non-tensor value passed in place of the tensor. */
  readonly tensors: readonly (TensorSpec | { readonly raw: unknown })[];
  /** Pass `tensors` as a list (rearrange/reduce/repeat accept lists). */
  readonly asList: boolean;
  readonly lengths: unknown;
  readonly reduction: unknown;
  readonly packedShapes: unknown;
  readonly seed: number;
}

function transformPattern(rng: Rng, op: OpName): { pattern: string; shape?: number[]; lengths?: unknown } {
  if (chance(rng, 0.35)) {
    const v =
      op === 'reduce' ? validReduce(rng) : op === 'repeat' ? validRepeat(rng) : validRearrange(rng, true);
    const ok = chance(rng, 0.6);
    return {
      pattern: ok ? v.pattern : mutateOnce(rng, v.pattern),
      shape: ok || chance(rng, 0.5) ? v.shape : undefined,
      lengths: ok ? v.lengths : randomLengths(rng, v.pattern),
    };
  }
  return { pattern: randomPattern(rng, 'transform') };
}

/** A valid einsum call from the seeds: every label gets a length 0..3, `...` 0..2 dims. */
export function validEinsum(rng: Rng): { pattern: string; shapes: number[][] } {
  const pattern: string = pick(rng, SEEDS.einsum);
  const [inputs] = pattern.split('->');
  const length = new Map<string, number>();
  const ellipsis = Array.from({ length: int(rng, 0, 2) }, () => int(rng, 1, 3));
  const shapes = inputs.split(',').map((term) =>
    term
      .trim()
      .split(' ')
      .filter((w) => w !== '')
      .flatMap((w) => {
        if (w === '...') return ellipsis;
        if (!length.has(w)) length.set(w, int(rng, chance(rng, 0.05) ? 0 : 1, 3));
        return [length.get(w)!];
      }),
  );
  return { pattern, shapes };
}

/** A valid unpack call: the packed axis is the sum of the pieces' sizes (one may be -1). */
function validUnpack(rng: Rng): { pattern: string; shape: number[]; packedShapes: number[][] } {
  const pattern: string = pick(rng, SEEDS.pack);
  const names = pattern.split(/\s+/).filter((w) => w !== '');
  const packedShapes = Array.from({ length: int(rng, 1, 3) }, () =>
    Array.from({ length: int(rng, 0, 2) }, () => int(rng, 0, 3)),
  );
  const total = packedShapes.reduce((s, p) => s + p.reduce((q, d) => q * d, 1), 0);
  if (chance(rng, 0.3)) {
    const piece = packedShapes[int(rng, 0, packedShapes.length - 1)];
    if (piece.length > 0) piece[int(rng, 0, piece.length - 1)] = -1;
  }
  const shape = names.map((n) => (n === '*' ? total : int(rng, 1, 3)));
  return { pattern, shape, packedShapes };
}

function randomPackedShapes(rng: Rng): unknown {
  if (chance(rng, 0.05)) return pick(rng, [null, 3, 'a', [3], [[1.5]], [['2']], [[-2]], [[NaN]]]);
  return Array.from({ length: int(rng, 1, 3) }, () =>
    Array.from({ length: int(rng, 0, 2) }, () => (chance(rng, 0.1) ? -1 : int(rng, 0, 4))),
  );
}

/** Draws one input for `op`. */
export function randomInput(rng: Rng, op: OpName, seed = 0): FuzzInput {
  let pattern: unknown;
  let shape: number[] | undefined;
  let lengths: unknown;
  let tensorCount = 1;
  let asList = false;
  let shapes: number[][] | undefined; // einsum: one shape per operand
  let packedShapes: unknown;
  switch (op) {
    case 'rearrange':
    case 'reduce':
    case 'repeat': {
      const t = transformPattern(rng, op);
      pattern = t.pattern;
      shape = t.shape;
      lengths = t.lengths ?? randomLengths(rng, pattern);
      asList = chance(rng, 0.1);
      if (asList) {
        tensorCount = int(rng, 0, 3);
        shape = shape?.slice(1);
      }
      break;
    }
    case 'einsum':
      if (chance(rng, 0.4)) {
        const v = validEinsum(rng);
        pattern = chance(rng, 0.7) ? v.pattern : mutateOnce(rng, v.pattern);
        shapes = v.shapes;
        tensorCount = v.shapes.length + (chance(rng, 0.05) ? int(rng, -1, 1) : 0);
      } else {
        pattern = randomPattern(rng, 'einsum');
        tensorCount = int(rng, 0, 3);
      }
      break;
    case 'pack':
      pattern = randomPattern(rng, 'pack');
      tensorCount = int(rng, 0, 3);
      break;
    case 'unpack':
      if (chance(rng, 0.4)) {
        const v = validUnpack(rng);
        pattern = chance(rng, 0.7) ? v.pattern : mutateOnce(rng, v.pattern);
        shape = v.shape;
        packedShapes = chance(rng, 0.8) ? v.packedShapes : randomPackedShapes(rng);
      } else {
        pattern = randomPattern(rng, 'pack');
        packedShapes = randomPackedShapes(rng);
      }
      break;
    case 'parseShape':
      pattern = randomPattern(rng, 'shape');
      break;
  }
  if (chance(rng, 0.02)) pattern = pick(rng, NOT_STRINGS);
  const tensors: (TensorSpec | { raw: unknown })[] = [];
  for (let i = 0; i < tensorCount; i++) {
    if (chance(rng, 0.03)) tensors.push({ raw: pick(rng, NOT_TENSORS) });
    else {
      const fit = shapes?.[i] ?? shape;
      tensors.push(randomSpec(rng, fit && chance(rng, 0.9) ? fit : undefined, true));
    }
  }
  return {
    op,
    pattern,
    tensors,
    asList,
    lengths,
    reduction: op === 'reduce' ? randomReduction(rng) : undefined,
    packedShapes,
    seed,
  };
}

function isSpec(t: TensorSpec | { raw: unknown }): t is TensorSpec {
  return 'shape' in t && 'dtype' in t;
}

/** Outputs of one call, as a flat list of tensors (pack returns a pair, unpack a list). */
function outputs(result: unknown): tf.Tensor[] {
  if (result instanceof tf.Tensor) return [result];
  if (Array.isArray(result)) return result.flatMap((r) => (r instanceof tf.Tensor ? [r] : []));
  return [];
}

export type Outcome =
  | { readonly kind: 'ok'; readonly result: unknown }
  | { readonly kind: 'einops'; readonly error: EinopsError }
  | { readonly kind: 'foreign'; readonly error: unknown };

/**
 * Runs one input: creates its tensors, calls the operation, disposes inputs and outputs, and
 * reports the outcome and the number of tensors left behind (should be 0).
 */
export function runInput(input: FuzzInput): { outcome: Outcome; leaked: number } {
  const before = tf.memory().numTensors;
  const valueRng = seeded(input.seed ^ 0x9e3779b9);
  const created: tf.Tensor[] = [];
  const args = input.tensors.map((t) => {
    if (!isSpec(t)) return t.raw;
    const x = makeTensor(t, valueRng);
    if (t.disposed) x.dispose();
    else created.push(x);
    return x;
  });
  let outcome: Outcome;
  try {
    const result = call(input, args);
    outcome = { kind: 'ok', result: describeResult(result) };
    for (const t of outputs(result)) if (!created.includes(t)) t.dispose();
  } catch (error) {
    outcome = error instanceof EinopsError ? { kind: 'einops', error } : { kind: 'foreign', error };
  }
  for (const t of created) t.dispose();
  return { outcome, leaked: tf.memory().numTensors - before };
}

// The fuzzer passes junk on purpose, so the typed signatures are bypassed here.
type Loose = (...args: unknown[]) => unknown;

function call(input: FuzzInput, args: unknown[]): unknown {
  const x = input.asList ? args : args[0];
  switch (input.op) {
    case 'rearrange':
      return (rearrange as Loose)(x, input.pattern, input.lengths);
    case 'reduce':
      return (reduce as Loose)(x, input.pattern, input.reduction, input.lengths);
    case 'repeat':
      return (repeat as Loose)(x, input.pattern, input.lengths);
    case 'einsum':
      return (einsum as Loose)(input.pattern, ...args);
    case 'pack':
      return (pack as Loose)(args, input.pattern);
    case 'unpack':
      return (unpack as Loose)(args[0], input.packedShapes, input.pattern);
    case 'parseShape':
      return (parseShape as Loose)(args[0], input.pattern);
  }
}

function describeResult(result: unknown): unknown {
  if (result instanceof tf.Tensor) return `Tensor[${result.shape}] ${result.dtype}`;
  if (Array.isArray(result)) return result.map(describeResult);
  return result;
}

/** A printable form of an input (functions and junk included). */
export function formatInput(input: FuzzInput): string {
  const show = (v: unknown): string => {
    if (typeof v === 'function') return v === customReduction ? '<custom reduction>' : '<function>';
    if (typeof v === 'symbol') return v.toString();
    if (v === undefined) return 'undefined';
    if (v instanceof Map) return `Map(${JSON.stringify([...v])})`;
    try {
      return JSON.stringify(v, (_k, x: unknown) =>
        typeof x === 'number' && !Number.isFinite(x) ? String(x) : x,
      );
    } catch {
      return String(v);
    }
  };
  const parts = [`op=${input.op}`, `pattern=${show(input.pattern)}`, `tensors=${show(input.tensors)}`];
  if (input.asList) parts.push('asList');
  if (input.lengths !== undefined) parts.push(`lengths=${show(input.lengths)}`);
  if (input.op === 'reduce') parts.push(`reduction=${show(input.reduction)}`);
  if (input.op === 'unpack') parts.push(`packedShapes=${show(input.packedShapes)}`);
  parts.push(`seed=${input.seed}`);
  return parts.join(' ');
}

/** The input for the i-th draw of a run: replayable from (seed, i) alone. */
export function inputAt(seed: number, i: number): FuzzInput {
  const s = (Math.imul(seed, 0x85ebca6b) ^ Math.imul(i + 1, 0xc2b2ae35)) >>> 0;
  const rng = seeded(s);
  return randomInput(rng, OPS[i % OPS.length], s);
}

// ---------------------------------------------------------------------------------------------
// CLI

function flag(name: string, fallback: number): number {
  const i = process.argv.indexOf(`--${name}`);
  if (i < 0) return fallback;
  const v = Number(process.argv[i + 1]);
  if (!Number.isSafeInteger(v) || v < 0) throw new Error(`--${name} needs a non-negative integer`);
  return v;
}

async function main(): Promise<void> {
  const n = flag('n', 1_000_000);
  const seed = flag('seed', 1);
  const backend = await ready();
  const start = tf.memory().numTensors;
  const counts = { ok: 0, einops: 0, foreign: 0 };
  const perOp = new Map<OpName, { ok: number; einops: number; foreign: number }>(
    OPS.map((op) => [op, { ok: 0, einops: 0, foreign: 0 }]),
  );
  const foreign: string[] = [];
  const kinds = new Map<string, number>(); // distinct foreign messages (first line, digits masked)
  const leaks: string[] = [];
  let leakedTotal = 0;
  const t0 = performance.now();
  console.log(`fuzzing ${n} inputs on ${backend}, seed ${seed}`);
  for (let i = 0; i < n; i++) {
    const input = inputAt(seed, i);
    const { outcome, leaked } = runInput(input);
    counts[outcome.kind]++;
    perOp.get(input.op)![outcome.kind]++;
    if (outcome.kind === 'foreign') {
      const e = outcome.error;
      const what = e instanceof Error ? `${e.name}: ${e.message.split('\n')[0]}` : String(e);
      if (foreign.length < 10) foreign.push(`${what}\n    input: ${formatInput(input)}  (i=${i})`);
      const kind = `${input.op}: ${what.replace(/-?\d+/g, 'N')}`;
      kinds.set(kind, (kinds.get(kind) ?? 0) + 1);
    }
    if (leaked !== 0) {
      leakedTotal += leaked;
      if (leaks.length < 10) leaks.push(`${leaked} tensors: ${formatInput(input)}  (i=${i})`);
    }
    if ((i + 1) % 100_000 === 0) {
      const s = ((performance.now() - t0) / 1000).toFixed(0);
      console.log(`  ${i + 1} inputs, ${s} s, foreign so far: ${counts.foreign}`);
    }
  }
  const seconds = (performance.now() - t0) / 1000;
  console.log(
    `inputs: ${n}, EinopsError: ${counts.einops}, ok: ${counts.ok}, foreign exceptions: ${counts.foreign}`,
  );
  console.log(
    `time: ${seconds.toFixed(1)} s (${((seconds / Math.max(n, 1)) * 1e6).toFixed(1)} µs per input)`,
  );
  console.log('per operation (ok / EinopsError / foreign):');
  for (const [op, c] of perOp) console.log(`  ${op.padEnd(10)} ${c.ok} / ${c.einops} / ${c.foreign}`);
  if (foreign.length > 0) {
    console.log('first foreign exceptions:');
    for (const f of foreign) console.log(`  ${f}`);
    console.log('distinct foreign exceptions (count, operation: message):');
    for (const [k, c] of [...kinds].sort((a, b) => b[1] - a[1])) console.log(`  ${c}  ${k}`);
  }
  console.log(`inputs that leaked tensors: ${leaks.length > 0 ? `${leakedTotal} tensors` : 'none'}`);
  for (const l of leaks) console.log(`  ${l}`);
  const end = tf.memory().numTensors;
  console.log(`tf.memory().numTensors: start ${start}, end ${end}${end === start ? '' : '  LEAK'}`);
  if (counts.foreign > 0 || end !== start) process.exitCode = 1;
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  await main();
}
