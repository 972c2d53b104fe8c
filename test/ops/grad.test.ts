// Gradients through every pattern op equal the gradients of the same computation written directly
// with tfjs ops (transpose/reshape/sum/tile/concat/matMul), on random data.
import { beforeAll, describe, expect, it } from 'vitest';
import { ready, tf } from '../../src/index.js';
import { einsum, pack, rearrange, reduce, repeat, unpack } from '../../src/ops.js';

const TOL = 1e-5;

// Leaks are checked per test (compareGrads and the hand-written checks), so one failure does not
// hide behind another.
beforeAll(async () => {
  await ready('wasm');
});

/** Deterministic random tensor (tfjs' seeded normal). */
function rand(shape: number[], seed: number): tf.Tensor {
  return tf.randomNormal(shape, 0, 1, 'float32', seed);
}

function maxAbsDiff(a: tf.Tensor, b: tf.Tensor): number {
  expect(a.shape).toEqual(b.shape);
  return tf.tidy(() => tf.max(tf.abs(tf.sub(a, b))).dataSync()[0]);
}

/**
 * Compares d/dx sum(f(x) * w) for our op and the reference (a fixed random weighting `w` makes the
 * upstream gradient non-uniform, so permutations show up).
 */
function compareGrads(
  inputs: tf.Tensor[],
  ours: (...xs: tf.Tensor[]) => tf.Tensor,
  reference: (...xs: tf.Tensor[]) => tf.Tensor,
  seed = 99,
): void {
  const start = tf.memory().numTensors;
  tf.tidy(() => {
    const probe = ours(...inputs);
    const w = rand(probe.shape, seed);
    const refOut = reference(...inputs);
    expect(maxAbsDiff(probe, refOut)).toBeLessThan(TOL);
    const loss =
      (f: (...xs: tf.Tensor[]) => tf.Tensor) =>
      (...xs: tf.Tensor[]) =>
        tf.sum(tf.mul(f(...xs), w));
    const g1 = tf.grads(loss(ours))(inputs);
    const g2 = tf.grads(loss(reference))(inputs);
    expect(g1).toHaveLength(inputs.length);
    g1.forEach((g, i) => {
      expect(maxAbsDiff(g, g2[i])).toBeLessThan(TOL);
      // Not trivially zero: the check would pass on two broken gradients otherwise.
      expect(tf.max(tf.abs(g)).dataSync()[0]).toBeGreaterThan(0);
    });
  });
  expect(tf.memory().numTensors).toBe(start);
}

describe('gradients through rearrange', () => {
  it("'b c h w -> b h w c'", () => {
    const x = rand([2, 3, 4, 5], 1);
    compareGrads(
      [x],
      (a) => rearrange(a, 'b c h w -> b h w c'),
      (a) => tf.transpose(a, [0, 2, 3, 1]),
    );
    x.dispose();
  });

  it("patches 'b c (h p1) (w p2) -> b (h w) (c p1 p2)'", () => {
    const x = rand([2, 3, 8, 6], 2);
    compareGrads(
      [x],
      (a) => rearrange(a, 'b c (h p1) (w p2) -> b (h w) (c p1 p2)', { p1: 4, p2: 3 }),
      (a) => tf.reshape(tf.transpose(tf.reshape(a, [2, 3, 2, 4, 2, 3]), [0, 2, 4, 1, 3, 5]), [2, 4, 36]),
    );
    x.dispose();
  });

  it('with tf.grad on a single input and a list input', () => {
    const x = rand([3, 4], 3);
    const y = rand([3, 4], 4);
    const w = rand([4, 2, 3], 5);
    const start = tf.memory().numTensors;
    tf.tidy(() => {
      const g = tf.grad((a: tf.Tensor) => tf.sum(tf.mul(rearrange([a, y], 'n h w -> w n h'), w)))(x);
      const ref = tf.grad((a: tf.Tensor) => tf.sum(tf.mul(tf.transpose(tf.stack([a, y]), [2, 0, 1]), w)))(x);
      expect(maxAbsDiff(g, ref)).toBeLessThan(TOL);
    });
    expect(tf.memory().numTensors).toBe(start);
    tf.dispose([x, y, w]);
  });
});

