// The compiler's one entry: every operation's plan is immutable and cached; errors are thrown when
// compiling, before any tensor exists.
import { describe, expect, it } from 'vitest';
import { EinopsError } from '../../src/errors.js';
import { compile, planCache } from '../../src/compiler/index.js';
import { BATCH_STRATEGY_MEASUREMENTS, SPLIT_MIN_BLOCK } from '../../src/compiler/einsum.js';

function deeplyFrozen(x: unknown): boolean {
  if (typeof x !== 'object' || x === null) return true;
  return Object.isFrozen(x) && Object.values(x).every(deeplyFrozen);
}

describe('compile', () => {
  const calls: [string, () => unknown][] = [
    ['rearrange', () => compile('rearrange', 'b (h w) c -> b c h w', [2, 12, 5], new Map([['h', 3]]))],
    ['reduce', () => compile('max', 'b (h 2) w -> b h', [2, 4, 3], new Map())],
    ['repeat', () => compile('repeat', 'a -> a b', [2], new Map([['b', 3]]))],
    [
      'einsum',
      () =>
        compile('einsum', 'i j, j k -> i k', [
          [2, 3],
          [3, 4],
        ]),
    ],
    [
      'pack',
      () =>
        compile('pack', 'b * e', [
          [2, 1, 8],
          [2, 16, 8],
        ]),
    ],
    ['unpack', () => compile('unpack', 'b * e', [2, 17, 8], [[1], [-1]])],
    ['parseShape', () => compile('parseShape', 'b _ h w', [2, 3, 4, 5])],
  ];
  for (const [name, f] of calls) {
    it(`${name}: one frozen plan per distinct call`, () => {
      const a = f();
      expect(f()).toBe(a);
      expect(deeplyFrozen(a)).toBe(true);
    });
  }

  it('plans say what the op computes', () => {
    expect(
      compile('einsum', 'i j, j k -> i k', [
        [2, 3],
        [3, 4],
      ]).outputShape,
    ).toEqual([2, 4]);
    const p = compile('pack', 'b * e', [
      [2, 1, 8],
      [2, 4, 4, 8],
    ]);
    expect(p.outputShape).toEqual([2, 17, 8]);
    expect(p.packedShapes).toEqual([[1], [4, 4]]);
    const u = compile('unpack', 'b * e', [2, 17, 8], [[1], [-1]]);
    expect(u.pieces.map((q) => [q.begin, q.size, q.shape])).toEqual([
      [0, 1, [2, 1, 8]],
      [1, 16, [2, 16, 8]],
    ]);
    expect(compile('parseShape', 'b _ h w', [2, 3, 4, 5])).toEqual({ b: 2, h: 4, w: 5 });
  });

  it('unpack keys on the packed shapes exactly ([] and [[]] differ)', () => {
    expect(() => compile('unpack', '*', [0], [])).not.toThrow();
    expect(compile('unpack', '*', [1], [[]]).pieces).toHaveLength(1);
  });

  it('rejections are EinopsErrors with einops rules, and are not cached', () => {
    for (let i = 0; i < 2; i++) {
      expect(() =>
        compile('pack', 'a *', [
          [2, 3],
          [4, 3],
        ]),
      ).toThrow(EinopsError);
      expect(() => compile('einsum', 'i j -> k', [[2, 3]])).toThrow(/Unknown axis 'k'/);
    }
  });

  it('planCache.clear() empties every cache', () => {
    const a = compile('pack', 'b * e', [[2, 1, 8]]);
    planCache.clear();
    expect(compile('pack', 'b * e', [[2, 1, 8]])).not.toBe(a);
    expect(planCache.stats()).toEqual({ plans: 0, hits: 0, misses: 0 });
  });
});

describe("einsum's cost model", () => {
  it('SPLIT_MIN_BLOCK separates the measured blocks where split won from those where dwconv won', () => {
    for (const m of BATCH_STRATEGY_MEASUREMENTS) {
      expect(m.block >= SPLIT_MIN_BLOCK).toBe(m.splitMs < m.dwconvMs);
    }
  });
});
