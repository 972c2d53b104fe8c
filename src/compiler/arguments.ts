// Checks of what callers pass to the public operations (types, disposed tensors, dtypes, axis
// lengths), and einops' context line on errors. Every rejection is an EinopsError.
import { tf } from '../tf.js';
import { EinopsError } from '../errors.js';

export function isTensor(x: unknown): x is tf.Tensor {
  return x instanceof tf.Tensor;
}

/** A short description of a value of the wrong type, for messages. */
export function describe(x: unknown): string {
  if (x === null) return 'null';
  if (Array.isArray(x)) return 'an array';
  return typeof x === 'object' ? (x.constructor?.name ?? 'object') : typeof x;
}

export function checkString(pattern: unknown, op: string): asserts pattern is string {
  if (typeof pattern !== 'string') {
    throw new EinopsError(`${op}: the pattern must be a string, got ${describe(pattern)}`, {
      rule: 'bad-argument',
    });
  }
}

/** Dtypes whose data the pattern operations move: the others (string, complex64) are refused. */
const DATA_DTYPES = new Set(['float32', 'int32', 'bool']);

/**
 * Checks that `x` is a live tf.Tensor. `what` names it in messages (e.g. `rearrange: list element 2`);
 * `numeric` also requires float32, int32 or bool (string tensors abort the wasm backend's tile, and
 * complex64 has no wasm kernels).
 */
export function checkTensor(
  x: unknown,
  what: string,
  notTensor: string,
  numeric: boolean,
): asserts x is tf.Tensor {
  if (!isTensor(x)) throw new EinopsError(notTensor, { rule: 'bad-argument' });
  if (x.isDisposed) {
    throw new EinopsError(`${what} is a disposed tensor (shape [${x.shape.join(', ')}])`, {
      rule: 'disposed-tensor',
    });
  }
  if (numeric && !DATA_DTYPES.has(x.dtype)) {
    throw new EinopsError(`${what} has dtype '${x.dtype}'; expected float32, int32 or bool`, {
      rule: 'unsupported-dtype',
    });
  }
}

/** Checks einops' `**axes_lengths`: an object of non-negative safe integers. */
export function checkLengths(axesLengths: unknown, op: string): Map<string, number> {
  const out = new Map<string, number>();
  if (axesLengths === undefined || axesLengths === null) return out;
  if (typeof axesLengths !== 'object' || Array.isArray(axesLengths)) {
    throw new EinopsError(
      `${op}: axis lengths must be an object such as { h: 2 }, got ${describe(axesLengths)}`,
      {
        rule: 'bad-argument',
      },
    );
  }
  for (const [name, value] of Object.entries(axesLengths)) {
    if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < 0) {
      throw new EinopsError(
        `${op}: length of axis '${name}' must be a non-negative integer, got ${String(value)}`,
        {
          rule: 'invalid-axis-length',
        },
      );
    }
    out.set(name, value);
  }
  return out;
}

const DTYPE_ORDER = ['bool', 'int32', 'float32'] as const;

/** The dtype several tensors are combined in (list input, pack): the widest of bool < int32 < float32. */
export function widest(dtypes: readonly string[]): tf.DataType {
  let best = 0;
  for (const d of dtypes) {
    const i = DTYPE_ORDER.indexOf(d as (typeof DTYPE_ORDER)[number]);
    if (i < 0) throw new EinopsError(`Unsupported dtype '${d}'`, { rule: 'bad-argument' });
    best = Math.max(best, i);
  }
  return DTYPE_ORDER[best];
}

/** Checks a list input (every element a live tensor, one shape) and returns its shape and dtype. */
export function checkList(list: readonly unknown[], op: string): { shape: number[]; dtype: tf.DataType } {
  if (list.length === 0) {
    throw new EinopsError(`${op} can't be applied to an empty list`, { rule: 'empty-list-input' });
  }
  list.forEach((t, i) =>
    checkTensor(
      t,
      `${op}: list element ${i}`,
      `${op}: list element ${i} is not a tf.Tensor (${describe(t)})`,
      true,
    ),
  );
  const tensors = list as tf.Tensor[];
  const shape = tensors[0].shape;
  tensors.forEach((t, i) => {
    if (t.shape.length !== shape.length || t.shape.some((d, j) => d !== shape[j])) {
      throw new EinopsError(
        `${op}: all tensors of a list must have one shape; tensor 0 is [${shape}], tensor ${i} is [${t.shape}]`,
        { rule: 'list-shape-mismatch' },
      );
    }
  });
  return { shape: [tensors.length, ...shape], dtype: widest(tensors.map((t) => t.dtype)) };
}

/** Stacks a checked list of tensors on a new first axis, as einops does for list input. */
export function stackList(tensors: readonly tf.Tensor[], dtype: tf.DataType): tf.Tensor {
  return tf.tidy(() => tf.stack(tensors.map((t) => (t.dtype === dtype ? t : tf.cast(t, dtype)))));
}

function formatLengths(lengths: ReadonlyMap<string, number>): string {
  return `{${[...lengths].map(([k, v]) => `${k}: ${v}`).join(', ')}}`;
}

/** Adds einops' context line (operation, pattern, input shape, lengths) to an error. */
export function withContext(
  e: unknown,
  op: string,
  pattern: string,
  shape: readonly number[] | 'list',
  lengths: ReadonlyMap<string, number>,
): unknown {
  if (!(e instanceof EinopsError)) return e;
  const input = shape === 'list' ? 'Input is a list' : `Input tensor shape: [${shape.join(', ')}]`;
  return new EinopsError(
    `Error while processing ${op}-reduction pattern "${pattern}". ${input}. Additional info: ${formatLengths(lengths)}.\n${e.message}`,
    { rule: e.rule, cause: e },
  );
}
