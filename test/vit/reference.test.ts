// The ViT against the public PyTorch reference vectors in test/vit-reference (HF and timm models):
// every output tensor within 1e-5 of the reference (max |diff| / max |ref|), no tensor leaks,
// finite gradients in training mode, and exact save -> fromPretrained round trips.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { tf } from '../../src/tf.js';
import { ready } from '../../src/backends/index.js';
import { ViT } from '../../src/vit/model.js';
import { openSafetensors } from '../../src/vit/safetensors.js';

const REF = fileURLToPath(new URL('../vit-reference/', import.meta.url));
const FOLDERS = ['cifar-tiny', 'vit-ti-16', 'vit-s-16-hf'];
const TOL = 1e-5;

interface Reference {
  pixels: tf.Tensor;
  tensors: Map<string, { shape: number[]; data: Float32Array }>;
}

function readIo(folder: string): Reference {
  const f = openSafetensors(join(REF, folder, 'io.safetensors'));
  try {
    const tensors = new Map<string, { shape: number[]; data: Float32Array }>();
    for (const k of f.keys()) tensors.set(k, { shape: f.info(k).shape, data: f.readFloat32(k) });
    const pv = tensors.get('pixel_values')!;
    return { pixels: tf.tensor(pv.data, pv.shape), tensors };
  } finally {
    f.close();
  }
}

/** max |a - ref| / max |ref|, after checking shapes. */
function relError(name: string, got: tf.Tensor, ref: { shape: number[]; data: Float32Array }): number {
  expect(got.shape, `${name} shape`).toEqual(ref.shape);
  const a = got.dataSync();
  let diff = 0;
  let scale = 0;
  for (let i = 0; i < a.length; i++) {
    diff = Math.max(diff, Math.abs(a[i] - ref.data[i]));
    scale = Math.max(scale, Math.abs(ref.data[i]));
  }
  return diff / scale;
}

/** Entries that are not bit-identical (element-wise loop: deep equality on millions of numbers is slow). */
function countDifferences(a: ArrayLike<number>, b: ArrayLike<number>): number {
  if (a.length !== b.length) return Math.max(a.length, b.length);
  let n = 0;
  for (let i = 0; i < a.length; i++) if (!Object.is(a[i], b[i])) n++;
  return n;
}

const report: string[] = [];

beforeAll(async () => {
  await ready('wasm');
});

afterAll(() => {
  if (report.length > 0) console.log(`ViT reference errors (max|diff|/max|ref|):\n${report.join('\n')}`);
});

describe.each(FOLDERS)('reference %s', (folder) => {
  it('matches every output within 1e-5 and leaks no tensor', async () => {
    const model = await ViT.fromPretrained(join(REF, folder));
    const ref = readIo(folder);
    const before = tf.memory().numTensors;
    const t0 = performance.now();
    const out = model.forward(ref.pixels, {
      outputHiddenStates: true,
      outputAttentions: true,
      outputPreLogits: true,
      outputLastHiddenState: true,
    });
    const ms = performance.now() - t0;
    const errors: Array<[string, number]> = [];
    errors.push(['logits', relError('logits', out.logits, ref.tensors.get('logits')!)]);
    errors.push(['pre_logits', relError('pre_logits', out.preLogits!, ref.tensors.get('pre_logits')!)]);
    errors.push([
      'last_hidden_state',
      relError('last_hidden_state', out.lastHiddenState!, ref.tensors.get('last_hidden_state')!),
    ]);
    const layers = model.config.num_hidden_layers;
    expect(out.hiddenStates).toHaveLength(layers + 1);
    expect(out.attentions).toHaveLength(layers);
    out.hiddenStates!.forEach((h, i) =>
      errors.push([
        `hidden_states.${i}`,
        relError(`hidden_states.${i}`, h, ref.tensors.get(`hidden_states.${i}`)!),
      ]),
    );
    out.attentions!.forEach((a, i) =>
      errors.push([`attentions.${i}`, relError(`attentions.${i}`, a, ref.tensors.get(`attentions.${i}`)!)]),
    );
    const worst = errors.reduce((w, e) => (e[1] > w[1] ? e : w));
    report.push(
      `${folder} (forward ${ms.toFixed(0)} ms): worst ${worst[0]} ${worst[1].toExponential(2)}; ` +
        errors.map(([n, e]) => `${n} ${e.toExponential(2)}`).join(', '),
    );
    for (const [name, e] of errors) expect(e, `${folder} ${name}`).toBeLessThanOrEqual(TOL);

    const all = [out.logits, out.preLogits!, out.lastHiddenState!, ...out.hiddenStates!, ...out.attentions!];
    tf.dispose(all);
    expect(tf.memory().numTensors).toBe(before);
    ref.pixels.dispose();
    model.dispose();
  });
});

describe('training mode', () => {
  it('gives finite gradients for every parameter of a reference model', async () => {
    const model = await ViT.fromPretrained(join(REF, 'vit-ti-16'));
    const ref = readIo('vit-ti-16');
    const labels = tf.oneHot(tf.tensor1d([3, 7], 'int32'), model.config.num_labels);
    const vars = [...model.parameters().values()];
    const before = tf.memory().numTensors;
    const { value, grads } = tf.variableGrads(() => {
      const { logits } = model.forward(ref.pixels, { training: true, seed: 1 });
      return tf.losses.softmaxCrossEntropy(labels, logits) as tf.Scalar;
    }, vars);
    expect(Number.isFinite(value.dataSync()[0])).toBe(true);
    expect(Object.keys(grads).sort()).toEqual(vars.map((v) => v.name).sort());
    for (const v of vars) {
      const g = grads[v.name];
      expect(g.shape, v.name).toEqual(v.shape);
      const data = g.dataSync();
      expect(
        data.every((x) => Number.isFinite(x)),
        `${v.name} finite`,
      ).toBe(true);
    }
    // Every parameter reaches the loss: its gradient is not identically zero.
    for (const v of vars) {
      const maxAbs = tf.tidy(() => tf.max(tf.abs(grads[v.name])).dataSync()[0]);
      expect(maxAbs, `${v.name} gradient is zero`).toBeGreaterThan(0);
    }
    value.dispose();
    tf.dispose(Object.values(grads));
    expect(tf.memory().numTensors).toBe(before);
    labels.dispose();
    ref.pixels.dispose();
    model.dispose();
  });
});

describe('save -> fromPretrained', () => {
  const dirs: string[] = [];
  afterAll(() => dirs.forEach((d) => rmSync(d, { recursive: true, force: true })));

  it.each(FOLDERS)('round-trips %s exactly', async (folder) => {
    const model = await ViT.fromPretrained(join(REF, folder));
    const dir = mkdtempSync(join(tmpdir(), 'einvit-save-'));
    dirs.push(dir);
    await model.save(dir);
    const again = await ViT.fromPretrained(dir);
    const a = model.parameters();
    const b = again.parameters();
    expect([...b.keys()].sort()).toEqual([...a.keys()].sort());
    for (const [name, v] of a) {
      expect(b.get(name)!.shape, name).toEqual(v.shape);
      expect(countDifferences(b.get(name)!.dataSync(), v.dataSync()), name).toBe(0);
    }
    expect(again.config).toEqual({ ...model.config, naming: again.config.naming });
    const ref = readIo(folder);
    const x = model.forward(ref.pixels).logits;
    const y = again.forward(ref.pixels).logits;
    expect(countDifferences(y.dataSync(), x.dataSync())).toBe(0);
    tf.dispose([x, y, ref.pixels]);
    model.dispose();
    again.dispose();
  });
});
