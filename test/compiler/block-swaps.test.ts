import { beforeAll, describe, expect, it } from 'vitest';
import { ready, rearrange, tf } from '../../src/index.js';
import { planFor } from '../../src/ops.js';

beforeAll(async () => {
  await ready('wasm');
});

function shuffle(n: number, seed: number): number[] {
  const p = [...Array(n).keys()];
  let s = seed;
  for (let i = n - 1; i > 0; i--) {
    s = (s * 1103515245 + 12345) % 2 ** 31;
    const j = s % (i + 1);
    [p[i], p[j]] = [p[j], p[i]];
  }
  return p;
}

describe('high-rank permutations run as rank-4 block swaps', () => {
  it('match tf.transpose exactly for random permutations of rank 5 to 7', () => {
    const names = 'abcdefg'.split('');
    for (let seed = 1; seed <= 40; seed++) {
      const rank = 5 + (seed % 3);
      const shape = Array.from({ length: rank }, (_, i) => 2 + ((seed + i) % 3));
      const perm = shuffle(rank, seed);
      const pattern = `${names.slice(0, rank).join(' ')} -> ${perm.map((i) => names[i]).join(' ')}`;
      const x = tf
        .range(
          0,
          shape.reduce((a, b) => a * b, 1),
        )
        .reshape(shape);
      const got = rearrange(x, pattern);
      const want = tf.transpose(x, perm);
      expect(got.shape).toEqual(want.shape);
      expect(Array.from(got.dataSync())).toEqual(Array.from(want.dataSync()));
      const plan = planFor('rearrange', pattern, shape, new Map());
      for (const step of plan.steps)
        if (step.kind === 'transpose') expect(step.perm.length).toBeLessThanOrEqual(4);
      tf.dispose([x, got, want]);
    }
  });
});
