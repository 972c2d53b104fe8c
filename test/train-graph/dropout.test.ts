// Dropout in the compiled training step: masks as graph inputs, drawn on the host per step.
import { beforeAll, describe, expect, it } from 'vitest';
import { ready, tf } from '../../src/index.js';
import { evaluate } from '../../src/ir/evaluate.js';
import { dropoutMasks, traceTrainingViT } from '../../src/train-graph/dropout.js';
import { PRESETS, type ViTConfig } from '../../src/vit/config.js';
import { ViT } from '../../src/vit/model.js';
import { traceViT } from '../../src/vit/trace.js';
import { mapParams } from '../../src/vit/params.js';

const treeOf = (model: ViT) =>
  mapParams(model.config, model.params, (v) => ({ shape: [...v.shape], data: v.dataSync() as Float32Array }));

beforeAll(async () => {
  await ready('cpu');
});

const cfg: ViTConfig = {
  ...PRESETS.tiny,
  hidden_size: 16,
  num_hidden_layers: 2,
  num_attention_heads: 2,
  intermediate_size: 32,
  hidden_dropout_prob: 0.1,
  attention_probs_dropout_prob: 0.2,
};

describe('traceTrainingViT', () => {
  it('has a mask input at every dropout site; all-keep masks give the inference logits', () => {
    const model = ViT.create(cfg, 1);
    const before = tf.memory().numTensors;
    const { graph, sites } = traceTrainingViT(cfg, treeOf(model));
    // Position embedding, then per block: attention probabilities, projection, two MLP layers.
    expect(sites.map((s) => s.rate)).toEqual([0.1, 0.2, 0.1, 0.1, 0.1, 0.2, 0.1, 0.1, 0.1]);
    expect(sites[1].shape.slice(1)).toEqual([2, 17, 17]);
    const pixels = tf.randomNormal([3, 1, 28, 28], 0, 1, 'float32', 5);
    const ones = Object.fromEntries(
      sites.map((s) => [s.name, tf.ones(s.shape.map((d) => (typeof d === 'number' ? d : 3)))]),
    );
    const plain = traceViT(cfg, treeOf(model));
    const a = evaluate(graph, { pixel_values: pixels, ...ones }).logits;
    const b = evaluate(plain, { pixel_values: pixels }).logits;
    const eager = tf.tidy(() => model.forward(pixels).logits);
    const maxDiff = (x: tf.Tensor, y: tf.Tensor) => tf.tidy(() => tf.max(tf.abs(tf.sub(x, y))).dataSync()[0]);
    expect(maxDiff(a, b)).toBeLessThan(1e-5);
    expect(maxDiff(a, eager)).toBeLessThan(1e-5);
    // A real mask changes them.
    const masks = dropoutMasks(sites, 3, 9);
    const feeds = Object.fromEntries(Object.entries(masks).map(([k, m]) => [k, tf.tensor(m.data, m.shape)]));
    const c = evaluate(graph, { pixel_values: pixels, ...feeds }).logits;
    expect(maxDiff(c, b)).toBeGreaterThan(1e-3);
    tf.dispose([pixels, a, b, c, eager, ...Object.values(ones), ...Object.values(feeds)]);
    expect(tf.memory().numTensors).toBe(before);
    model.dispose();
  });

  it('with zero rates has no sites', () => {
    const model = ViT.create({ ...cfg, hidden_dropout_prob: 0, attention_probs_dropout_prob: 0 }, 1);
    expect(traceTrainingViT(model.config, treeOf(model)).sites).toEqual([]);
    model.dispose();
  });
});

describe('dropoutMasks', () => {
  it('inverted-dropout masks at the rate, batch axis bound, the same for the same seed', () => {
    const sites = [{ name: 'dropout.0', shape: [{ sym: 'N', coeff: 1 }, 50, 40], rate: 0.25 }];
    const a = dropoutMasks(sites, 64, 7)['dropout.0'];
    expect(a.shape).toEqual([64, 50, 40]);
    const values = new Set(a.data);
    expect([...values].sort()).toEqual([0, Math.fround(1 / 0.75)]);
    const zeros = a.data.filter((x) => x === 0).length / a.data.length;
    expect(Math.abs(zeros - 0.25)).toBeLessThan(0.01); // 128,000 draws: sd 0.0012
    expect(dropoutMasks(sites, 64, 7)['dropout.0'].data).toEqual(a.data);
    expect(dropoutMasks(sites, 64, 8)['dropout.0'].data).not.toEqual(a.data);
  });
});
