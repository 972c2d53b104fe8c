import { describe, expect, it } from 'vitest';
import { Rng } from '../../src/train/random.js';

describe('Rng', () => {
  it('is deterministic by seed and differs across seeds', () => {
    const a = new Rng(7);
    const b = new Rng(7);
    const c = new Rng(8);
    const sa = Array.from({ length: 5 }, () => a.nextU32());
    expect(Array.from({ length: 5 }, () => b.nextU32())).toEqual(sa);
    expect(Array.from({ length: 5 }, () => c.nextU32())).not.toEqual(sa);
  });

  it('resumes from a saved state', () => {
    const a = new Rng(123);
    a.nextFloat();
    a.nextFloat();
    const saved = a.state;
    expect(JSON.parse(JSON.stringify(saved))).toBe(saved);
    const next = [a.nextFloat(), a.nextInt(10), a.nextU32()];
    const b = Rng.fromState(saved);
    expect([b.nextFloat(), b.nextInt(10), b.nextU32()]).toEqual(next);
  });

  it('gives floats in [0,1) and roughly uniform ints', () => {
    const r = new Rng(1);
    const counts = new Array(10).fill(0);
    let lo = 1;
    let hi = 0;
    for (let i = 0; i < 100_000; i++) {
      const f = r.nextFloat();
      lo = Math.min(lo, f);
      hi = Math.max(hi, f);
      counts[r.nextInt(10)]++;
    }
    expect(lo).toBeGreaterThanOrEqual(0);
    expect(hi).toBeLessThan(1);
    for (const c of counts) expect(Math.abs(c - 10_000)).toBeLessThan(500);
  });

  it('shuffles into a permutation, reproducibly', () => {
    const x = Int32Array.from({ length: 100 }, (_, i) => i);
    new Rng(5).shuffle(x);
    expect([...x].sort((p, q) => p - q)).toEqual(Array.from({ length: 100 }, (_, i) => i));
    expect([...x]).not.toEqual(Array.from({ length: 100 }, (_, i) => i));
    const y = new Rng(5).shuffle(Array.from({ length: 100 }, (_, i) => i));
    expect(y).toEqual([...x]);
  });
});
