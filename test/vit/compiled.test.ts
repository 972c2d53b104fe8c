// The compiled ViT (traced graph -> ONNX -> onnxruntime): every reference tensor within 1e-5, the peer
// models' PyTorch logits within 1e-5 (as onnxruntime on the PyTorch export gives them), an exported
// file that onnxruntime runs without einvit, the forward contract, and inputs that do not fit.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import * as ort from 'onnxruntime-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { tf } from '../../src/tf.js';
import { ready } from '../../src/backends/index.js';
import { EinopsError, UsageError } from '../../src/errors.js';
import { ViT } from '../../src/vit/model.js';
import { openSafetensors } from '../../src/vit/safetensors.js';
import { exportOnnxCommand } from '../../src/cli/export-onnx.js';
import { relError } from '../helpers/rel-error.js';

const REF = fileURLToPath(new URL('../vit-reference/', import.meta.url));
const PEERS = fileURLToPath(new URL('../peers/', import.meta.url));
const TOL = 1e-5;
const THREADS = 1; // the test machine is shared

function readIo(dir: string): Map<string, { shape: number[]; data: Float32Array }> {
  const f = openSafetensors(join(dir, 'io.safetensors'));
  try {
    return new Map(f.keys().map((k) => [k, { shape: f.info(k).shape, data: f.readFloat32(k) }]));
  } finally {
    f.close();
  }
}

const dirs: string[] = [];
beforeAll(async () => {
  await ready('wasm');
});
afterAll(() => dirs.forEach((d) => rmSync(d, { recursive: true, force: true })));

describe('ViT.compile on the reference folders', () => {
  it.each(['cifar-tiny', 'vit-ti-16', 'vit-s-16-hf'])(
    '%s: logits, every hidden state and attention map within 1e-5',
    async (folder) => {
      const model = await ViT.fromPretrained(join(REF, folder));
      const all = {
        outputHiddenStates: true,
        outputAttentions: true,
        outputPreLogits: true,
        outputLastHiddenState: true,
      };
      const fast = await model.compile({ ...all, threads: THREADS });
      const io = readIo(join(REF, folder));
      const pv = io.get('pixel_values')!;
      const pixels = tf.tensor(pv.data, pv.shape);
      const before = tf.memory().numTensors;
      const out = await fast.forward(pixels, all);
      const produced: Array<[string, tf.Tensor]> = [
        ['logits', out.logits],
        ['pre_logits', out.preLogits!],
        ['last_hidden_state', out.lastHiddenState!],
        ...out.hiddenStates!.map((t, i): [string, tf.Tensor] => [`hidden_states.${i}`, t]),
        ...out.attentions!.map((t, i): [string, tf.Tensor] => [`attentions.${i}`, t]),
      ];
      let checked = 0;
      for (const [name, t] of produced) {
        const ref = io.get(name);
        if (!ref) continue;
        expect(t.shape, name).toEqual(ref.shape);
        expect(relError(t.dataSync(), ref.data), name).toBeLessThanOrEqual(TOL);
        checked++;
      }
      expect(checked).toBeGreaterThanOrEqual(3 + 2);
      tf.dispose(produced.map(([, t]) => t));
      expect(tf.memory().numTensors).toBe(before);
      pixels.dispose();
      await fast.dispose();
      model.dispose();
    },
    120_000,
  );
});

describe('peer models: the same weights give PyTorch logits', () => {
  it.each(['mnist-tiny', 'cifar-tiny'])(
    '%s within 1e-5, as onnxruntime on pytorch.onnx',
    async (peer) => {
      const dir = join(PEERS, peer);
      const io = readIo(dir);
      const pv = io.get('pixel_values')!;
      const want = io.get('logits')!.data;
      const model = await ViT.fromPretrained(dir);
      const fast = await model.compile({ threads: THREADS });
      const pixels = tf.tensor(pv.data, pv.shape);
      const out = await fast.forward(pixels);
      const ours = relError(out.logits.dataSync(), want);
      const session = await ort.InferenceSession.create(join(dir, 'pytorch.onnx'), {
        intraOpNumThreads: THREADS,
      });
      const theirs = await session.run({ pixel_values: new ort.Tensor('float32', pv.data, pv.shape) });
      const peerErr = relError(theirs.logits.data as Float32Array, want);
      console.log(
        `${peer}: compiled einvit ${ours.toExponential(2)}, onnxruntime on pytorch.onnx ${peerErr.toExponential(2)}`,
      );
      expect(ours).toBeLessThanOrEqual(TOL);
      expect(peerErr).toBeLessThanOrEqual(TOL);
      await session.release();
      tf.dispose([pixels, out.logits, out.preLogits, out.lastHiddenState]);
      await fast.dispose();
      model.dispose();
    },
    120_000,
  );
});

