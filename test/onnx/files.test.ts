import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { tf } from '../../src/tf.js';
import { CheckpointError, RuntimeFailure } from '../../src/errors.js';
import { GraphBuilder, sym } from '../../src/ir/index.js';
import {
  compileGraph,
  exportOnnx,
  inspectModel,
  loadOnnxruntime,
  OnnxSession,
  onnxruntimeUnavailable,
  setOnnxruntimeImporter,
} from '../../src/onnx/index.js';
import { encodeModel } from '../../src/onnx/proto.js';

await tf.setBackend('cpu');
const dir = mkdtempSync(join(tmpdir(), 'einvit-onnx-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function graph() {
  const g = new GraphBuilder();
  const x = g.input('x', [sym('N'), 3]);
  const w = g.param('w', Float32Array.from([1, 0, 0, 1, 1, 1]), [3, 2]);
  const gamma = g.param('gamma', Float32Array.from([1, 2]), [2]);
  const beta = g.param('beta', Float32Array.from([0, 1]), [2]);
  return g.build({ y: x.matMul(w).layerNorm(gamma, beta, 1e-6).gelu(), label: x.argMax(-1) });
}

describe('ONNX files', () => {
  it('exports a graph that loads back and gives the eager numbers', async () => {
    const path = join(dir, 'ok.onnx');
    await exportOnnx(graph(), path, { metadata: { config: '{"hidden":2}' } });
    const s = await OnnxSession.load(path);
    expect(s.inputs).toEqual([{ name: 'x', dtype: 'float32', dims: ['N', 3] }]);
    const x = tf.tensor2d([1, 2, 3, -1, 0.5, 0], [2, 3]);
    const { y, label } = await s.run({ x });
    const ref = tf.tidy(() => {
      const h = tf.matMul(x, tf.tensor2d([1, 0, 0, 1, 1, 1], [3, 2]));
      const { mean, variance } = tf.moments(h, -1, true);
      const n = tf.add(tf.mul(tf.div(tf.sub(h, mean), tf.sqrt(tf.add(variance, 1e-6))), [1, 2]), [0, 1]);
      return tf.mul(tf.mul(n, 0.5), tf.add(1, tf.erf(tf.div(n, Math.SQRT2))));
    });
    const got = y.dataSync();
    ref.dataSync().forEach((v, i) => expect(got[i]).toBeCloseTo(v, 5));
    expect(Array.from(label.dataSync())).toEqual([2, 1]);
    tf.dispose([x, y, label, ref]);
    await s.dispose();
  });

  it('rejects a corrupt file and a foreign model with a CheckpointError', async () => {
    const ok = join(dir, 'ok2.onnx');
    await exportOnnx(graph(), ok);
    const bytes = readFileSync(ok);
    const corrupt = join(dir, 'corrupt.onnx');
    writeFileSync(corrupt, bytes.subarray(0, bytes.length >> 1));
    await expect(OnnxSession.load(corrupt)).rejects.toThrow(CheckpointError);
    const text = join(dir, 'text.onnx');
    writeFileSync(text, 'not a model at all\n');
    await expect(OnnxSession.load(text)).rejects.toThrow(/text\.onnx is not an ONNX model/);
    // A valid ONNX model without einvit's metadata (like a PyTorch export).
    const foreign = join(dir, 'foreign.onnx');
    writeFileSync(
      foreign,
      encodeModel({
        irVersion: 8,
        opsetImport: [{ domain: '', version: 17 }],
        graph: {
          name: 'g',
          node: [{ opType: 'Identity', input: ['a'], output: ['b'] }],
          input: [{ name: 'a', type: { tensorType: { elemType: 1, shape: { dim: [{ dimValue: 1 }] } } } }],
          output: [{ name: 'b', type: { tensorType: { elemType: 1, shape: { dim: [{ dimValue: 1 }] } } } }],
        },
      }),
    );
    await expect(OnnxSession.load(foreign)).rejects.toThrow(/was not written by einvit/);
    expect(inspectModel(readFileSync(foreign), 'foreign').einvit).toBe(false);
    const s = await OnnxSession.load(foreign, { requireEinvit: false });
    await s.dispose();
    await expect(OnnxSession.load(join(dir, 'missing.onnx'))).rejects.toThrow(/Cannot read ONNX file/);
  });
});

describe('onnxruntime missing', () => {
  it('loadOnnxruntime gives null and a message; compileProgram a RuntimeFailure, never a crash', async () => {
    setOnnxruntimeImporter(() =>
      Promise.reject(new Error('libonnxruntime.so.1: cannot open shared object file')),
    );
    try {
      expect(await loadOnnxruntime()).toBeNull();
      expect(onnxruntimeUnavailable()).toMatch(
        /onnxruntime-node could not be loaded \(libonnxruntime.so.1.*\); using the tfjs path/,
      );
      await expect(compileGraph(graph())).rejects.toThrow(RuntimeFailure);
    } finally {
      setOnnxruntimeImporter();
    }
    expect(await loadOnnxruntime()).not.toBeNull();
  });
});
