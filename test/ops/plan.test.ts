// Plans are minimal (identity steps dropped, axes that move together merged) and cached by identity.
import { beforeAll, describe, expect, it } from 'vitest';
import { ready, tf } from '../../src/index.js';
import { planCache, planFor, rearrange, repeat, reduce } from '../../src/ops.js';
import type { Operation } from '../../src/compiler/recipe.js';

beforeAll(async () => {
  await ready('wasm');
});

const plan = (op: Operation, pattern: string, shape: number[], lengths: Record<string, number> = {}) =>
  planFor(op, pattern, shape, new Map(Object.entries(lengths)));

describe('plans are minimal', () => {
  it("'b h w c -> b h w c' has no steps", () => {
    const p = plan('rearrange', 'b h w c -> b h w c', [2, 3, 4, 5]);
    expect(p.steps).toEqual([]);
    expect(p.outputShape).toEqual([2, 3, 4, 5]);
  });

  it("'b (h w) c -> b c (h w)' is one rank-3 transpose", () => {
    const p = plan('rearrange', 'b (h w) c -> b c (h w)', [2, 12, 5], { h: 3 });
    expect(p.steps).toEqual([{ kind: 'transpose', perm: [0, 2, 1] }]);
    expect(p.outputShape).toEqual([2, 5, 12]);
  });

  it("'b c h w -> b h w c' is one rank-4 transpose (merging h and w would add two reshapes)", () => {
    const p = plan('rearrange', 'b c h w -> b h w c', [2, 3, 4, 5]);
    expect(p.steps).toEqual([{ kind: 'transpose', perm: [0, 2, 3, 1] }]);
  });

  it("'b c h w d -> b h w d c' merges h w d to stay within rank 4", () => {
    const p = plan('rearrange', 'b c h w d -> b h w d c', [2, 3, 4, 5, 6]);
    expect(p.steps).toEqual([
      { kind: 'reshape', shape: [2, 3, 120] },
      { kind: 'transpose', perm: [0, 2, 1] },
      { kind: 'reshape', shape: [2, 4, 5, 6, 3] },
    ]);
  });

  it("'b c h w -> b (c h w)' is one reshape", () => {
    const p = plan('rearrange', 'b c h w -> b (c h w)', [2, 3, 4, 5]);
    expect(p.steps).toEqual([{ kind: 'reshape', shape: [2, 60] }]);
  });

  it("'a b c -> a' with sum is one reduce over the merged axes", () => {
    const p = plan('sum', 'a b c -> a', [2, 3, 4]);
    // b and c are reduced together: either one reduce over [1, 2] or a reshape to [2, 12] first.
    const reduces = p.steps.filter((s) => s.kind === 'reduce');
    expect(reduces).toHaveLength(1);
    expect(p.steps.filter((s) => s.kind === 'transpose')).toHaveLength(0);
    expect(p.steps.length).toBeLessThanOrEqual(2);
    expect(p.outputShape).toEqual([2]);
  });

  it("'a b c -> a' with sum on a rank-3 input is exactly one reduce over [1, 2]", () => {
    const p = plan('sum', 'a b c -> a', [2, 3, 4]);
    expect(p.steps).toEqual([{ kind: 'reduce', axes: [1, 2], reduction: 'sum' }]);
  });

  it("'a b c -> c' with sum reduces the leading axes in place (no transpose)", () => {
    const p = plan('sum', 'a b c -> c', [2, 3, 4]);
    expect(p.steps.some((s) => s.kind === 'transpose')).toBe(false);
  });

  it("repeat 'h w -> h w c' is reshape + tile (one data-moving step, no transpose)", () => {
    const p = plan('repeat', 'h w -> h w c', [4, 5], { c: 3 });
    // h and w move together, so the tile may run on [20, 1] with a reshape back afterwards.
    expect(p.steps.filter((s) => s.kind === 'tile')).toHaveLength(1);
    expect(p.steps.filter((s) => s.kind === 'transpose' || s.kind === 'reduce')).toHaveLength(0);
    expect(p.steps[0].kind).toBe('reshape');
    expect(p.steps.length).toBeLessThanOrEqual(3);
    expect(p.outputShape).toEqual([4, 5, 3]);
  });

  it("repeat 'h w -> (h 2) w' is one tile between reshapes", () => {
    const p = plan('repeat', 'h w -> (h 2) w', [4, 5]);
    expect(p.steps).toEqual([
      { kind: 'reshape', shape: [4, 1, 5] },
      { kind: 'tile', reps: [1, 2, 1] },
      { kind: 'reshape', shape: [8, 5] },
    ]);
  });

  it('no transpose when only unit axes are added or removed', () => {
    expect(plan('rearrange', 'b 1 c -> b c', [2, 1, 3]).steps).toEqual([{ kind: 'reshape', shape: [2, 3] }]);
    expect(plan('rearrange', 'b c -> b () c 1', [2, 3]).steps).toEqual([
      { kind: 'reshape', shape: [2, 1, 3, 1] },
    ]);
  });

  it('a reduction with nothing to reduce and nothing to move has no steps', () => {
    expect(plan('max', 'a b -> a b', [2, 3]).steps).toEqual([]);
  });

  it('plans compute what they claim (values checked against tfjs), without leaks', () => {
    const x = tf.range(0, 120).reshape([2, 3, 4, 5]);
    const y = tf.reshape(x, [8, 15]);
    const before = tf.memory().numTensors;
    tf.tidy(() => {
      const pairs: [tf.Tensor, tf.Tensor][] = [
        [rearrange(x, 'b c h w -> b h w c'), tf.transpose(x, [0, 2, 3, 1])],
        [rearrange(x, 'b c h w -> b (c h w)'), tf.reshape(x, [2, 60])],
        [reduce(x, 'b c h w -> b', 'sum'), tf.sum(x, [1, 2, 3])],
        [repeat(y, 'h w -> h w c', { c: 3 }), tf.tile(tf.reshape(y, [8, 15, 1]), [1, 1, 3])],
        [repeat(y, 'h w -> (h 2) w'), tf.reshape(tf.tile(tf.reshape(y, [8, 1, 15]), [1, 2, 1]), [16, 15])],
      ];
      for (const [a, b] of pairs) {
        expect(a.shape).toEqual(b.shape);
        expect(Array.from(a.dataSync())).toEqual(Array.from(b.dataSync()));
      }
    });
    expect(tf.memory().numTensors).toBe(before);
    tf.dispose([x, y]);
  });
});

