// Runs einops conformance vectors (JSON Lines produced by the real einops) against einvit.
import { readFileSync } from 'node:fs';
import { tf } from '../tf.js';
import { EinopsError, UsageError } from '../errors.js';
import { einsum, pack, parseShape, rearrange, reduce, repeat, unpack, type Reduction } from '../ops.js';

type Value = number | boolean | string;

export interface TensorSpec {
  shape: number[];
  dtype: 'float32' | 'int32' | 'bool' | string;
  data: Value[];
}

export interface ConformanceCase {
  id: string;
  op: 'rearrange' | 'reduce' | 'repeat' | 'einsum' | 'pack' | 'unpack' | 'parse_shape';
  pattern: string;
  reduction?: string;
  axes_lengths?: Record<string, number>;
  input_is_list?: boolean;
  packed_shapes?: number[][];
  inputs: TensorSpec[];
  expect: {
    shape?: number[];
    dtype?: string;
    data?: Value[];
    outputs?: TensorSpec[];
    packed_shapes?: number[][];
    dict?: Record<string, number>;
    error?: boolean;
    rule?: string;
    reason?: string;
  };
  tolerance?: { rtol: number; atol: number };
  tags?: string[];
}

export interface CaseResult {
  id: string;
  pattern: string;
  passed: boolean;
  /** Outcome decided by numpy rather than einops: reported, not counted as a failure. */
  backendDefined: boolean;
  /** Why it failed (the difference), when it did. */
  detail?: string;
  /** For error cases: the rule we reported vs einops' rule, when they differ. */
  ruleMismatch?: string;
}

const OPS: ReadonlySet<string> = new Set([
  'rearrange',
  'reduce',
  'repeat',
  'einsum',
  'pack',
  'unpack',
  'parse_shape',
]);

// What is wrong with a parsed line as a conformance case, or undefined when it is one.
function caseProblem(value: unknown): string | undefined {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return 'not a JSON object';
  const c = value as Record<string, unknown>;
  const missing = ['id', 'op', 'pattern', 'inputs', 'expect'].filter((k) => !(k in c));
  if (missing.length > 0) return `no ${missing.map((k) => `"${k}"`).join(', ')}`;
  if (typeof c.op !== 'string' || !OPS.has(c.op))
    return `"op" ${JSON.stringify(c.op)} is not an einops operation`;
  if (typeof c.pattern !== 'string') return '"pattern" is not a string';
  if (!Array.isArray(c.inputs)) return '"inputs" is not a list';
  const bad = c.inputs.findIndex(
    (t) =>
      typeof t !== 'object' ||
      t === null ||
      !Array.isArray((t as TensorSpec).shape) ||
      !Array.isArray((t as TensorSpec).data) ||
      typeof (t as TensorSpec).dtype !== 'string',
  );
  if (bad >= 0) return `"inputs[${bad}]" is not a tensor { shape, dtype, data }`;
  if (typeof c.expect !== 'object' || c.expect === null) return '"expect" is not an object';
  return undefined;
}

/**
 * Reads a JSON Lines file of einops conformance cases (see test/conformance/README.md). A line that is
 * not valid JSON or not a case is a UsageError naming the file and line.
 *
 * @example
 * const cases = readCases('test/conformance/rearrange.jsonl');
 */
export function readCases(path: string): ConformanceCase[] {
  const text = readFileSync(path, 'utf8');
  const cases: ConformanceCase[] = [];
  const what = 'einops conformance vectors (one JSON case per line)';
  text.split('\n').forEach((line, i) => {
    if (line.trim() === '') return;
    let value: unknown;
    try {
      value = JSON.parse(line);
    } catch (e) {
      throw new UsageError(`${path}:${i + 1}: not valid JSON (${(e as Error).message}); expected ${what}`, {
        rule: 'not-conformance',
        cause: e,
      });
    }
    const problem = caseProblem(value);
    if (problem !== undefined) {
      throw new UsageError(
        `${path}:${i + 1}: not an einops conformance case (${problem}); expected ${what}`,
        {
          rule: 'not-conformance',
        },
      );
    }
    cases.push(value as ConformanceCase);
  });
  return cases;
}

export function toNumber(v: Value): number {
  if (typeof v === 'boolean') return v ? 1 : 0;
  if (v === 'NaN') return NaN;
  if (v === 'Infinity') return Infinity;
  if (v === '-Infinity') return -Infinity;
  return Number(v);
}

export function makeTensor(spec: TensorSpec): tf.Tensor {
  const dtype = spec.dtype === 'bool' ? 'bool' : spec.dtype === 'int32' ? 'int32' : 'float32';
  const values = spec.data.map(toNumber);
  return tf.tensor(dtype === 'bool' ? values.map((v) => v !== 0) : values, spec.shape, dtype);
}

/**
 * Runs one case's operation on its input tensors (the page's backend check shares it).
 *
 * @example
 * const out = runConformanceOp(c, inputs); // a tensor, tensors, [packed, shapes] or parse_shape's lengths
 */
