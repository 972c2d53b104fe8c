// `--runtime`: where onnxruntime cannot load, 'auto' says so in one line and runs on tfjs; a forced
// 'onnxruntime' is our error; 'tfjs' never touches onnxruntime.
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { beforeAll, describe, expect, it, vi } from 'vitest';
import { tf } from '../../src/tf.js';
import { ready } from '../../src/backends/index.js';
import { CompileError, RuntimeFailure, UsageError } from '../../src/errors.js';
import { ViT } from '../../src/vit/model.js';
import { openModel, parseRuntime } from '../../src/cli/runtime.js';

const fakeOrt = vi.hoisted(() => ({ loads: false }));
vi.mock('../../src/onnx/runtime.js', () => ({
  loadOnnxruntime: () => Promise.resolve(fakeOrt.loads ? {} : null),
  onnxruntimeUnavailable: () => 'onnxruntime-node could not be loaded (test); using the tfjs path',
}));

const PEER = fileURLToPath(new URL('../peers/mnist-tiny/', import.meta.url));

beforeAll(async () => {
  await ready('cpu');
});

describe('runtime choice without onnxruntime', () => {
  it('auto falls back to tfjs with a message; onnxruntime is a RuntimeFailure', async () => {
    const warnings: string[] = [];
    const runner = await openModel(PEER, { runtime: 'auto', warn: (m) => warnings.push(m) });
    expect(runner.runtime).toBe('tfjs');
    expect(warnings).toEqual(['onnxruntime-node could not be loaded (test); using the tfjs path']);
    const x = tf.zeros([1, 1, 28, 28]);
    const { probs, top } = await runner.predict(x, 2);
    expect(top[0]).toHaveLength(2);
    tf.dispose([x, probs]);
    await runner.dispose();
    await expect(openModel(PEER, { runtime: 'onnxruntime' })).rejects.toThrow(RuntimeFailure);
    const eager = await openModel(join(PEER), { runtime: 'tfjs', warn: (m) => warnings.push(m) });
    expect(eager.runtime).toBe('tfjs');
    expect(warnings).toHaveLength(1);
    await eager.dispose();
  });

  it('auto runs on tfjs when onnxruntime loads but cannot take the model; forced, it is the error', async () => {
    fakeOrt.loads = true;
    const spy = vi
      .spyOn(ViT.prototype, 'compile')
      .mockRejectedValue(new CompileError('attention: not traceable here'));
    try {
      const warnings: string[] = [];
      const runner = await openModel(PEER, { warn: (m) => warnings.push(m) });
      expect(runner.runtime).toBe('tfjs');
      expect(warnings[0]).toMatch(
        /cannot run .*mnist-tiny.* on onnxruntime \(attention: not traceable here\); using the tfjs path/,
      );
      await runner.dispose();
      await expect(openModel(PEER, { runtime: 'onnxruntime' })).rejects.toThrow(CompileError);
    } finally {
      spy.mockRestore();
      fakeOrt.loads = false;
    }
  });

  it('parses the flag', () => {
    expect(parseRuntime(undefined)).toBe('auto');
    expect(parseRuntime('onnxruntime')).toBe('onnxruntime');
    expect(() => parseRuntime('gpu')).toThrow(UsageError);
  });
});
