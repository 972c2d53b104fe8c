import { afterAll, describe, expect, it } from 'vitest';
import { tf } from '../../src/tf.js';
import { CompileError } from '../../src/errors.js';
import { einsum, pack, rearrange, reduce, repeat, unpack } from '../../src/ops.js';
import { sym, type Sym } from '../../src/ir/index.js';
import { compileProgram, type InputSpec } from '../../src/onnx/index.js';

await tf.setBackend('cpu');

function close(a: tf.Tensor, b: tf.Tensor, tol = 1e-5): void {
  expect(a.shape).toEqual(b.shape);
  const x = a.dataSync();
  const y = b.dataSync();
  let worst = 0;
  for (let i = 0; i < x.length; i++) worst = Math.max(worst, Math.abs(x[i] - y[i]) / (1 + Math.abs(y[i])));
  expect(worst).toBeLessThan(tol);
}

/** Compiles `fn`, runs it on `values` on onnxruntime and eagerly on tfjs, compares every output. */
async function same(
  fn: (...xs: never[]) => unknown,
  specs: Record<string, InputSpec>,
  values: Record<string, tf.Tensor>,
): Promise<void> {
  const p = await compileProgram(fn as (...xs: Sym[]) => Sym, specs);
  const got = await p.run(values);
  const eager = tf.tidy(() =>
    (fn as (...xs: tf.Tensor[]) => tf.Tensor)(...Object.keys(specs).map((k) => values[k])),
  );
  close(got.output, eager);
  tf.dispose([...Object.values(got), eager]);
  await p.dispose();
}

describe('compileProgram: DSL ops traced to ONNX, same numbers as eager tfjs', () => {
  const before = tf.memory().numTensors;
  afterAll(() => expect(tf.memory().numTensors).toBe(before));

  it('rearrange with a symbolic batch, run at two batch sizes', async () => {
    const fn = (x: tf.Tensor) => rearrange(x, 'b c (h p1) (w p2) -> b (h w) (c p1 p2)', { p1: 2, p2: 2 });
    const spec = { x: { shape: [sym('N'), 3, 4, 6] } };
    for (const n of [1, 5]) {
      const x = tf.randomNormal([n, 3, 4, 6]);
      await same(fn as never, spec, { x });
      x.dispose();
    }
  });

  it('reduce, repeat, einsum, pack/unpack and elementwise methods', async () => {
    const x = tf.randomNormal([2, 5, 8]);
    const w = tf.randomNormal([6, 8]);
    await same(
      ((a: tf.Tensor) => reduce(a, 'b n d -> b d', 'max')) as never,
      { x: { shape: [sym('N'), 5, 8] } },
      { x },
    );
    await same(
      ((a: tf.Tensor) => repeat(a, 'b n d -> b n d k', { k: 3 })) as never,
      { x: { shape: [sym('N'), 5, 8] } },
      { x },
    );
    await same(
      ((a: tf.Tensor, b: tf.Tensor) => einsum('b n i, o i -> b n o', a, b)) as never,
      { x: { shape: [sym('N'), 5, 8] }, w: { shape: [6, 8] } },
      { x, w },
    );
    await same(
      ((a: tf.Tensor) => {
        const [p, shapes] = pack([a, a], 'b * d');
        return unpack(p, shapes, 'b * d')[1];
      }) as never,
      { x: { shape: [sym('N'), 5, 8] } },
      { x },
    );
    tf.dispose([x, w]);
  });

  it('attention-like block: einsum scores, softmax, gelu, layerNorm', async () => {
    const q = tf.randomNormal([2, 4, 7, 8]);
    const k = tf.randomNormal([2, 4, 7, 8]);
    const p = await compileProgram(
      (a, b) => {
        const s = einsum('b h q d, b h k d -> b h q k', a, b).mul(0.25).softmax(-1);
        return { output: einsum('b h q k, b h k d -> b h q d', s, b).gelu() };
      },
      { q: { shape: [sym('N'), 4, 7, 8] }, k: { shape: [sym('N'), 4, 7, 8] } },
    );
    const { output } = await p.run({ q, k });
    const ref = tf.tidy(() => {
      const s = tf.softmax(tf.mul(tf.matMul(q, k, false, true), 0.25));
      const y = tf.matMul(s, k);
      return tf.mul(tf.mul(y, 0.5), tf.add(1, tf.erf(tf.div(y, Math.SQRT2))));
    });
    close(output, ref, 1e-5);
    tf.dispose([q, k, output, ref]);
    await p.dispose();
  });

  it('rejects an input of the wrong shape with both shapes in a CompileError', async () => {
    const p = await compileProgram((x) => rearrange(x, 'b c h w -> b h w c'), {
      x: { shape: [sym('N'), 3, 4, 4] },
    });
    const bad = tf.zeros([2, 3, 4, 5]);
    await expect(p.run({ x: bad })).rejects.toThrow(CompileError);
    await expect(p.run({ x: bad })).rejects.toThrow(
      /\[2, 3, 4, 5\] but the compiled graph takes \[N, 3, 4, 4\]/,
    );
    bad.dispose();
    await p.dispose();
  });

  it('an untraceable op fails at compile time naming the op', async () => {
    await expect(
      compileProgram((x) => reduce(x, 'b c -> b', (t: tf.Tensor, axes: number[]) => tf.sum(t, axes)), {
        x: { shape: [sym('N'), 3] },
      }),
    ).rejects.toThrow(/reduce "b c -> b" cannot be traced: a custom reduction function/);
    await expect(
      compileProgram((x) => tf.add(x as never, 1) as never, { x: { shape: [sym('N'), 3] } }),
    ).rejects.toThrow(CompileError);
    await expect(
      compileProgram((x) => rearrange(x, 'b (c k) -> b c k', { k: 2 }), { x: { shape: [sym('N'), 3] } }),
    ).rejects.toThrow(/rearrange "b \(c k\) -> b c k" on symbolic input \[N, 3\]/);
  });
});

describe('symbolic batch through expand and concat (a class token)', () => {
  it('broadcasts a parameter over the runtime batch', async () => {
    const p = await compileProgram(
      (x) => {
        const g = x.builder;
        const cls = g.param('cls', Float32Array.from([1, 2, 3]), [1, 1, 3]);
        const tokens = g.concat([cls.expand([sym('N'), 1, 3]), x], 1);
        return { output: tokens.mul(2) };
      },
      { x: { shape: [sym('N'), 2, 3] } },
    );
    for (const n of [1, 3]) {
      const x = tf.randomNormal([n, 2, 3]);
      const { output } = await p.run({ x });
      const ref = tf.tidy(() =>
        tf.mul(tf.concat([tf.broadcastTo(tf.tensor3d([1, 2, 3], [1, 1, 3]), [n, 1, 3]), x], 1), 2),
      );
      close(output, ref);
      tf.dispose([x, output, ref]);
    }
    await p.dispose();
  });
});
