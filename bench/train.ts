// Training throughput: forward + backward + AdamW update, images/s, exactly the step trainer.ts runs
// (label smoothing 0.1, gradient clipping 1), and the time an epoch takes at that rate.
import { tf } from '../src/tf.js';
import { ViT } from '../src/vit/model.js';
import { PRESETS, type ViTConfig } from '../src/vit/config.js';
import { AdamW, clipByGlobalNorm } from '../src/train/optimizer.js';
import type { Row, Section } from './index.js';

/** PyTorch 2.13 CPU on 2 threads, same configs, as measured on this machine kind (PyPI is out of reach here). */
const PYTORCH_IMAGES_PER_S: Record<string, number> = { 'mnist-tiny-p4': 1350, 'cifar-tiny': 970 };

interface Case {
  name: string;
  cfg: ViTConfig;
  batch: number;
  epochImages: number;
  peer?: string;
}

const CASES: Case[] = [
  { name: 'MNIST tiny (patch 7, D 96), the main job', cfg: PRESETS.tiny, batch: 64, epochImages: 8000 },
  { name: 'MNIST tiny (patch 7, D 96)', cfg: PRESETS.tiny, batch: 128, epochImages: 8000 },
  {
    name: 'MNIST small (patch 4, D 64)',
    cfg: PRESETS.small,
    batch: 128,
    epochImages: 8000,
    peer: 'mnist-tiny-p4',
  },
  {
    name: 'CIFAR tiny (patch 4, D 48)',
    cfg: PRESETS['cifar-tiny'],
    batch: 256,
    epochImages: 50000,
    peer: 'cifar-tiny',
  },
];

function stepper(cfg: ViTConfig, batch: number): () => void {
  const model = ViT.create(cfg, 0);
  const params = model.parameters();
  const nameOf = new Map([...params].map(([n, v]) => [v.name, n]));
  const opt = new AdamW(params, { weightDecay: 0.05 });
  const x = tf.randomNormal([batch, cfg.num_channels, cfg.image_size, cfg.image_size], 0, 1, 'float32', 1);
  const y = tf.oneHot(tf.randomUniform([batch], 0, cfg.num_labels, 'int32', 2), cfg.num_labels);
  return () =>
    tf.tidy(() => {
      const { value, grads } = tf.variableGrads(
        () =>
          tf.losses.softmaxCrossEntropy(
            y,
            model.forward(x, { training: true, seed: 3 }).logits,
            undefined,
            0.1,
          ) as tf.Scalar,
        [...params.values()],
      );
      const named = new Map(Object.entries(grads).map(([k, g]) => [nameOf.get(k)!, g]));
      opt.step(clipByGlobalNorm(named, 1).grads, 1e-3);
      value.dataSync();
    });
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)];
}

export const trainSection: Section = {
  name: 'train',
  title: 'Training throughput (forward + backward + AdamW), one thread',
  async run(): Promise<Row[]> {
    const rows: Row[] = [];
    for (const c of CASES) {
      const step = stepper(c.cfg, c.batch);
      step();
      step();
      const times: number[] = [];
      const steps = c.batch >= 256 ? 3 : 6;
      for (let i = 0; i < steps; i++) {
        const t = performance.now();
        step();
        times.push(performance.now() - t);
      }
      const ips = (c.batch * 1000) / median(times);
      const peer = c.peer ? PYTORCH_IMAGES_PER_S[c.peer] : undefined;
      rows.push({
        config: c.name,
        batch: c.batch,
        'ms / step': Number(median(times).toFixed(1)),
        'images / s': Math.round(ips),
        's / epoch': Number((c.epochImages / ips).toFixed(1)),
        'PyTorch 2 threads (notes)': peer ?? '',
        'ratio to PyTorch': peer ? Number((ips / peer).toFixed(2)) : '',
      });
    }
    return rows;
  },
};
