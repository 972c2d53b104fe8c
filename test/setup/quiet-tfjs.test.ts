// `npm test` used to print tfjs' "install tfjs-node" banner once per process and worker thread that
// touched the cpu backend; test/setup/quiet-tfjs.cjs silences it everywhere.
import { Worker } from 'node:worker_threads';
import { describe, expect, it, vi } from 'vitest';
import { tf } from '../../src/tf.js';

const BANNER = /looks like you are running TensorFlow\.js in Node\.js/;

describe('tfjs banner in tests', () => {
  it('is not printed by the test process', async () => {
    const warn = vi.spyOn(console, 'warn');
    await tf.setBackend('cpu');
    tf.tensor([1, 2]).dispose();
    const printed = warn.mock.calls.map((args) => args.join(' '));
    warn.mockRestore();
    expect(printed.filter((s) => BANNER.test(s))).toEqual([]);
  });

  it('is not printed by worker threads (they inherit the preload)', async () => {
    const code = `
      const tf = require('@tensorflow/tfjs-core');
      require('@tensorflow/tfjs-backend-cpu');
      tf.setBackend('cpu').then(() => { tf.tensor([1, 2]).dispose(); console.warn('worker done'); });
    `;
    const worker = new Worker(code, { eval: true, stderr: true });
    let stderr = '';
    worker.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    await new Promise((resolve, reject) => {
      worker.on('exit', resolve);
      worker.on('error', reject);
    });
    expect(stderr).toContain('worker done');
    expect(stderr).not.toMatch(BANNER);
  });
});
