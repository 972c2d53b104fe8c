import { beforeAll, describe, expect, it } from 'vitest';
import { tf } from '../../src/tf.js';
import { ready } from '../../src/backends/index.js';
import { batchMatMul3d, matMul2d } from '../../src/compiler/matmul.js';

function maxDiff(a: tf.Tensor, b: tf.Tensor): number {
  return tf.tidy(() => tf.max(tf.abs(tf.sub(a, b))).dataSync()[0]);
}

describe.each(['wasm', 'cpu'])('matMul2d on %s', (backend) => {
  beforeAll(async () => {
    await ready(backend);
  });

  it.each([
    [1, 1, 1],
    [3, 4, 5],
    [17, 24, 17],
    [64, 33, 7],
  ])('forward and gradients match tf.matMul for [%i, %i] @ [%i, n]', (m, k, n) => {
    const before = tf.memory().numTensors;
    const a = tf.randomNormal([m, k], 0, 1, 'float32', 1) as tf.Tensor2D;
    const b = tf.randomNormal([k, n], 0, 1, 'float32', 2) as tf.Tensor2D;
    const probe = tf.randomNormal([m, n], 0, 1, 'float32', 3);
    const y = matMul2d(a, b);
    const yRef = tf.matMul(a, b);
    expect(y.shape).toEqual([m, n]);
    expect(maxDiff(y, yRef)).toBeLessThan(1e-5 * Math.max(1, k));
    const loss = (f: (x: tf.Tensor2D, y: tf.Tensor2D) => tf.Tensor) => (x: tf.Tensor, w: tf.Tensor) =>
      tf.sum(tf.mul(f(x as tf.Tensor2D, w as tf.Tensor2D), probe));
    const got = tf.grads(loss(matMul2d))([a, b]);
    const want = tf.grads(loss((x, w) => tf.matMul(x, w)))([a, b]);
    got.forEach((g, i) => {
      expect(g.shape).toEqual(want[i].shape);
      expect(maxDiff(g, want[i])).toBeLessThan(1e-5 * Math.max(1, n, m));
    });
    tf.dispose([a, b, probe, y, yRef, ...got, ...want]);
    expect(tf.memory().numTensors).toBe(before);
  });

  it('batchMatMul3d forward and gradients match tf.matMul', () => {
    const before = tf.memory().numTensors;
    const a = tf.randomNormal([3, 4, 5], 0, 1, 'float32', 4) as tf.Tensor3D;
    const b = tf.randomNormal([3, 5, 6], 0, 1, 'float32', 5) as tf.Tensor3D;
    const probe = tf.randomNormal([3, 4, 6], 0, 1, 'float32', 6);
    const loss = (f: (x: tf.Tensor3D, y: tf.Tensor3D) => tf.Tensor) => (x: tf.Tensor, w: tf.Tensor) =>
      tf.sum(tf.mul(f(x as tf.Tensor3D, w as tf.Tensor3D), probe));
    const y = batchMatMul3d(a, b);
    const yRef = tf.matMul(a, b);
    expect(maxDiff(y, yRef)).toBeLessThan(1e-5);
    const got = tf.grads(loss(batchMatMul3d))([a, b]);
    const want = tf.grads(loss((x, w) => tf.matMul(x, w)))([a, b]);
    got.forEach((g, i) => expect(maxDiff(g, want[i])).toBeLessThan(1e-5));
    tf.dispose([a, b, probe, y, yRef, ...got, ...want]);
    expect(tf.memory().numTensors).toBe(before);
  });

  it('computes known values', () => {
    const a = tf.tensor2d([
      [1, 2],
      [3, 4],
    ]);
    const b = tf.tensor2d([
      [5, 6],
      [7, 8],
    ]);
    const y = matMul2d(a, b);
    expect(Array.from(y.dataSync())).toEqual([19, 22, 43, 50]);
    tf.dispose([a, b, y]);
  });
});