describe('plan cache', () => {
  it('returns the same Plan object for the same call', () => {
    const a = plan('rearrange', 'b c h w -> b h w c', [2, 3, 4, 5]);
    const b = plan('rearrange', 'b c h w -> b h w c', [2, 3, 4, 5]);
    expect(b).toBe(a);
  });

  it('keys on shape, lengths and operation', () => {
    const a = plan('rearrange', 'b (h w) c -> b c (h w)', [2, 12, 5], { h: 3 });
    expect(plan('rearrange', 'b (h w) c -> b c (h w)', [2, 12, 5], { h: 4 })).not.toBe(a);
    expect(plan('rearrange', 'b (h w) c -> b c (h w)', [2, 12, 6], { h: 3 })).not.toBe(a);
    expect(plan('sum', 'b (h w) c -> b c (h w)', [2, 12, 5], { h: 3 })).not.toBe(a);
    expect(plan('rearrange', 'b (h w) c -> b c (h w)', [2, 12, 5], { h: 3 })).toBe(a);
  });

  it('a cache hit does not depend on the order of the lengths', () => {
    const a = plan('rearrange', '(a b c) -> a b c', [24], { a: 2, b: 3 });
    const b = planFor(
      'rearrange',
      '(a b c) -> a b c',
      [24],
      new Map([
        ['b', 3],
        ['a', 2],
      ]),
    );
    expect(b).toBe(a);
  });

  it('is bounded: filling it beyond 1024 entries evicts the oldest', () => {
    planCache.clear();
    const first = plan('rearrange', 'a b -> b a', [1, 1]);
    for (let n = 2; n <= 1100; n++) plan('rearrange', 'a b -> b a', [n, 1]);
    const stats = planCache.stats();
    expect(stats.plans).toBeLessThanOrEqual(1024);
    expect(stats.plans).toBeGreaterThan(1000);
    // The first plan was evicted: a new (equal but distinct) object comes back.
    const again = plan('rearrange', 'a b -> b a', [1, 1]);
    expect(again).not.toBe(first);
    expect(again).toEqual(first);
  });

  it('a recently used entry survives while older ones are evicted (LRU)', () => {
    planCache.clear();
    const kept = plan('rearrange', 'a b -> b a', [1, 1]);
    for (let n = 2; n <= 1100; n++) {
      plan('rearrange', 'a b -> b a', [n, 1]);
      if (n % 500 === 0) plan('rearrange', 'a b -> b a', [1, 1]); // touch it
    }
    expect(plan('rearrange', 'a b -> b a', [1, 1])).toBe(kept);
  });

  it('clear() empties it', () => {
    plan('rearrange', 'a b -> b a', [2, 3]);
    planCache.clear();
    expect(planCache.stats()).toEqual({ plans: 0, hits: 0, misses: 0 });
  });
});
