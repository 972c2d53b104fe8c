import { beforeAll, describe, expect, it } from 'vitest';
import {
  EinMix,
  EinopsError,
  Rearrange,
  Reduce,
  einsum,
  ready,
  rearrange,
  reduce,
  tf,
} from '../../src/index.js';

beforeAll(async () => {
  await ready('wasm');
});

function close(a: tf.Tensor, b: tf.Tensor, tol = 1e-5): void {
  expect(a.shape).toEqual(b.shape);
  const diff = tf.tidy(() => tf.max(tf.abs(tf.sub(a, b))).dataSync()[0]);
  expect(diff).toBeLessThanOrEqual(tol);
}

describe('Rearrange and Reduce layers', () => {
  it('run inside a sequential model, match the functions, and survive serialisation', async () => {
    const x = tf.randomNormal([2, 4, 4, 3], 0, 1, 'float32', 1);
    const model = tf.sequential({
      layers: [
        new Reduce({ pattern: 'b (h 2) (w 2) c -> b h w c', reduction: 'max', inputShape: [4, 4, 3] }),
        new Rearrange({ pattern: 'b h w c -> b (h w c)' }),
      ],
    });
    expect(model.outputs[0].shape).toEqual([null, 12]);
    const y = model.predict(x) as tf.Tensor;
    const expected = tf.tidy(() =>
      rearrange(reduce(x, 'b (h 2) (w 2) c -> b h w c', 'max'), 'b h w c -> b (h w c)'),
    );
    close(y, expected, 0);
    const json = model.toJSON(undefined, false) as object;
    const copy = await tf.models.modelFromJSON({ modelTopology: json } as unknown as Parameters<
      typeof tf.models.modelFromJSON
    >[0]);
    close(copy.predict(x) as tf.Tensor, expected, 0);
    tf.dispose([x, y, expected]);
    model.dispose();
    copy.dispose();
  });

  it('reject a malformed pattern when made', () => {
    expect(() => new Rearrange({ pattern: 'b (h w -> b' })).toThrow(EinopsError);
  });
});

describe('EinMix', () => {
  it('is einsum with its weight plus a broadcast bias, with pre/post rearranges', () => {
    const layer = new EinMix({
      pattern: 'b t (h c) -> b t (h d)',
      weightShape: 'h c d',
      biasShape: 'h d',
      axesLengths: { h: 2, c: 3, d: 4 },
    });
    const x = tf.randomNormal([2, 5, 6], 0, 1, 'float32', 2);
    const y = layer.apply(x) as tf.Tensor;
    expect(y.shape).toEqual([2, 5, 8]);
    const [w, bias] = layer.getWeights();
    expect(w.shape).toEqual([2, 3, 4]);
    expect(bias.shape).toEqual([1, 1, 2, 4]);
    const expected = tf.tidy(() => {
      const xs = rearrange(x, 'b t (h c) -> b t h c', { h: 2 });
      const mixed = tf.add(einsum('b t h c, h c d -> b t h d', xs, w), bias);
      return rearrange(mixed, 'b t h d -> b t (h d)');
    });
    close(y, expected);
    // Initialisation bounds follow einops: |w| <= sqrt(3 / fan_in), fan_in = c = 3.
    expect(tf.max(tf.abs(w)).dataSync()[0]).toBeLessThanOrEqual(Math.sqrt(3 / 3));
    tf.dispose([x, y, expected]);
    layer.dispose();
  });

  it('equals x @ W + b for a plain linear pattern', () => {
    const mix = new EinMix({
      pattern: 'b c -> b d',
      weightShape: 'c d',
      biasShape: 'd',
      axesLengths: { c: 5, d: 3 },
    });
    const x = tf.randomNormal([4, 5], 0, 1, 'float32', 3);
    const y = mix.apply(x) as tf.Tensor;
    const [w, b] = mix.getWeights();
    expect(b.shape).toEqual([1, 3]);
    const expected = tf.tidy(() => tf.add(tf.matMul(x, w), b));
    close(y, expected);
    tf.dispose([x, y, expected]);
    mix.dispose();
  });

  it('checks its arguments like einops', () => {
    const bad = (args: Partial<ConstructorParameters<typeof EinMix>[0]>) => () =>
      new EinMix({ pattern: 'b c -> b d', weightShape: 'c d', axesLengths: { c: 2, d: 2 }, ...args });
    expect(bad({ weightShape: 'c' })).toThrow(/unrecognized identifiers.*'d'/);
    expect(bad({ axesLengths: { c: 2 } })).toThrow(/give the length of weight axes.*'d'/);
    expect(bad({ weightShape: 'c d e', axesLengths: { c: 2, d: 2, e: 2 } })).toThrow(
      /redundant weight axes.*'e'/,
    );
    expect(bad({ biasShape: 'c' })).toThrow(/bias axes not present in the output/);
    expect(bad({ weightShape: '(c d)' })).toThrow(EinopsError);
  });
});
