// ViT pieces beyond the reference vectors: both patch embeddings agree, seeded init, predict, input
// checks, dropout, gradients against finite differences, image-size changes, position tables and
// attention maps.
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { beforeAll, describe, expect, it } from 'vitest';
import { tf } from '../../src/tf.js';
import { ready } from '../../src/backends/index.js';
import { CheckpointError, EinopsError, UsageError } from '../../src/errors.js';
import { ViT } from '../../src/vit/model.js';
import { parseConfig, type ViTConfig } from '../../src/vit/config.js';
import { activation, layerNorm, patchEmbed, patchEmbedConv, patchify } from '../../src/vit/layers.js';
import { rearrange, unpack } from '../../src/ops.js';
import { interpolationMatrix, resamplePosEmbed, sincosPosEmbed2d } from '../../src/vit/posembed.js';
import { attentionRollout, classTokenAttention, rolloutMatrix } from '../../src/vit/attention.js';

const REF = fileURLToPath(new URL('../vit-reference/', import.meta.url));

const SMALL: ViTConfig = parseConfig({
  image_size: 16,
  patch_size: 4,
  num_channels: 3,
  hidden_size: 16,
  num_hidden_layers: 2,
  num_attention_heads: 2,
  intermediate_size: 32,
  num_labels: 5,
  layer_norm_eps: 1e-6,
  naming: 'timm',
});

function maxAbsDiff(a: tf.Tensor, b: tf.Tensor): number {
  return tf.tidy(() => tf.max(tf.abs(tf.sub(a, b))).dataSync()[0]);
}

function pixels(n: number, c: number, h: number, w: number, seed: number): tf.Tensor {
  return tf.randomUniform([n, c, h, w], -1, 1, 'float32', seed);
}

beforeAll(async () => {
  await ready('wasm');
});

describe('patch embedding', () => {
  it('pattern + matmul equals tf.conv2d within 1e-5', () => {
    const x = pixels(2, 3, 32, 48, 1);
    const w = tf.randomNormal([24, 3, 8, 8], 0, 0.1, 'float32', 2);
    const b = tf.randomNormal([24], 0, 0.1, 'float32', 3);
    const a = patchEmbed(x, w, b, 8);
    const c = patchEmbedConv(x, w, b, 8);
    expect(a.shape).toEqual([2, 24, 24]);
    expect(c.shape).toEqual([2, 24, 24]);
    const scale = tf.tidy(() => tf.max(tf.abs(c)).dataSync()[0]);
    expect(maxAbsDiff(a, c) / scale).toBeLessThanOrEqual(1e-5);
    tf.dispose([x, w, b, a, c]);
  });

  it('both give the same model outputs on a reference checkpoint', async () => {
    const model = await ViT.fromPretrained(join(REF, 'vit-s-16-hf'));
    const x = pixels(1, 3, 224, 224, 4);
    const a = model.forward(x).logits;
    model.patchEmbedding = 'conv';
    const c = model.forward(x).logits;
    const scale = tf.tidy(() => tf.max(tf.abs(c)).dataSync()[0]);
    expect(maxAbsDiff(a, c) / scale).toBeLessThanOrEqual(1e-5);
    tf.dispose([x, a, c]);
    model.dispose();
  });
});

