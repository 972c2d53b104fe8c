// The training step graph exported to ONNX and run on onnxruntime: the same steps as the eager tfjs
// trainer (see train-step.test.ts for how the two sides are compared and why).
import { beforeAll, describe, expect, it } from 'vitest';
import { tf } from '../../src/tf.js';
import { ready } from '../../src/backends/index.js';
import { compileGraph, loadOnnxruntime } from '../../src/onnx/index.js';
import { StepState, stepNames, trainStepGraph } from '../../src/train-graph/step.js';
import { AdamW, clipByGlobalNorm } from '../../src/train/optimizer.js';
import { ViT } from '../../src/vit/model.js';
import { parseConfig, PRESETS } from '../../src/vit/config.js';
import { mapParams } from '../../src/vit/params.js';
import { traceViT } from '../../src/vit/trace.js';
import { relL2 } from '../helpers/rel-error.js';

const ort = await loadOnnxruntime();

beforeAll(async () => {
  await ready('cpu');
});

const CFG = parseConfig({ ...PRESETS.tiny, num_hidden_layers: 2 });
const BATCH = 8;

describe.skipIf(!ort)('the training step on onnxruntime', () => {
  it('3 steps match the eager trainer (loss, hits, parameters and moments within 1e-4 relative L2)', async () => {
    const before = tf.memory().numTensors;
    const model = ViT.create(CFG, 7);
    const params = model.parameters();
    const tree = mapParams(CFG, model.params, (v) => ({
      shape: [...v.shape],
      data: v.dataSync() as Float32Array,
    }));
    const o = { labelSmoothing: 0.1, clip: 1, weightDecay: 0.05 };
    const step = trainStepGraph(traceViT(CFG, tree), o);
    const program = await compileGraph(step.graph, { threads: 1 });
    const state = new StepState(step);
    const opt = new AdamW(params, { weightDecay: o.weightDecay });
    const nameOf = new Map([...params].map(([n, v]) => [v.name, n]));
    const lrs = [1e-3, 2e-3, 1.5e-3];
    for (const [i, lr] of lrs.entries()) {
      const x = tf.randomNormal([BATCH, 1, 28, 28], 0, 1, 'float32', 11 + i);
      const labels = Int32Array.from({ length: BATCH }, (_, k) => (k * 7 + 11 + i) % 10);
      // The eager trainer's step (trainer.ts, main-thread path).
      const eager = tf.tidy(() => {
        const ids = tf.tensor1d(labels, 'int32');
        const onehot = tf.oneHot(ids, 10);
        let hits: tf.Tensor | undefined;
        const { value, grads } = tf.variableGrads(() => {
          const logits = model.forward(x, { training: true, seed: i }).logits;
          hits = tf.keep(tf.sum(tf.cast(tf.equal(tf.argMax(logits, 1), ids), 'float32')));
          return tf.losses.softmaxCrossEntropy(onehot, logits, undefined, o.labelSmoothing) as tf.Scalar;
        }, [...params.values()]);
        const named = new Map(Object.entries(grads).map(([k, g]) => [nameOf.get(k)!, g]));
        opt.step(clipByGlobalNorm(named, o.clip).grads, lr);
        const both = tf.stack([value, hits!]).dataSync();
        hits!.dispose();
        return { loss: both[0], correct: both[1] };
      });
      const raw = await program.runRaw({
        pixel_values: { data: x.dataSync() as Float32Array, shape: x.shape },
        ...state.feeds(labels, lr),
      });
      const out = state.accept(
        Object.fromEntries(Object.entries(raw).map(([k, t]) => [k, t.data as Float32Array])),
      );
      expect(Math.abs(out.loss - eager.loss) / eager.loss, `loss of step ${i + 1}`).toBeLessThan(1e-5);
      expect(out.correct).toBe(eager.correct);
      x.dispose();
    }
    const moments = opt.exportState();
    let worst = 0;
    const d = CFG.hidden_size;
    for (const [name, v] of params) {
      for (const [key, want] of [
        [name, v.dataSync() as Float32Array],
        [stepNames.expAvg(name), moments.tensors.get(stepNames.expAvg(name))!.data],
        [stepNames.expAvgSq(name), moments.tensors.get(stepNames.expAvgSq(name))!.data],
      ] as const) {
        let got = state.values.get(key)!;
        let ref = want;
        if (name.endsWith('attn.qkv.bias')) {
          // The key bias: zero gradient in exact arithmetic, moved by rounding noise only (train-step.test.ts).
          const qv = (a: Float32Array) => Float32Array.of(...a.subarray(0, d), ...a.subarray(2 * d));
          [got, ref] = [qv(got), qv(ref)];
        }
        worst = Math.max(worst, relL2(got, ref));
        expect(relL2(got, ref), key).toBeLessThan(1e-4);
      }
    }
    console.log(
      `onnxruntime step vs eager: worst relative L2 difference after 3 steps ${worst.toExponential(2)}`,
    );
    await program.dispose();
    opt.dispose();
    model.dispose();
    expect(tf.memory().numTensors).toBe(before);
  });
});
