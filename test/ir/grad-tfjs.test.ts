// The IR's gradients of a small attention + MLP classifier against tfjs' own autodiff (`tf.grads`)
// on the same computation written with tfjs ops: both in float32, so they agree to rounding.
import { describe, expect, it } from 'vitest';
import { tf } from '../../src/tf.js';
import { evaluate, GraphBuilder, sym, type Sym } from '../../src/ir/index.js';
import { grad } from '../../src/ir/grad.js';

await tf.setBackend('cpu');

const [T, D, H, HID, C] = [3, 4, 2, 8, 3];
const SHAPES: Record<string, number[]> = {
  gamma: [D],
  beta: [D],
  wqkv: [D, 3 * D],
  bqkv: [3 * D],
  wo: [D, D],
  w1: [D, HID],
  b1: [HID],
  w2: [HID, C],
  b2: [C],
};
const NAMES = Object.keys(SHAPES);

/** The classifier on the IR: pre-norm attention with a residual, mean pooling, GELU MLP, cross-entropy. */
function irModel(g: GraphBuilder, x: Sym, onehot: Sym, p: Record<string, Sym>): Sym {
  const n = sym('N');
  const h = x.layerNorm(p.gamma, p.beta, 1e-6);
  const qkv = h.matMul(p.wqkv).add(p.bqkv);
  const heads = (i: number) =>
    qkv
      .slice(2, i * D, (i + 1) * D)
      .reshape([n, T, H, D / H])
      .transpose([0, 2, 1, 3]);
  const att = g
    .attention(heads(0), heads(1), heads(2), (D / H) ** -0.5)
    .transpose([0, 2, 1, 3])
    .reshape([n, T, D]);
  const y = x.add(att.matMul(p.wo));
  const logits = y.mean([1]).matMul(p.w1).add(p.b1).gelu().matMul(p.w2).add(p.b2);
  return onehot.mul(logits.logSoftmax(-1)).sum([1]).mean([0]).neg();
}

/** The same classifier with tfjs ops. */
function tfModel(x: tf.Tensor, onehot: tf.Tensor, p: Record<string, tf.Tensor>): tf.Scalar {
  const n = x.shape[0];
  const { mean, variance } = tf.moments(x, -1, true);
  const h = tf.add(tf.mul(tf.div(tf.sub(x, mean), tf.sqrt(tf.add(variance, 1e-6))), p.gamma), p.beta);
  const qkv = tf.add(tf.matMul(tf.reshape(h, [n * T, D]), p.wqkv), p.bqkv);
  const heads = (i: number) =>
    tf.transpose(tf.reshape(tf.slice(qkv, [0, i * D], [n * T, D]), [n, T, H, D / H]), [0, 2, 1, 3]);
  const probs = tf.softmax(tf.mul(tf.matMul(heads(0), heads(1), false, true), (D / H) ** -0.5));
  const att = tf.reshape(tf.transpose(tf.matMul(probs, heads(2)), [0, 2, 1, 3]), [n * T, D]);
  const y = tf.add(x, tf.reshape(tf.matMul(att, p.wo), [n, T, D]));
  const z = tf.add(tf.matMul(tf.mean(y, 1), p.w1), p.b1);
  const gelu = tf.mul(tf.mul(z, 0.5), tf.add(1, tf.erf(tf.mul(z, Math.SQRT1_2))));
  const logits = tf.add(tf.matMul(gelu, p.w2), p.b2);
  return tf.neg(tf.mean(tf.sum(tf.mul(onehot, tf.logSoftmax(logits)), 1))) as tf.Scalar;
}

describe('grad against tf.grads', () => {
  it('an attention + MLP classifier: every parameter and the input, symbolic batch', () => {
    const g = new GraphBuilder();
    const x = g.input('x', [sym('N'), T, D]);
    const onehot = g.input('onehot', [sym('N'), C]);
    const p = Object.fromEntries(NAMES.map((k) => [k, g.input(k, SHAPES[k])]));
    const loss = irModel(g, x, onehot, p);
    const grads = grad(loss, [...NAMES.map((k) => p[k]), x]);
    const graph = g.build({
      loss,
      ...Object.fromEntries([...NAMES, 'x'].map((k, i) => [`d${k}`, grads[i]])),
    });

    const before = tf.memory().numTensors;
    const batch = 5;
    const feed: Record<string, tf.Tensor> = {
      x: tf.randomNormal([batch, T, D], 0, 1, 'float32', 1),
      onehot: tf.tidy(() => tf.oneHot(tf.tensor1d([0, 2, 1, 2, 0], 'int32'), C).toFloat()),
    };
    NAMES.forEach((k, i) => (feed[k] = tf.randomNormal(SHAPES[k], 0, 0.5, 'float32', 10 + i)));
    const out = evaluate(graph, feed);
    const f = (...ts: tf.Tensor[]) =>
      tfModel(ts[NAMES.length], feed.onehot, Object.fromEntries(NAMES.map((k, i) => [k, ts[i]])));
    const ref = tf.tidy(() => ({
      loss: f(...NAMES.map((k) => feed[k]), feed.x),
      grads: tf.grads(f)([...NAMES.map((k) => feed[k]), feed.x]),
    }));
    const rel = (a: tf.Tensor, b: tf.Tensor) =>
      tf.tidy(() => tf.max(tf.abs(tf.sub(a, b))).dataSync()[0] / tf.max(tf.abs(b)).dataSync()[0]);
    expect(rel(out.loss, ref.loss)).toBeLessThan(1e-6);
    [...NAMES, 'x'].forEach((k, i) => {
      expect(out[`d${k}`].shape, k).toEqual(ref.grads[i].shape);
      expect(rel(out[`d${k}`], ref.grads[i]), k).toBeLessThan(1e-5);
    });
    tf.dispose([...Object.values(out), ref.loss, ...ref.grads, ...Object.values(feed)]);
    expect(tf.memory().numTensors).toBe(before);
  });
});