describe('layers', () => {
  it('patchify equals the one-step pattern, and the qkv split equals the 5-axis pattern', () => {
    const x = pixels(2, 3, 12, 20, 7);
    const a = patchify(x, 4);
    const b = rearrange(x, 'b c (h p1) (w p2) -> b (h w) (c p1 p2)', { p1: 4, p2: 4 });
    expect(a.shape).toEqual([2, 15, 48]);
    expect(maxAbsDiff(a, b)).toBe(0);
    const qkv = tf.randomNormal([2, 5, 3 * 12], 0, 1, 'float32', 8);
    const split = unpack(qkv, [[12], [12], [12]], 'b n *').map((t) =>
      rearrange(t, 'b n (h d) -> b h n d', { h: 3 }),
    );
    const oneStep = unpack(
      rearrange(qkv, 'b n (qkv h d) -> qkv b h n d', { qkv: 3, h: 3 }),
      [[], [], []],
      '* b h n d',
    );
    split.forEach((t, i) => expect(maxAbsDiff(t, oneStep[i])).toBe(0));
    tf.dispose([x, a, b, qkv, ...split, ...oneStep]);
  });

  it('GELU exact and tanh forms', () => {
    const x = tf.tensor1d([-2, -0.5, 1, 3]);
    const exact = activation(x, 'gelu').dataSync();
    const tanh = activation(x, 'gelu_pytorch_tanh').dataSync();
    [-0.0455002639, -0.1542687694, 0.8413447461, 2.9959503059].forEach((v, i) =>
      expect(exact[i]).toBeCloseTo(v, 6),
    );
    [-0.0454023059, -0.1542859902, 0.8411919906, 2.9963626079].forEach((v, i) =>
      expect(tanh[i]).toBeCloseTo(v, 6),
    );
    expect(() => activation(x, 'swish')).toThrow(UsageError);
    x.dispose();
  });

  it('LayerNorm uses the biased variance and eps inside the root', () => {
    const x = tf.tensor2d([[1, 2, 3, 6]]);
    const y = layerNorm(x, tf.tensor1d([1, 2, 1, 1]), tf.tensor1d([0, 0, 0, 1]), 0.5).dataSync();
    // mean 3, biased variance 3.5, scale 1/sqrt(4)
    expect(Array.from(y)).toEqual([-1, -1, 0, 2.5]);
    x.dispose();
  });
});

describe('ViT.create', () => {
  it('is seeded and initialised like timm', () => {
    const a = ViT.create(SMALL, 7);
    const b = ViT.create(SMALL, 7);
    const c = ViT.create(SMALL, 8);
    const pa = a.parameters();
    expect([...pa.keys()]).toContain('blocks.1.attn.qkv.weight');
    for (const [name, v] of pa) {
      expect(Array.from(b.parameters().get(name)!.dataSync()), name).toEqual(Array.from(v.dataSync()));
      const data = v.dataSync();
      if (name.endsWith('.bias'))
        expect(
          data.every((x) => x === 0),
          name,
        ).toBe(true);
      else if (/norm\d?\.weight$/.test(name))
        expect(
          data.every((x) => x === 1),
          name,
        ).toBe(true);
    }
    expect(maxAbsDiff(pa.get('head.weight')!, c.parameters().get('head.weight')!)).toBeGreaterThan(0);
    const big = ViT.create({ ...SMALL, hidden_size: 64, intermediate_size: 256, num_hidden_layers: 1 }, 1);
    const w = big.parameters().get('blocks.0.mlp.fc1.weight')!;
    const { mean, variance } = tf.moments(w);
    expect(Math.abs(mean.dataSync()[0])).toBeLessThan(0.002);
    expect(Math.sqrt(variance.dataSync()[0])).toBeCloseTo(0.02, 3);
    tf.dispose([mean, variance]);
    [a, b, c, big].forEach((m) => m.dispose());
  });

  it('runs forward with the documented shapes and no leaks', () => {
    const model = ViT.create(SMALL, 1);
    const x = pixels(3, 3, 16, 16, 2);
    const before = tf.memory().numTensors;
    const out = model.forward(x, {
      outputHiddenStates: true,
      outputAttentions: true,
      outputPreLogits: true,
      outputLastHiddenState: true,
    });
    expect(out.logits.shape).toEqual([3, 5]);
    expect(out.preLogits!.shape).toEqual([3, 16]);
    expect(out.lastHiddenState!.shape).toEqual([3, 17, 16]);
    expect(out.hiddenStates!.map((h) => h.shape)).toEqual([
      [3, 17, 16],
      [3, 17, 16],
      [3, 17, 16],
    ]);
    expect(out.attentions!.map((a) => a.shape)).toEqual([
      [3, 2, 17, 17],
      [3, 2, 17, 17],
    ]);
    // attention rows are probabilities
    const sums = tf.tidy(() => tf.sum(out.attentions![0], -1).dataSync());
    sums.forEach((s) => expect(s).toBeCloseTo(1, 5));
    tf.dispose([out.logits, out.preLogits, out.lastHiddenState, ...out.hiddenStates!, ...out.attentions!]);
    expect(tf.memory().numTensors).toBe(before);
    x.dispose();
    model.dispose();
  });

  it('mean pooling with fc_norm and LayerScale', () => {
    const cfg = parseConfig({
      ...SMALL,
      pooling: 'mean',
      fc_norm: true,
      final_norm: false,
      layer_scale: true,
    });
    const model = ViT.create(cfg, 3);
    expect(model.parameters().has('blocks.0.ls1.gamma')).toBe(true);
    expect(model.parameters().has('fc_norm.weight')).toBe(true);
    expect(model.parameters().has('norm.weight')).toBe(false);
    const x = pixels(2, 3, 16, 16, 5);
    const out = model.forward(x, { outputPreLogits: true, outputLastHiddenState: true });
    // pre_logits = fc_norm(mean of the patch tokens of the last block's output)
    const expected = tf.tidy(() => {
      const patches = tf.slice(out.lastHiddenState!, [0, 1, 0], [-1, -1, -1]);
      return layerNorm(
        tf.mean(patches, 1),
        model.parameters().get('fc_norm.weight')!,
        model.parameters().get('fc_norm.bias')!,
        cfg.layer_norm_eps,
      );
    });
    expect(maxAbsDiff(out.preLogits!, expected)).toBeLessThan(1e-5);
    tf.dispose([x, out.logits, out.preLogits, out.lastHiddenState, expected]);
    model.dispose();
  });
});

