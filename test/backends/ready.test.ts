import { afterAll, describe, expect, it } from 'vitest';
import { ready, tf } from '../../src/index.js';
import { RuntimeFailure, UsageError } from '../../src/errors.js';

afterAll(async () => {
  await ready('wasm');
});

describe('ready', () => {
  it('starts the backend asked for and returns its name', async () => {
    expect(await ready('cpu')).toBe('cpu');
    expect(tf.getBackend()).toBe('cpu');
    expect(await ready('wasm')).toBe('wasm');
  });

  it('follows EINVIT_BACKEND when no name is given', async () => {
    const saved = process.env.EINVIT_BACKEND;
    process.env.EINVIT_BACKEND = 'cpu';
    try {
      expect(await ready()).toBe('cpu');
    } finally {
      if (saved === undefined) delete process.env.EINVIT_BACKEND;
      else process.env.EINVIT_BACKEND = saved;
    }
  });

  it('picks the best available backend by default (wasm without tfjs-node or a GPU)', async () => {
    const saved = process.env.EINVIT_BACKEND;
    delete process.env.EINVIT_BACKEND;
    try {
      expect(await ready()).toBe('wasm');
    } finally {
      if (saved !== undefined) process.env.EINVIT_BACKEND = saved;
    }
  });

  it('rejects unknown names with UsageError and unavailable backends with RuntimeFailure', async () => {
    await expect(ready('tpu')).rejects.toBeInstanceOf(UsageError);
    await expect(ready('tpu')).rejects.toThrow(/Unknown backend "tpu"/);
    await expect(ready('tensorflow')).rejects.toBeInstanceOf(RuntimeFailure);
    // Says what to install, with the CUDA/cuDNN versions tfjs-node-gpu needs and the Dawn alternative.
    await expect(ready('tensorflow')).rejects.toThrow(
      /tfjs-node-gpu 4\.22\.0.*CUDA 11\.2 \+ cuDNN 8\.1.*ready\('webgpu'\)/,
    );
    await expect(ready('webgl')).rejects.toThrow(/WebGL needs a browser/);
  });
});
