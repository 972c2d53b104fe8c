// ViT.forward returns only the tensors asked for, so disposing what you use frees everything.
import { beforeAll, describe, expect, it } from 'vitest';
import { tf } from '../../src/tf.js';
import { ready } from '../../src/backends/index.js';
import { ViT } from '../../src/vit/model.js';
import { parseConfig } from '../../src/vit/config.js';

const SMALL = parseConfig({
  image_size: 16,
  patch_size: 4,
  num_channels: 3,
  hidden_size: 16,
  num_hidden_layers: 2,
  num_attention_heads: 2,
  intermediate_size: 32,
  num_labels: 5,
});

beforeAll(async () => {
  await ready('cpu');
});

describe('ViT.forward outputs', () => {
  it('`const { logits } = model.forward(x); logits.dispose()` leaks nothing', () => {
    const model = ViT.create(SMALL, 1);
    const x = tf.randomUniform([2, 3, 16, 16], -1, 1, 'float32', 7);
    const before = tf.memory().numTensors;
    const out = model.forward(x);
    expect(Object.keys(out)).toEqual(['logits']);
    out.logits.dispose();
    expect(tf.memory().numTensors).toBe(before);
    x.dispose();
    model.dispose();
  });

  it('returns preLogits and lastHiddenState when asked, equal to what logits are computed from', () => {
    const model = ViT.create(SMALL, 2);
    const x = tf.randomUniform([2, 3, 16, 16], -1, 1, 'float32', 8);
    const before = tf.memory().numTensors;
    const plain = model.forward(x);
    const full = model.forward(x, { outputPreLogits: true, outputLastHiddenState: true });
    expect(full.preLogits!.shape).toEqual([2, 16]);
    expect(full.lastHiddenState!.shape).toEqual([2, 17, 16]);
    // Same logits either way, and the class token row of lastHiddenState is what the head pools
    // (no fc_norm in this config): logits = preLogits W^T + b.
    expect(Array.from(full.logits.dataSync())).toEqual(Array.from(plain.logits.dataSync()));
    const cls = tf.tidy(() => tf.squeeze(tf.slice(full.lastHiddenState!, [0, 0, 0], [-1, 1, -1]), [1]));
    expect(Array.from(cls.dataSync())).toEqual(Array.from(full.preLogits!.dataSync()));
    const p = model.parameters();
    const manual = tf.tidy(() =>
      tf.add(tf.matMul(full.preLogits!, p.get('head.weight')!, false, true), p.get('head.bias')!),
    );
    const diff = tf.tidy(() => tf.max(tf.abs(tf.sub(manual, full.logits))).dataSync()[0]);
    expect(diff).toBeLessThan(1e-6);
    tf.dispose([plain.logits, full.logits, full.preLogits, full.lastHiddenState, cls, manual]);
    expect(tf.memory().numTensors).toBe(before);
    x.dispose();
    model.dispose();
  });
});