describe('ViT input checks', () => {
  it('rejects bad pixels with EinopsError', () => {
    const model = ViT.create(SMALL, 1);
    const bad = [
      tf.zeros([3, 16, 16]),
      tf.zeros([1, 1, 16, 16]),
      tf.zeros([1, 3, 18, 16]),
      tf.zeros([1, 3, 20, 20]),
    ];
    for (const x of bad) expect(() => model.forward(x)).toThrow(EinopsError);
    expect(() => model.forward(bad[3])).toThrow(/interpolatePosEncoding/);
    const out = model.forward(bad[3], {
      interpolatePosEncoding: true,
      outputHiddenStates: true,
      outputLastHiddenState: true,
    });
    expect(out.lastHiddenState!.shape).toEqual([1, 26, 16]);
    tf.dispose([...bad, out.logits, out.preLogits, out.lastHiddenState, ...out.hiddenStates!]);
    model.dispose();
  });
});

describe('predict', () => {
  it('returns softmax probabilities and the top classes with labels', async () => {
    const model = await ViT.fromPretrained(join(REF, 'cifar-tiny'));
    const x = pixels(2, 3, 32, 32, 9);
    const { probs, top } = model.predict(x, 3);
    const p = probs.arraySync() as number[][];
    for (let r = 0; r < 2; r++) {
      expect(p[r].reduce((a, b) => a + b, 0)).toBeCloseTo(1, 5);
      expect(top[r]).toHaveLength(3);
      const order = [...p[r].keys()].sort((i, j) => p[r][j] - p[r][i]).slice(0, 3);
      expect(top[r].map((t) => t.index)).toEqual(order);
      top[r].forEach((t) => {
        expect(t.prob).toBeCloseTo(p[r][t.index], 6);
        expect(t.label).toBe(`LABEL_${t.index}`);
      });
    }
    tf.dispose([x, probs]);
    model.dispose();
  });
});

