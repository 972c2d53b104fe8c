import { mkdtempSync, readFileSync, rmSync, writeFileSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { EinopsError, ready, tf } from '../../src/index.js';
import { train, type TrainOptions } from '../../src/train/trainer.js';
import { PRESETS } from '../../src/vit/config.js';
import { openSafetensors } from '../../src/vit/safetensors.js';
import { evalCommand, predictCommand, attentionCommand } from '../../src/cli/run.js';
import { loadMnist } from '../../src/train/mnist.js';
import { grayToRgb } from '../../src/image/draw.js';
import { writePng } from '../../src/image/png.js';
import { PNG } from 'pngjs';

const dir = mkdtempSync(join(tmpdir(), 'einvit-train-'));
// A small ViT on MNIST-shaped data, so that a few epochs take seconds.
const configPath = join(dir, 'small-config.json');

beforeAll(async () => {
  await ready('wasm');
  writeFileSync(
    configPath,
    JSON.stringify({
      ...PRESETS.tiny,
      hidden_size: 24,
      num_hidden_layers: 2,
      num_attention_heads: 2,
      intermediate_size: 48,
    }),
  );
});

afterAll(() => rmSync(dir, { recursive: true, force: true }));

const quiet = { log: () => undefined, progress: false } as const;

function base(out: string, extra: Partial<TrainOptions> = {}): TrainOptions {
  return {
    out,
    config: configPath,
    epochs: 3,
    batchSize: 64,
    limitTrain: 256,
    limitTest: 64,
    seed: 7,
    plots: false,
    ...quiet,
    ...extra,
  };
}

function weights(out: string): Map<string, Float32Array> {
  const f = openSafetensors(join(out, 'model.safetensors'));
  const m = new Map(f.keys().map((k) => [k, f.readFloat32(k)]));
  f.close();
  return m;
}

function metricsOf(out: string): Array<Record<string, number>> {
  return readFileSync(join(out, 'metrics.jsonl'), 'utf8')
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l) as Record<string, number>);
}

describe('train', () => {
  it('writes a loadable checkpoint and one metrics line per epoch; memory stays flat', async () => {
    const out = join(dir, 'plain');
    const counts: number[] = [];
    const r = await train(base(out, { onEpoch: () => counts.push(tf.memory().numTensors) }));
    r.model.dispose();
    expect(r.metrics).toHaveLength(3);
    expect(counts[0]).toBe(counts[2]); // tensors after epoch 1 == after epoch 3
    const rows = metricsOf(out);
    expect(rows.map((m) => m.epoch)).toEqual([1, 2, 3]);
    for (const m of rows) {
      for (const key of ['train_loss', 'train_acc', 'test_loss', 'test_acc', 'images_per_s', 'elapsed_s']) {
        expect(Number.isFinite(m[key])).toBe(true);
      }
      expect(m.train_acc).toBeGreaterThanOrEqual(0);
      expect(m.test_acc).toBeLessThanOrEqual(1);
    }
    // It learns: the training loss falls.
    expect(rows[2].train_loss).toBeLessThan(rows[0].train_loss);
    for (const f of [
      'model.safetensors',
      'config.json',
      'preprocessor_config.json',
      'optimizer.safetensors',
    ]) {
      expect(existsSync(join(out, f))).toBe(true);
    }
    const config = JSON.parse(readFileSync(join(out, 'config.json'), 'utf8')) as Record<string, unknown>;
    expect(config.model_type).toBe('vit');
  });

  it('resumed after an interruption mid-epoch gives exactly the uninterrupted result', async () => {
    const full = join(dir, 'full');
    const cut = join(dir, 'cut');
    (await train(base(full))).model.dispose();
    const first = await train(base(cut, { maxSteps: 6 })); // 4 steps per epoch: stops inside epoch 2
    first.model.dispose();
    expect(first.interrupted).toBe(true);
    (await train(base(cut, { resume: true }))).model.dispose();
    const a = weights(full);
    const b = weights(cut);
    expect([...b.keys()].sort()).toEqual([...a.keys()].sort());
    for (const [k, v] of a) expect(Array.from(b.get(k)!)).toEqual(Array.from(v));
    const strip = (rows: Array<Record<string, number>>) =>
      rows.map(({ epoch, train_loss, train_acc, test_loss, test_acc }) => ({
        epoch,
        train_loss,
        train_acc,
        test_loss,
        test_acc,
      }));
    expect(strip(metricsOf(cut))).toEqual(strip(metricsOf(full)));
  });

  it('refuses to overwrite a run, a config that does not fit, and an incompatible resume', async () => {
    const out = join(dir, 'plain');
    const before = readFileSync(join(out, 'model.safetensors'));
    await expect(train(base(out))).rejects.toThrow(/already holds a training run/);
    await expect(train(base(out, { resume: true, batchSize: 32 }))).rejects.toThrow(/batchSize = 64, not 32/);
    expect(readFileSync(join(out, 'model.safetensors')).equals(before)).toBe(true);
    await expect(train(base(join(dir, 'x'), { config: 'cifar-tiny' }))).rejects.toThrow(
      /does not fit the data.*image_size 32 but the images are 28x28/,
    );
    await expect(train(base(join(dir, 'y'), { data: 'cifar10:/nonexistent-folder' }))).rejects.toBeInstanceOf(
      EinopsError,
    );
  });

  it('eval, predict and attention work on the trained checkpoint', async () => {
    const out = join(dir, 'plain');
    const lines = await evalCommand(out, 'mnist');
    expect(lines[1]).toMatch(/^accuracy \d+\.\d\d%/);
    expect(lines.some((l) => l.startsWith('confusion matrix'))).toBe(true);
    const digits = loadMnist().test;
    const png = join(dir, 'digit.png');
    writePng(png, grayToRgb(digits.images.subarray(0, 784), 28, 28, 0.1307, 0.3081));
    const top = await predictCommand(out, [png], 3);
    expect(top[0]).toBe(png);
    expect(top.slice(1)).toHaveLength(3);
    for (const l of top.slice(1)) expect(l).toMatch(/^\s+\d+\.\d\d%\s+\d \(\d\)$/);
    const maps = join(dir, 'maps.png');
    await attentionCommand(out, [png, png], maps);
    const img = PNG.sync.read(readFileSync(maps));
    expect(img.width).toBe(104 + 2 * 118 + 6); // label column + 2 images of 28 px x 4 (attention-sheet.ts)
  });
});
