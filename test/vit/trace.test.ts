// The traced ViT: the network definition recorded as graph IR reproduces the reference tensors when the
// graph is run by the IR's reference interpreter, for dynamic and fixed batches.
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { beforeAll, describe, expect, it } from 'vitest';
import { tf } from '../../src/tf.js';
import { ready } from '../../src/backends/index.js';
import { CompileError } from '../../src/errors.js';
import { evaluate, graphParams } from '../../src/ir/index.js';
import { ViT } from '../../src/vit/model.js';
import { parseConfig } from '../../src/vit/config.js';
import { openSafetensors } from '../../src/vit/safetensors.js';
import { buildParams, mapParams } from '../../src/vit/params.js';
import { traceViT } from '../../src/vit/trace.js';

const REF = fileURLToPath(new URL('../vit-reference/', import.meta.url));

/** The model's parameters as data, in the tree. */
function dataTree(model: ViT) {
  return mapParams(model.config, model.params, (v) => ({
    shape: [...v.shape],
    data: v.dataSync() as Float32Array,
  }));
}

function relError(got: tf.Tensor, ref: tf.Tensor): number {
  expect(got.shape).toEqual(ref.shape);
  return tf.tidy(() => tf.max(tf.abs(tf.sub(got, ref))).dataSync()[0] / tf.max(tf.abs(ref)).dataSync()[0]);
}

beforeAll(async () => {
  await ready('cpu');
});

describe('traceViT', () => {
  it.each(['cifar-tiny', 'vit-ti-16'])('%s: every reference tensor within 1e-5', async (folder) => {
    const model = await ViT.fromPretrained(join(REF, folder));
    const graph = traceViT(model.config, dataTree(model), {
      outputPreLogits: true,
      outputLastHiddenState: true,
      outputHiddenStates: true,
      outputAttentions: true,
    });
    expect(graphParams(graph).map((n) => n.op.name)).toEqual([...model.parameters().keys()]);
    const io = openSafetensors(join(REF, folder, 'io.safetensors'));
    const pixels = io.readTensor('pixel_values');
    const before = tf.memory().numTensors;
    const out = evaluate(graph, { pixel_values: pixels });
    let checked = 0;
    for (const [name, t] of Object.entries(out)) {
      const ref = io.readTensor(name);
      expect(relError(t, ref), name).toBeLessThan(1e-5);
      ref.dispose();
      checked++;
    }
    expect(checked).toBe(3 + 2 * model.config.num_hidden_layers + 1);
    tf.dispose(Object.values(out));
    expect(tf.memory().numTensors).toBe(before);
    pixels.dispose();
    io.close();
    model.dispose();
  });

  it('matches the eager model for mean pooling, fc_norm, LayerScale and sin-cos positions', () => {
    const cfg = parseConfig({
      image_size: 16,
      patch_size: 4,
      num_channels: 3,
      hidden_size: 16,
      num_hidden_layers: 2,
      num_attention_heads: 2,
      intermediate_size: 32,
      num_labels: 5,
      pooling: 'mean',
      fc_norm: true,
      final_norm: false,
      layer_scale: true,
      position_embedding: 'sinusoidal',
      hidden_act: 'gelu_pytorch_tanh',
      naming: 'timm',
    });
    const model = ViT.create(cfg, 4);
    const x = tf.randomUniform([3, 3, 16, 16], -1, 1, 'float32', 2);
    const eager = model.forward(x);
    const fixed = traceViT(cfg, dataTree(model), { batch: 3 });
    const { logits } = evaluate(fixed, { pixel_values: x });
    expect(relError(logits, eager.logits)).toBeLessThan(1e-5);
    // A fixed-batch graph refuses another batch, naming both shapes.
    const two = tf.zeros([2, 3, 16, 16]);
    expect(() => evaluate(fixed, { pixel_values: two })).toThrow(/\[2, 3, 16, 16\].*\[3, 3, 16, 16\]/);
    tf.dispose([x, two, logits, eager.logits]);
    model.dispose();
  });

  it('rejects a bad batch option', () => {
    const cfg = parseConfig({ image_size: 8, patch_size: 4, hidden_size: 8, num_attention_heads: 2 });
    const params = buildParams(cfg, (_n, shape) => ({
      shape,
      data: new Float32Array(shape.reduce((a, b) => a * b, 1)),
    }));
    expect(() => traceViT(cfg, params, { batch: 0 })).toThrow(CompileError);
  });
});