describe('gradients through reduce', () => {
  for (const reduction of ['sum', 'mean', 'max', 'prod'] as const) {
    it(`${reduction}: 'b c (h 2) (w 2) -> b h w c'`, () => {
      // prod: values near 1 keep the product well scaled; max: random normals have no ties.
      const x = tf.tidy(() =>
        reduction === 'prod' ? tf.add(1, tf.mul(0.3, rand([2, 3, 4, 6], 6))) : rand([2, 3, 4, 6], 6),
      );
      const refReduce = (t: tf.Tensor, axes: number[]) =>
        reduction === 'sum'
          ? tf.sum(t, axes)
          : reduction === 'mean'
            ? tf.mean(t, axes)
            : reduction === 'max'
              ? tf.max(t, axes)
              : tf.prod(t, axes);
      compareGrads(
        [x],
        (a) => reduce(a, 'b c (h 2) (w 2) -> b h w c', reduction),
        (a) => tf.transpose(refReduce(tf.reshape(a, [2, 3, 2, 2, 3, 2]), [3, 5]), [0, 2, 3, 1]),
      );
      x.dispose();
    });
  }

  it("sum over everything 'a b c ->'", () => {
    const x = rand([2, 3, 4], 7);
    compareGrads(
      [x],
      (a) => reduce(a, 'a b c ->', 'sum'),
      (a) => tf.sum(a),
    );
    x.dispose();
  });
});

describe('gradients through repeat', () => {
  it("'h w -> h w c'", () => {
    const x = rand([3, 4], 8);
    compareGrads(
      [x],
      (a) => repeat(a, 'h w -> h w c', { c: 3 }),
      (a) => tf.tile(tf.reshape(a, [3, 4, 1]), [1, 1, 3]),
    );
    x.dispose();
  });

  it("upsampling 'b h w -> b (h 2) (w 3)'", () => {
    const x = rand([2, 3, 4], 9);
    compareGrads(
      [x],
      (a) => repeat(a, 'b h w -> b (h 2) (w 3)'),
      // Broadcasting multiply: tfjs has no gradient for rank-5 tf.tile, so the reference avoids it.
      (a) => tf.reshape(tf.mul(tf.reshape(a, [2, 3, 1, 4, 1]), tf.ones([1, 1, 2, 1, 3])), [2, 6, 12]),
    );
    x.dispose();
  });

  it("3-D upsampling 'd h w -> (d 2) (h 2) (w 2)' (a rank-6 tile in the plan)", () => {
    // tfjs' own Tile gradient stops at rank 4; repeat must still be differentiable here.
    const x = rand([2, 3, 2], 26);
    compareGrads(
      [x],
      (a) => repeat(a, 'd h w -> (d 2) (h 2) (w 2)'),
      (a) => tf.reshape(tf.mul(tf.reshape(a, [2, 1, 3, 1, 2, 1]), tf.ones([1, 2, 1, 2, 1, 2])), [4, 6, 4]),
    );
    x.dispose();
  });

  it("class token '() n e -> b n e'", () => {
    const x = rand([1, 2, 5], 10);
    compareGrads(
      [x],
      (a) => repeat(a, '() n e -> b n e', { b: 4 }),
      (a) => tf.tile(a, [4, 1, 1]),
    );
    x.dispose();
  });
});

