// Worker thread of ParallelGrads (parallel.ts): its own tfjs engine and backend, and a ViT replica whose
// parameters are overwritten from shared memory before every shard. Replies go back as messages; the
// gradients themselves are written into this worker's shared gradient buffer.
import { parentPort, workerData } from 'node:worker_threads';
import { tf } from '../tf.js';
import { ready } from '../backends/index.js';
import { ViT } from '../vit/model.js';
import { shardGradients, type StepMessage, type WorkerInit, type WorkerReply } from './parallel.js';

const port = parentPort!;
const init = workerData as WorkerInit;
const reply = (m: WorkerReply) => port.postMessage(m);

function message(e: unknown): string {
  return e instanceof Error ? e.message : String(e);
}

try {
  await ready(init.backend);
  const model = ViT.create(init.cfg);
  const names = init.slots.map((s) => s.name);
  const paramViews = init.slots.map((s) => new Float32Array(init.params, s.offset * 4, s.length));
  const gradViews = init.slots.map((s) => new Float32Array(init.grads, s.offset * 4, s.length));
  const variables = names.map((n) => model.parameters().get(n)!);
  const pixels = init.cfg.num_channels * init.cfg.image_size * init.cfg.image_size;

  port.on('message', (m: StepMessage) => {
    try {
      tf.tidy(() => {
        init.slots.forEach((s, i) => variables[i].assign(tf.tensor(paramViews[i], s.shape, 'float32')));
      });
      const images = new Float32Array(m.input, 0, m.size * pixels);
      const r = shardGradients(
        model,
        images,
        m.labels,
        m.size,
        { labelSmoothing: m.labelSmoothing, seed: m.seed },
        names,
        gradViews,
      );
      reply({ type: 'done', loss: r.loss, correct: r.correct, has: r.grads.map((g) => g !== undefined) });
    } catch (e) {
      reply({ type: 'error', message: message(e) });
    }
  });
  reply({ type: 'ready' });
} catch (e) {
  reply({ type: 'error', message: message(e) });
}
