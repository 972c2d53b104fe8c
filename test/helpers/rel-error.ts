import { expect } from 'vitest';

/**
 * The tests' relative error: max |got - ref| / max |ref| (the measure the README's figures use).
 * Checks the lengths agree first.
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
  return diff / scale;
}
