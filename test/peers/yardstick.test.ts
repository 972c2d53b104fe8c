// PyTorch's own forward + backward graph (test/peers/<config>/pytorch-train-step.onnx, the training
// bench's yardstick) as a reference for einvit's training loss and autodiff: with the same parameters
// and batch, einvit's step graph (trainStepGraph, on onnxruntime) and its eager tfjs gradients must give
// PyTorch's loss and every parameter's gradient.
import { beforeAll, describe, expect, it } from 'vitest';
import { tf } from '../../src/tf.js';
import { ready } from '../../src/backends/index.js';
import { compileGraph, loadOnnxruntime } from '../../src/onnx/index.js';
import { StepState, trainStepGraph } from '../../src/train-graph/step.js';
import { batchGradients } from '../../src/train/parallel.js';
import { Rng } from '../../src/train/random.js';
import { ViT } from '../../src/vit/model.js';
import { buildParams, expectedParameters } from '../../src/vit/params.js';
import type { TensorData } from '../../src/vit/safetensors.js';
import { traceViT } from '../../src/vit/trace.js';
import {
  openYardstick,
  pytorchName,
  YARDSTICK_CONFIGS,
  type YardstickConfig,
} from '../../bench/yardstick.js';
import { relError } from '../helpers/rel-error.js';

const ort = await loadOnnxruntime();

beforeAll(async () => {
  await ready('cpu');
});

/** Seeded parameters away from their init (norm scales near 1, nonzero biases), timm names. */
function randomParams(config: YardstickConfig, seed: number): Map<string, TensorData> {
  const rng = new Rng(seed);
  const out = new Map<string, TensorData>();
  for (const [name, shape] of expectedParameters(YARDSTICK_CONFIGS[config].cfg)) {
    const n = shape.reduce((a, b) => a * b, 1);
    const norm = /norm\d?\.weight$/.test(name);
    const data = Float32Array.from({ length: n }, () => (norm ? 1 : 0) + (rng.nextFloat() - 0.5) * 0.2);
    out.set(name, { shape, data });
  }
  return out;
}

function batch(config: YardstickConfig, seed: number): { pixels: Float32Array; labels: Int32Array } {
  const { cfg, batch: n } = YARDSTICK_CONFIGS[config];
  const rng = new Rng(seed);
  const size = n * cfg.num_channels * cfg.image_size * cfg.image_size;
  return {
    pixels: Float32Array.from({ length: size }, () => rng.nextFloat() * 2 - 1),
    labels: Int32Array.from({ length: n }, () => rng.nextInt(cfg.num_labels)),
  };
}

describe('pytorchName', () => {
  it("maps einvit's (timm) names to the yardstick's inputs", () => {
    expect(pytorchName('cls_token')).toBe('p_cls');
    expect(pytorchName('pos_embed')).toBe('p_pos');
    expect(pytorchName('patch_embed.proj.weight')).toBe('p_patch.lin.weight');
    expect(pytorchName('blocks.3.norm1.bias')).toBe('p_blocks.3.n1.bias');
    expect(pytorchName('blocks.0.attn.qkv.weight')).toBe('p_blocks.0.qkv.weight');
    expect(pytorchName('blocks.1.attn.proj.bias')).toBe('p_blocks.1.proj.bias');
    expect(pytorchName('blocks.2.mlp.fc2.weight')).toBe('p_blocks.2.fc2.weight');
    expect(pytorchName('norm.weight')).toBe('p_norm.weight');
    expect(pytorchName('head.bias')).toBe('p_head.bias');
  });
});

describe.skipIf(!ort)("PyTorch's training graph as the reference for einvit's loss and gradients", () => {
  for (const config of ['mnist-tiny', 'cifar-tiny'] as const) {
    it(`${config}: the step graph's loss and every gradient match PyTorch's (1e-5 loss, 1e-4 gradients)`, async () => {
      const { cfg } = YARDSTICK_CONFIGS[config];
      const params = randomParams(config, 5);
      const { pixels, labels } = batch(config, 6);
      const yardstick = await openYardstick(ort!, config, params, pixels, labels, { threads: 1 });
      const ref = await yardstick.run();
      await yardstick.release();
      expect(ref.grads.size).toBe(params.size);

      const tree = buildParams(cfg, (name) => params.get(name)!);
      const step = trainStepGraph(traceViT(cfg, tree), { outputGrads: true });
      const program = await compileGraph(step.graph, { threads: 1 });
      const state = new StepState(step);
      const raw = await program.runRaw({
        pixel_values: {
          data: pixels,
          shape: [labels.length, cfg.num_channels, cfg.image_size, cfg.image_size],
        },
        ...state.feeds(labels, 1e-3),
      });
      await program.dispose();
      const loss = (raw.loss.data as Float32Array)[0];
      expect(Math.abs(loss - ref.loss) / ref.loss).toBeLessThan(1e-5);
      for (const [name, g] of ref.grads) {
        const ours = raw[`grad.${name}`].data as Float32Array;
        expect(relError(ours, g), name).toBeLessThan(1e-4);
      }
    });
  }

  it("mnist-tiny: the eager tfjs trainer's loss and gradients match PyTorch's", async () => {
    const config = 'mnist-tiny';
    const { cfg } = YARDSTICK_CONFIGS[config];
    const params = randomParams(config, 8);
    const { pixels, labels } = batch(config, 9);
    const yardstick = await openYardstick(ort!, config, params, pixels, labels, { threads: 1 });
    const ref = await yardstick.run();
    await yardstick.release();

    const before = tf.memory().numTensors;
    const model = ViT.fromParameters(cfg, params);
    const r = batchGradients(
      model,
      { images: pixels, labels, size: labels.length },
      { labelSmoothing: 0.1, seed: 0 },
    );
    expect(Math.abs(r.loss - ref.loss) / ref.loss).toBeLessThan(1e-5);
    for (const [name, g] of ref.grads) {
      expect(relError(r.grads.get(name)!.dataSync(), g), name).toBeLessThan(1e-4);
    }
    tf.dispose([...r.grads.values()]);
    model.dispose();
    expect(tf.memory().numTensors).toBe(before);
  });
});