describe('errors', () => {
  it('fromPretrained names a missing folder; predict needs a head', async () => {
    await expect(ViT.fromPretrained(join(REF, 'no-such-model'))).rejects.toThrow(
      /no-such-model.*config\.json|config\.json/,
    );
    await expect(ViT.fromPretrained(join(REF, 'no-such-model'))).rejects.toBeInstanceOf(CheckpointError);
    const model = ViT.create({ ...SMALL, num_labels: 0 }, 1);
    const x = pixels(1, 3, 16, 16, 1);
    expect(() => model.predict(x)).toThrow(UsageError);
    const out = model.forward(x);
    expect(out.logits.shape).toEqual([1, 16]);
    tf.dispose([x, out.logits, out.preLogits, out.lastHiddenState]);
    model.dispose();
  });
});

describe('training', () => {
  it('dropout is seeded, and off unless training', () => {
    const cfg = { ...SMALL, hidden_dropout_prob: 0.2, attention_probs_dropout_prob: 0.2 };
    const model = ViT.create(cfg, 2);
    const x = pixels(2, 3, 16, 16, 3);
    const inf = model.forward(x).logits;
    const inf2 = model.forward(x, { seed: 5 }).logits;
    const t1 = model.forward(x, { training: true, seed: 5 }).logits;
    const t2 = model.forward(x, { training: true, seed: 5 }).logits;
    const t3 = model.forward(x, { training: true, seed: 6 }).logits;
    expect(maxAbsDiff(inf, inf2)).toBe(0);
    expect(maxAbsDiff(t1, t2)).toBe(0);
    expect(maxAbsDiff(t1, t3)).toBeGreaterThan(1e-4);
    expect(maxAbsDiff(t1, inf)).toBeGreaterThan(1e-4);
    tf.dispose([x, inf, inf2, t1, t2, t3]);
    model.dispose();
  });

  it('gradients match finite differences along a random direction', () => {
    const model = ViT.create({ ...SMALL, layer_scale: false }, 4);
    const x = pixels(2, 3, 16, 16, 6);
    const labels = tf.oneHot(tf.tensor1d([1, 4], 'int32'), 5);
    const vars = [...model.parameters().values()];
    const loss = () =>
      tf.tidy(() => tf.losses.softmaxCrossEntropy(labels, tf.mul(model.forward(x).logits, 50)) as tf.Scalar);
    const { grads } = tf.variableGrads(loss, vars);
    const dirs = vars.map((v, i) => tf.randomNormal(v.shape, 0, 1, 'float32', 100 + i));
    const analytic = tf.tidy(
      () => tf.addN(vars.map((v, i) => tf.sum(tf.mul(grads[v.name], dirs[i])))).dataSync()[0],
    );
    const eps = 1e-3;
    const originals = vars.map((v) => tf.clone(v));
    const shift = (sign: number) =>
      vars.forEach((v, i) => v.assign(tf.tidy(() => tf.add(originals[i], tf.mul(dirs[i], sign * eps)))));
    shift(1);
    const up = loss();
    shift(-1);
    const down = loss();
    vars.forEach((v, i) => v.assign(originals[i]));
    const numeric = (up.dataSync()[0] - down.dataSync()[0]) / (2 * eps);
    expect(Math.abs(numeric - analytic) / Math.abs(analytic)).toBeLessThan(2e-2);
    tf.dispose([x, labels, up, down, ...dirs, ...originals, ...Object.values(grads)]);
    model.dispose();
  });
});

