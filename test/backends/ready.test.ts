import { afterAll, describe, expect, it } from 'vitest';
import { EinopsError, ready, tf } from '../../src/index.js';

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

  it('rejects unknown and unavailable backends with EinopsError', async () => {
    await expect(ready('tpu')).rejects.toBeInstanceOf(EinopsError);
    await expect(ready('tpu')).rejects.toThrow(/Unknown backend "tpu"/);
    await expect(ready('tensorflow')).rejects.toThrow(/tfjs-node/);
  });
});
