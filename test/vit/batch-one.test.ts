import { beforeAll, describe, expect, it } from 'vitest';
import { ready, tf } from '../../src/index.js';
import { ViT } from '../../src/vit/model.js';
import { PRESETS } from '../../src/vit/config.js';

beforeAll(async () => {
  await ready('wasm');
});

describe('a one-image batch', () => {
  // Regression: a custom gradient returned the upstream gradient tensor itself, which tfjs then
  // disposed; on wasm the backward pass of a batch of one read freed memory and aborted.
  it('trains on wasm: finite gradients for every parameter, no leaks', () => {
    const model = ViT.create(
      { ...PRESETS.tiny, hidden_size: 24, num_attention_heads: 2, intermediate_size: 48 },
      1,
    );
    const x = tf.randomNormal([1, 1, 28, 28], 0, 1, 'float32', 4);
    const before = tf.memory().numTensors;
    const { value, grads } = tf.variableGrads(
      () => tf.sum(model.forward(x, { training: true, seed: 1 }).logits) as tf.Scalar,
      [...model.parameters().values()],
    );
    expect(Object.keys(grads)).toHaveLength(model.parameters().size);
    for (const g of Object.values(grads)) {
      expect(Number.isFinite(tf.tidy(() => tf.sum(tf.abs(g)).dataSync()[0]))).toBe(true);
    }
    tf.dispose([value, ...Object.values(grads)]);
    expect(tf.memory().numTensors).toBe(before);
    x.dispose();
    model.dispose();
  });
});