describe('fromPretrained options', () => {
  it('imageSize resamples the position table and keeps the class row', async () => {
    const base = await ViT.fromPretrained(join(REF, 'cifar-tiny'));
    const big = await ViT.fromPretrained(join(REF, 'cifar-tiny'), { imageSize: 48 });
    expect(big.config.image_size).toBe(48);
    const pe = big.parameters().get('pos_embed')!;
    expect(pe.shape).toEqual([1, 145, 48]);
    const row0 = (t: tf.Tensor) => Array.from(t.dataSync().slice(0, 48));
    expect(row0(pe)).toEqual(row0(base.parameters().get('pos_embed')!));
    const x = pixels(1, 3, 48, 48, 1);
    const out = big.forward(x);
    expect(out.logits.shape).toEqual([1, 10]);
    tf.dispose([x, out.logits, out.preLogits, out.lastHiddenState]);
    base.dispose();
    big.dispose();
  });

  it('numLabels starts a fresh head', async () => {
    const model = await ViT.fromPretrained(join(REF, 'vit-ti-16'), { numLabels: 7 });
    expect(model.parameters().get('head.weight')!.shape).toEqual([7, 192]);
    expect(model.config.num_labels).toBe(7);
    model.dispose();
  });
});

describe('position embeddings', () => {
  it('bilinear matrix equals tf.image.resizeBilinear with half-pixel centres', () => {
    const grid = tf.randomNormal([1, 5, 7, 3], 0, 1, 'float32', 1) as tf.Tensor4D;
    const want = tf.image.resizeBilinear(grid, [9, 4], false, true);
    const mh = tf.tensor2d(interpolationMatrix(5, 9, 'bilinear'));
    const mw = tf.tensor2d(interpolationMatrix(7, 4, 'bilinear'));
    const got = tf.tidy(() => {
      const rows = tf.matMul(mh, tf.reshape(grid, [5, 21]));
      const t = tf.transpose(tf.reshape(rows, [9, 7, 3]), [1, 0, 2]);
      return tf.transpose(tf.reshape(tf.matMul(mw, tf.reshape(t, [7, 27])), [4, 9, 3]), [1, 0, 2]);
    });
    expect(maxAbsDiff(got, tf.reshape(want, [9, 4, 3]))).toBeLessThan(1e-5);
    tf.dispose([grid, want, mh, mw, got]);
  });

  it('interpolation matrices: known weights, identity, rows summing to one', () => {
    expect(interpolationMatrix(2, 4, 'bilinear')).toEqual([
      [1, 0],
      [0.75, 0.25],
      [0.25, 0.75],
      [0, 1],
    ]);
    // antialiased triangle filter halving: PIL weights 1/8, 3/8, 3/8, 1/8 (cut and renormalised at the edges)
    const aa = interpolationMatrix(8, 4, 'bilinear', true);
    expect(aa[1].map((v) => +v.toFixed(6))).toEqual([0, 0.125, 0.375, 0.375, 0.125, 0, 0, 0]);
    expect(aa[0].map((v) => +v.toFixed(6))).toEqual([0.428571, 0.428571, 0.142857, 0, 0, 0, 0, 0]);
    for (const aaOn of [false, true]) {
      const id = interpolationMatrix(6, 6, 'bicubic', aaOn);
      id.forEach((row, i) => row.forEach((v, j) => expect(v).toBeCloseTo(i === j ? 1 : 0, 12)));
      for (const [a, b] of [
        [7, 12],
        [14, 24],
        [24, 14],
        [3, 2],
      ]) {
        interpolationMatrix(a, b, 'bicubic', aaOn).forEach((row) =>
          expect(row.reduce((s, v) => s + v, 0)).toBeCloseTo(1, 12),
        );
      }
    }
    // PyTorch bicubic (a = -0.75), 2 -> 4: the first output's taps land on inputs 0, 0, 0, 1 (clamped).
    const bc = interpolationMatrix(2, 4, 'bicubic');
    expect(bc[0][0]).toBeCloseTo(1.10546875, 10);
    expect(bc[0][1]).toBeCloseTo(-0.10546875, 10);
    // F.interpolate([[1, 2], [3, 4]], scale_factor=2, mode='bicubic') starts with 0.68359375.
    const corner = [1, 2, 3, 4].reduce((s, v, k) => s + v * bc[0][k >> 1] * bc[0][k & 1], 0);
    expect(corner).toBeCloseTo(0.68359375, 10);
  });

  it('resamplePosEmbed keeps prefix rows, is the identity at the same size, and preserves constants', () => {
    const pe = tf.randomNormal([1, 17, 8], 0, 1, 'float32', 3);
    const same = resamplePosEmbed(pe, [4, 4]);
    expect(maxAbsDiff(same, pe)).toBe(0);
    const up = resamplePosEmbed(pe, [6, 5]);
    expect(up.shape).toEqual([1, 31, 8]);
    expect(Array.from(up.dataSync().slice(0, 8))).toEqual(Array.from(pe.dataSync().slice(0, 8)));
    const flat = tf.ones([1, 10, 4]);
    const down = resamplePosEmbed(flat, [2, 2], { oldGrid: [3, 3] });
    down.dataSync().forEach((v) => expect(v).toBeCloseTo(1, 6));
    expect(() => resamplePosEmbed(tf.zeros([1, 11, 4]), [2, 2])).toThrow(EinopsError);
    tf.dispose([pe, same, up, flat, down]);
  });

  it('sincosPosEmbed2d matches MAE get_2d_sincos_pos_embed (numpy values)', () => {
    const want = [
      [0, 0, 0, 0, 0, 0, 0, 0],
      [0, 0, 1, 1, 0, 0, 1, 1],
      [0.841471, 0.0099998, 0.5403023, 0.99995, 0, 0, 1, 1],
      [0.9092974, 0.0199987, -0.4161468, 0.9998, 0, 0, 1, 1],
      [0, 0, 1, 1, 0.841471, 0.0099998, 0.5403023, 0.99995],
      [0.841471, 0.0099998, 0.5403023, 0.99995, 0.841471, 0.0099998, 0.5403023, 0.99995],
      [0.9092974, 0.0199987, -0.4161468, 0.9998, 0.841471, 0.0099998, 0.5403023, 0.99995],
    ];
    const got = sincosPosEmbed2d(8, 2, 3, 1);
    expect(got.shape).toEqual([1, 7, 8]);
    const data = got.dataSync();
    want.flat().forEach((v, i) => expect(data[i]).toBeCloseTo(v, 6));
    got.dispose();
  });
});

