// How big a tensor einvit will make. Checked when a plan is compiled (lengths and element counts, which
// do not depend on the dtype) and before a plan runs (bytes for the dtype, and the wasm heap), so that
// an oversized pattern is an EinopsError before anything is allocated.
//
// Why these bounds: tfjs' wasm backend passes byte counts to a 32-bit malloc; above 2^31 - 1 bytes the
// size wraps and the "tensor" is a few bytes of garbage (a 2^32-element repeat returned one), and a
// failed malloc is not checked, so writing the data corrupts the heap and every later op in the
// process fails or returns garbage. One bound on every backend keeps a pattern that works on one
// working on all (the cpu backend took 82 s and 7.6 GB to build a 2^32-element tensor).
import { tf } from '../tf.js';
import { EinopsError } from '../errors.js';

/** Most bytes one tensor may hold: 2^31 - 1, the largest size the wasm backend's malloc takes. */
export const MAX_TENSOR_BYTES = 2 ** 31 - 1;

/** Longest axis and most elements of any tensor (a 1-byte bool tensor at {@link MAX_TENSOR_BYTES}). */
export const MAX_ELEMENTS = MAX_TENSOR_BYTES;

/**
 * The wasm backend's heap ceiling (emscripten's getHeapMax in tfjs-backend-wasm 4.22: 4 GiB - 64 KiB),
 * minus room for the kernels' scratch memory. Live tensors plus what an op makes must stay below it.
 */
export const WASM_HEAP_BYTES = 4294901760 - 256 * 2 ** 20;

const RULE = 'tensor-too-large';

let symbolicPlanning = 0;

/**
 * Runs `plan` with the element-count bounds off. A traced program is planned with large stand-in
 * lengths for its symbolic batch (src/ir/trace.ts); those sizes are never allocated, so bounding
 * them would reject every real model. Eager calls are still bounded when their plan runs.
 *
 * @example
 * planningSymbolic(() => planFor('rearrange', 'b n d -> (b n) d', [1000003, 197, 768], new Map()));
 */
export function planningSymbolic<T>(plan: () => T): T {
  symbolicPlanning++;
  try {
    return plan();
  } finally {
    symbolicPlanning--;
  }
}

/** False while {@link planningSymbolic} runs. */
export function boundsApply(): boolean {
  return symbolicPlanning === 0;
}

/** Bytes per element of a tfjs dtype (bool is one byte on every backend). */
export function bytesPerElement(dtype: string): number {
  return dtype === 'bool' ? 1 : dtype === 'complex64' ? 8 : 4;
}

/**
 * Number of elements of `shape`, exact while it is at most {@link MAX_ELEMENTS} (a zero length gives 0
 * whatever the others are; Infinity stands for "too many").
 *
 * @example
 * sizeOf([2, 3]); // 6
 */
export function sizeOf(shape: readonly number[]): number {
  if (shape.includes(0)) return 0;
  let size = 1;
  for (const d of shape) size *= d;
  return Number.isFinite(size) ? size : Infinity;
}

/**
 * Throws when one length of `shape` or its element count is above the bound; `what` names the tensor
 * (e.g. `output`), `names` the axes for the message.
 *
 * @example
 * checkShape([2, 3], 'output', ['a', 'b']); // fine
 */
export function checkShape(shape: readonly number[], what: string, names?: readonly string[]): void {
  const bounded = boundsApply();
  shape.forEach((d, i) => {
    if ((bounded && d > MAX_ELEMENTS) || !Number.isSafeInteger(d)) {
      const axis = names?.[i] !== undefined ? `axis ${names[i]}` : `axis ${i}`;
      throw new EinopsError(
        `The ${what} would have ${axis} of length ${fmtNumber(d)}, more than the ${MAX_ELEMENTS} (2^31 - 1) einvit allows`,
        { rule: RULE },
      );
    }
  });
  const size = sizeOf(shape);
  if (bounded && size > MAX_ELEMENTS) {
    throw new EinopsError(
      `The ${what} [${shape.join(', ')}] would have ${fmtNumber(size)} elements, more than the ${MAX_ELEMENTS} (2^31 - 1) einvit allows`,
      { rule: RULE },
    );
  }
}

/**
 * Throws unless `elements` new elements of `dtype` fit one tensor ({@link MAX_TENSOR_BYTES}) and, on
 * the wasm backend, the heap next to the tensors already alive (`extraBytes` more may be made on the
 * way). Runs before an op allocates anything.
 *
 * @example
 * checkAllocation(1024, 'float32', 'rearrange output', 4096);
 */
export function checkAllocation(elements: number, dtype: string, what: string, extraBytes = 0): void {
  const bytes = elements * bytesPerElement(dtype);
  if (bytes > MAX_TENSOR_BYTES) {
    throw new EinopsError(
      `The ${what} would hold ${fmtNumber(elements)} ${dtype} elements (${fmtNumber(bytes)} bytes), more than the ${MAX_TENSOR_BYTES} bytes (2^31 - 1) one tensor may hold`,
      { rule: RULE },
    );
  }
  if (tf.getBackend() === 'wasm') {
    // tfjs counts a buffer's bytes once per tensor viewing it (a reshape shares its input's buffer),
    // so numBytes can exceed what is really alive by far (a gradient tape holds thousands of views).
    // The heap's current size is never below the real live bytes: only when both say it does not
    // fit can it not fit.
    const live = tf.memory().numBytes;
    if (
      live + bytes + extraBytes > WASM_HEAP_BYTES &&
      wasmHeap.size() + bytes + extraBytes > WASM_HEAP_BYTES
    ) {
      throw new EinopsError(
        `The ${what} needs ${fmtNumber(bytes + extraBytes)} bytes, but tensors alive already hold ${fmtNumber(live)} of the wasm backend's ${WASM_HEAP_BYTES}-byte heap (dispose some first)`,
        { rule: 'out-of-memory' },
      );
    }
  }
}

/**
 * Current size of the wasm backend's heap in bytes (it grows on demand, never shrinks). An object so
 * that a test can pretend a full heap without allocating 4 GB.
 */
export const wasmHeap = {
  size(): number {
    const wasm = (tf.backend() as { wasm?: { HEAPU8?: Uint8Array } }).wasm;
    return wasm?.HEAPU8?.buffer.byteLength ?? Infinity;
  },
};

function fmtNumber(n: number): string {
  return Number.isFinite(n) ? String(n) : 'more than 2^1024';
}