export function runConformanceOp(
  c: ConformanceCase,
  inputs: tf.Tensor[],
): tf.Tensor | tf.Tensor[] | [tf.Tensor, number[][]] | Record<string, number> {
  const x = c.input_is_list ? inputs : inputs[0];
  switch (c.op) {
    case 'rearrange':
      return rearrange(x, c.pattern, c.axes_lengths);
    case 'reduce':
      return reduce(x, c.pattern, c.reduction as Reduction, c.axes_lengths);
    case 'repeat':
      return repeat(x, c.pattern, c.axes_lengths);
    case 'einsum':
      return einsum(c.pattern, ...inputs);
    case 'pack':
      return pack(inputs, c.pattern);
    case 'unpack':
      return unpack(inputs[0], c.packed_shapes ?? [], c.pattern);
    case 'parse_shape':
      return parseShape(inputs[0], c.pattern);
  }
}

/** Ops whose results are copies of the input: compared exactly. */
export const EXACT_OPS: ReadonlySet<string> = new Set(['rearrange', 'repeat', 'pack', 'unpack']);

export function compareTensor(
  c: ConformanceCase,
  actual: tf.Tensor,
  expected: TensorSpec,
  what: string,
): string | undefined {
  if (actual.shape.length !== expected.shape.length || actual.shape.some((d, i) => d !== expected.shape[i])) {
    return `${what}: shape [${actual.shape}] != expected [${expected.shape}]`;
  }
  if (EXACT_OPS.has(c.op) && actual.dtype !== expected.dtype) {
    return `${what}: dtype ${actual.dtype} != expected ${expected.dtype}`;
  }
  const got = Array.from(actual.dataSync() as ArrayLike<number>, Number);
  const want = expected.data.map(toNumber);
  if (got.length !== want.length) return `${what}: ${got.length} values != expected ${want.length}`;
  const tol = c.tolerance;
  const exact = !tol || EXACT_OPS.has(c.op) || ['max', 'min', 'any', 'all'].includes(c.reduction ?? '');
  for (let i = 0; i < got.length; i++) {
    const a = got[i];
    const b = want[i];
    if (Number.isNaN(a) && Number.isNaN(b)) continue;
    const ok = exact || !tol ? a === b : Math.abs(a - b) <= tol.atol + tol.rtol * Math.abs(b) || a === b;
    if (!ok) return `${what}: element ${i} is ${a}, expected ${b}`;
  }
  return undefined;
}

function disposeAll(x: unknown): void {
  if (x instanceof tf.Tensor) x.dispose();
  else if (Array.isArray(x)) x.forEach(disposeAll);
}

/** Runs one case; never throws. */
export function runCase(c: ConformanceCase): CaseResult {
  const base = { id: c.id, pattern: c.pattern, backendDefined: (c.tags ?? []).includes('backend-defined') };
  let inputs: tf.Tensor[] = [];
  let result: ReturnType<typeof runConformanceOp> | undefined;
  try {
    inputs = c.inputs.map(makeTensor);
    try {
      result = runConformanceOp(c, inputs);
    } catch (e) {
      if (c.expect.error) {
        if (e instanceof EinopsError) {
          const mismatch =
            c.expect.rule && e.rule !== c.expect.rule
              ? `rule ${e.rule} != einops ${c.expect.rule}`
              : undefined;
          return { ...base, passed: true, ruleMismatch: mismatch };
        }
        return {
          ...base,
          passed: false,
          detail: `threw ${(e as Error)?.name}: ${(e as Error)?.message} (expected EinopsError, ${c.expect.rule})`,
        };
      }
      return { ...base, passed: false, detail: `threw ${(e as Error)?.name}: ${(e as Error)?.message}` };
    }
    if (c.expect.error) {
      return {
        ...base,
        passed: false,
        detail: `returned a result; expected an error (${c.expect.rule}: ${c.expect.reason})`,
      };
    }
    let detail: string | undefined;
    if (c.op === 'parse_shape') {
      const got = JSON.stringify(result);
      const want = JSON.stringify(c.expect.dict);
      const sort = (o: Record<string, number>) =>
        JSON.stringify(Object.fromEntries(Object.entries(o).sort()));
      if (sort(result as Record<string, number>) !== sort(c.expect.dict ?? {}))
        detail = `dict ${got} != expected ${want}`;
    } else if (c.op === 'pack') {
      const [packed, shapes] = result as [tf.Tensor, number[][]];
      detail = compareTensor(c, packed, c.expect.outputs![0], 'packed');
      if (!detail && JSON.stringify(shapes) !== JSON.stringify(c.expect.packed_shapes)) {
        detail = `packed shapes ${JSON.stringify(shapes)} != expected ${JSON.stringify(c.expect.packed_shapes)}`;
      }
    } else if (c.op === 'unpack') {
      const outs = result as tf.Tensor[];
      const want = c.expect.outputs ?? [];
      if (outs.length !== want.length) detail = `${outs.length} outputs != expected ${want.length}`;
      for (let i = 0; !detail && i < outs.length; i++)
        detail = compareTensor(c, outs[i], want[i], `output ${i}`);
    } else {
      detail = compareTensor(c, result as tf.Tensor, c.expect as TensorSpec, 'result');
    }
    return { ...base, passed: detail === undefined, detail };
  } catch (e) {
    return { ...base, passed: false, detail: `runner failed: ${(e as Error)?.message}` };
  } finally {
    disposeAll(inputs);
    if (result !== undefined && c.op !== 'parse_shape') disposeAll(result);
  }
}