describe('attention maps', () => {
  // 2 layers, N=1, 2 heads, T = 1 + 2x2 patches
  const probs = (seed: number) =>
    tf.tidy(() => tf.softmax(tf.randomNormal([1, 2, 5, 5], 0, 1, 'float32', seed)));

  it('classTokenAttention: last layer, heads averaged, class row over the patch grid', () => {
    const layers = [probs(1), probs(2)];
    const map = classTokenAttention(layers, 2, 2);
    const a = layers[1].arraySync() as number[][][][];
    const want = [1, 2, 3, 4].map((k) => (a[0][0][0][k] + a[0][1][0][k]) / 2);
    expect(map.shape).toEqual([1, 2, 2]);
    Array.from(map.dataSync()).forEach((v, i) => expect(v).toBeCloseTo(want[i], 6));
    tf.dispose([...layers, map]);
  });

  it('attentionRollout equals the product of (mean heads + I) / 2, last layer on the left', () => {
    const layers = [probs(3), probs(4), probs(5)];
    const mats = layers.map((l) => {
      const a = l.arraySync() as number[][][][];
      return a[0][0].map((row, i) => row.map((v, j) => ((v + a[0][1][i][j]) / 2 + (i === j ? 1 : 0)) / 2));
    });
    const mul = (x: number[][], y: number[][]) =>
      x.map((row) => y[0].map((_, j) => row.reduce((s, v, k) => s + v * y[k][j], 0)));
    const joint = mul(mats[2], mul(mats[1], mats[0]));
    const r = rolloutMatrix(layers);
    const got = (r.arraySync() as number[][][])[0];
    got.forEach((row, i) => row.forEach((v, j) => expect(v).toBeCloseTo(joint[i][j], 6)));
    const map = attentionRollout(layers, 2, 2);
    Array.from(map.dataSync()).forEach((v, i) => expect(v).toBeCloseTo(joint[0][i + 1], 6));
    expect(() => attentionRollout(layers, 3, 3)).toThrow(EinopsError);
    tf.dispose([...layers, r, map]);
  });
});