describe('einvit export-onnx', () => {
  it('writes a file onnxruntime runs without einvit: same logits, any batch', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'einvit-onnx-'));
    dirs.push(dir);
    const file = join(dir, 'mnist-tiny.onnx');
    const lines = await exportOnnxCommand(join(PEERS, 'mnist-tiny'), file);
    expect(lines.slice(1)).toEqual([
      '  input  pixel_values [N, 1, 28, 28] float32',
      '  output logits [N, 10] float32',
    ]);
    const io = readIo(join(PEERS, 'mnist-tiny'));
    const pv = io.get('pixel_values')!;
    const want = io.get('logits')!.data;
    const session = await ort.InferenceSession.create(file, { intraOpNumThreads: THREADS });
    expect(session.inputNames).toEqual(['pixel_values']);
    expect(session.outputNames).toEqual(['logits']);
    const all = await session.run({ pixel_values: new ort.Tensor('float32', pv.data, pv.shape) });
    expect(relError(all.logits.data as Float32Array, want)).toBeLessThanOrEqual(TOL);
    // A batch of 3 (dynamic axis) gives the first three rows.
    const three = await session.run({
      pixel_values: new ort.Tensor('float32', pv.data.subarray(0, 3 * 28 * 28), [3, 1, 28, 28]),
    });
    expect(three.logits.dims).toEqual([3, 10]);
    expect(relError(three.logits.data as Float32Array, want.subarray(0, 30))).toBeLessThanOrEqual(TOL);
    await session.release();
  }, 120_000);

  it('rejects a bad --batch', async () => {
    await expect(exportOnnxCommand(join(PEERS, 'mnist-tiny'), 'x.onnx', { batch: 'many' })).rejects.toThrow(
      UsageError,
    );
  });
});

describe('CompiledViT contract', () => {
  it('returns only the requested outputs, refuses what was not compiled in, and names both shapes', async () => {
    const model = await ViT.fromPretrained(join(PEERS, 'mnist-tiny'));
    const fast = await model.compile({ outputAttentions: true, threads: THREADS });
    const x = tf.randomUniform([2, 1, 28, 28], -1, 1, 'float32', 3);
    const before = tf.memory().numTensors;
    const plain = await fast.forward(x);
    expect(Object.keys(plain)).toEqual(['logits']);
    // Only logits and the compiled-in maps are graph outputs.
    expect(fast.graph.outputs.map((o) => o.name)).toEqual([
      'logits',
      'attentions.0',
      'attentions.1',
      'attentions.2',
      'attentions.3',
    ]);
    const eager = model.forward(x);
    expect(relError(plain.logits.dataSync(), eager.logits.dataSync())).toBeLessThanOrEqual(TOL);
    const withMaps = await fast.forward(x, { outputAttentions: true });
    expect(withMaps.attentions!.map((a) => a.shape)).toEqual(Array(4).fill([2, 4, 17, 17]));
    const { probs, top } = await fast.predict(x, 3);
    expect(top[0]).toHaveLength(3);
    tf.dispose([plain.logits, probs, withMaps.logits, ...withMaps.attentions!, eager.logits]);
    expect(tf.memory().numTensors).toBe(before);

    await expect(fast.forward(x, { outputHiddenStates: true })).rejects.toThrow(UsageError);
    await expect(fast.forward(x, { outputPreLogits: true })).rejects.toThrow(
      /compile with \{ outputPreLogits: true \}/,
    );
    const wrong = tf.zeros([2, 1, 32, 32]);
    await expect(fast.forward(wrong)).rejects.toThrow(EinopsError);
    await expect(fast.forward(wrong)).rejects.toThrow(
      "pixels [2, 1, 32, 32] do not fit the compiled graph's pixel_values [N, 1, 28, 28]",
    );
    await fast.dispose();

    const fixed = await model.compile({ batch: 4, threads: THREADS });
    await expect(fixed.forward(x)).rejects.toThrow(
      "pixels [2, 1, 28, 28] do not fit the compiled graph's pixel_values [4, 1, 28, 28]",
    );
    await fixed.dispose();
    tf.dispose([x, wrong]);
    model.dispose();
  }, 120_000);
});
