import { expect } from 'vitest';

/**
 * The tests' relative error: max |got - ref| / max |ref| (the measure the README's figures use); the
 * absolute error when `ref` is all zeros. Checks the lengths agree first.
 *
 * @example
 * expect(relError(logits.dataSync(), ref.data)).toBeLessThan(1e-5);
 */
export function relError(got: ArrayLike<number>, ref: ArrayLike<number>): number {
  expect(got.length).toBe(ref.length);
  let diff = 0;
  let scale = 0;
  for (let i = 0; i < ref.length; i++) {
    diff = Math.max(diff, Math.abs(got[i] - ref[i]));
    scale = Math.max(scale, Math.abs(ref[i]));
  }
  return scale === 0 ? diff : diff / scale;
}

/**
 * The relative L2 error ‖got - ref‖ / ‖ref‖ (the absolute one when `ref` is all zeros), for values
 * that drift over several optimiser steps. Checks the lengths agree first.
 *
 * @example
 * expect(relL2(next.data, eager.dataSync())).toBeLessThan(1e-5);
 */
export function relL2(got: ArrayLike<number>, ref: ArrayLike<number>): number {
  expect(got.length).toBe(ref.length);
  let diff = 0;
  let scale = 0;
  for (let i = 0; i < ref.length; i++) {
    diff += (got[i] - ref[i]) ** 2;
    scale += ref[i] ** 2;
  }
  return Math.sqrt(scale === 0 ? diff : diff / scale);
}