describe('models HF cannot hold', () => {
  it('save with timm names and reload exactly (mean pooling, fc_norm, LayerScale)', async () => {
    const cfg = parseConfig({
      ...SMALL,
      pooling: 'mean',
      fc_norm: true,
      final_norm: false,
      layer_scale: true,
    });
    const model = ViT.create(cfg, 11);
    const dir = mkdtempSync(join(tmpdir(), 'einvit-timm-'));
    try {
      await model.save(dir);
      expect(JSON.parse(readFileSync(join(dir, 'config.json'), 'utf8')).naming).toBe('timm');
      const again = await ViT.fromPretrained(dir);
      expect(again.config).toEqual(model.config);
      const x = pixels(2, 3, 16, 16, 12);
      const a = model.forward(x).logits;
      const b = again.forward(x).logits;
      expect(Array.from(b.dataSync())).toEqual(Array.from(a.dataSync()));
      tf.dispose([x, a, b]);
      again.dispose();
    } finally {
      rmSync(dir, { recursive: true, force: true });
      model.dispose();
    }
  });

  it('sinusoidal positions: no pos_embed parameter, MAE table added, any grid', () => {
    const cfg = parseConfig({ ...SMALL, position_embedding: 'sinusoidal' });
    const model = ViT.create(cfg, 2);
    expect(model.parameters().has('pos_embed')).toBe(false);
    const x = pixels(1, 3, 16, 16, 3);
    const out = model.forward(x, { outputHiddenStates: true });
    const expected = tf.tidy(() => {
      const p = model.parameters();
      const tokens = patchEmbed(x, p.get('patch_embed.proj.weight')!, p.get('patch_embed.proj.bias')!, 4);
      const withCls = tf.concat([p.get('cls_token')!, tokens], 1);
      return tf.add(withCls, sincosPosEmbed2d(16, 4, 4, 1));
    });
    expect(maxAbsDiff(out.hiddenStates![0], expected)).toBeLessThan(1e-6);
    const wide = pixels(1, 3, 16, 24, 4);
    const outWide = model.forward(wide, { outputLastHiddenState: true });
    expect(outWide.lastHiddenState!.shape).toEqual([1, 25, 16]);
    tf.dispose([x, wide, expected, out.logits, out.preLogits, out.lastHiddenState, ...out.hiddenStates!]);
    tf.dispose([outWide.logits, outWide.preLogits, outWide.lastHiddenState]);
    model.dispose();
  });
});

describe('ViT.predict: k', () => {
  it('refuses a k that is not a positive integer, before running the model; clamps a large k', () => {
    const model = ViT.create(SMALL, 1);
    const x = tf.zeros([2, SMALL.num_channels, SMALL.image_size, SMALL.image_size]);
    const before = tf.memory().numTensors;
    for (const k of [0, -1, 1.5, Number.NaN]) {
      expect(() => model.predict(x, k)).toThrow(UsageError);
      expect(() => model.predict(x, k)).toThrow(/ViT.predict: k must be a positive integer/);
    }
    expect(tf.memory().numTensors).toBe(before);
    const { probs, top } = model.predict(x, 1000);
    expect(top[0].length).toBe(SMALL.num_labels);
    expect(top[0].map((p) => p.index).sort((a, b) => a - b)).toEqual([...Array(SMALL.num_labels).keys()]);
    probs.dispose();
    x.dispose();
    model.dispose();
  });
});