describe('gradients through einsum', () => {
  it("dense 'b n i, o i -> b n o'", () => {
    const x = rand([2, 5, 6], 11);
    const w = rand([4, 6], 12);
    compareGrads(
      [x, w],
      (a, b) => einsum('b n i, o i -> b n o', a, b),
      (a, b) => tf.reshape(tf.matMul(tf.reshape(a, [10, 6]), tf.transpose(b)), [2, 5, 4]),
    );
    tf.dispose([x, w]);
  });

  it("attention 'b h q d, b h k d -> b h q k'", () => {
    const q = rand([2, 3, 5, 4], 13);
    const k = rand([2, 3, 7, 4], 14);
    compareGrads(
      [q, k],
      (a, b) => einsum('b h q d, b h k d -> b h q k', a, b),
      (a, b) => tf.matMul(a as tf.Tensor4D, tf.transpose(b, [0, 1, 3, 2]) as tf.Tensor4D),
    );
    tf.dispose([q, k]);
  });

  it("attention times values 'b h q k, b h k d -> b h q d'", () => {
    const a = rand([2, 3, 5, 7], 15);
    const v = rand([2, 3, 7, 4], 16);
    compareGrads(
      [a, v],
      (x, y) => einsum('b h q k, b h k d -> b h q d', x, y),
      (x, y) => tf.matMul(x as tf.Tensor4D, y as tf.Tensor4D),
    );
    tf.dispose([a, v]);
  });

  it("einops' argument order (tensors first) gives the same gradient", () => {
    const x = rand([3, 4], 17);
    const w = rand([4, 2], 18);
    compareGrads(
      [x, w],
      (a, b) => einsum(a, b, 'i j, j k -> i k'),
      (a, b) => tf.matMul(a as tf.Tensor2D, b as tf.Tensor2D),
    );
    tf.dispose([x, w]);
  });
});

describe('gradients through pack and unpack', () => {
  it("pack 'b * e' of a class token and patches", () => {
    const cls = rand([2, 1, 4], 19);
    const patches = rand([2, 3, 3, 4], 20);
    compareGrads(
      [cls, patches],
      (a, b) => pack([a, b], 'b * e')[0],
      (a, b) => tf.concat([a, tf.reshape(b, [2, 9, 4])], 1),
    );
    tf.dispose([cls, patches]);
  });

  it("unpack 'b * e' back into pieces", () => {
    const x = rand([2, 10, 4], 21);
    const w1 = rand([2, 1, 4], 22);
    const w2 = rand([2, 3, 3, 4], 23);
    const start = tf.memory().numTensors;
    tf.tidy(() => {
      const loss = (pieces: tf.Tensor[]) =>
        tf.add(tf.sum(tf.mul(pieces[0], w1)), tf.sum(tf.mul(pieces[1], w2)));
      const g = tf.grad((a: tf.Tensor) => loss(unpack(a, [[1], [3, 3]], 'b * e')))(x);
      const ref = tf.grad((a: tf.Tensor) =>
        loss([
          tf.slice(a, [0, 0, 0], [2, 1, 4]),
          tf.reshape(tf.slice(a, [0, 1, 0], [2, 9, 4]), [2, 3, 3, 4]),
        ]),
      )(x);
      expect(maxAbsDiff(g, ref)).toBeLessThan(TOL);
      expect(tf.max(tf.abs(g)).dataSync()[0]).toBeGreaterThan(0);
    });
    expect(tf.memory().numTensors).toBe(start);
    tf.dispose([x, w1, w2]);
  });

  it('pack then unpack: the gradient flows back to each input unchanged', () => {
    const a = rand([2, 1, 4], 24);
    const b = rand([2, 5, 4], 25);
    compareGrads(
      [a, b],
      (x, y) => {
        const [packed, shapes] = pack([x, y], 'b * e');
        const [u, v] = unpack(tf.mul(packed, 2), shapes, 'b * e');
        return tf.concat([tf.reshape(u, [2, 4]), tf.reshape(v, [2, 20])], 1);
      },
      (x, y) => tf.concat([tf.reshape(tf.mul(x, 2), [2, 4]), tf.reshape(tf.mul(y, 2), [2, 20])], 1),
    );
    tf.dispose([a, b]);
  });
});
