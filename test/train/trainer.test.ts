import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ready, tf } from '../../src/index.js';
import { EinvitError, UsageError } from '../../src/errors.js';
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
      for (const key of ['train_loss', 'train_acc', 'test_loss', 'test_acc', 'lr']) {
        expect(Number.isFinite(m[key])).toBe(true);
      }
      expect(m.train_acc).toBeGreaterThanOrEqual(0);
      expect(m.test_acc).toBeLessThanOrEqual(1);
    }
    const timings = readFileSync(join(out, 'timings.jsonl'), 'utf8').trim().split('\n');
    expect(timings.map((l) => Object.keys(JSON.parse(l) as object))).toEqual(
      [1, 2, 3].map(() => ['epoch', 'images_per_s', 'elapsed_s']),
    );
    // It learns: the training loss falls.
    expect(rows[2].train_loss).toBeLessThan(rows[0].train_loss);
    for (const f of ['model.safetensors', 'config.json', 'preprocessor_config.json']) {
      expect(existsSync(join(out, f)), f).toBe(true);
    }
    for (const f of ['optimizer.safetensors', 'trainer_state.json']) {
      expect(existsSync(join(out, 'checkpoints', 'step-12', f)), f).toBe(true);
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
    await expect(train(base(out, { resume: true, batchSize: 32 }))).rejects.toThrow(
      /--batch-size 32 \(the run has 64\)/,
    );
    expect(readFileSync(join(out, 'model.safetensors')).equals(before)).toBe(true);
    await expect(train(base(join(dir, 'x'), { config: 'cifar-tiny' }))).rejects.toThrow(
      /does not fit the data.*image_size 32 but the images are 28x28/,
    );
    await expect(train(base(join(dir, 'y'), { data: 'cifar10:/nonexistent-folder' }))).rejects.toBeInstanceOf(
      EinvitError,
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

function bytes(out: string, file: string): Buffer {
  return readFileSync(join(out, file));
}

/** Every file under a folder with its bytes and modification time. */
function snapshot(root: string): Map<string, string> {
  const m = new Map<string, string>();
  const walk = (d: string) => {
    for (const e of readdirSync(d, { withFileTypes: true })) {
      const p = join(d, e.name);
      if (e.isDirectory()) walk(p);
      else m.set(p, `${statSync(p).mtimeMs} ${readFileSync(p).toString('base64')}`);
    }
  };
  walk(root);
  return m;
}

describe('reproducibility (issue 7, item 5)', () => {
  it('the same command gives byte-identical weights and metrics, for seed 0 and another seed', async () => {
    // Dropout on, so that dropout seeds count too (besides init, shuffling and augmentation).
    const dropCfg = join(dir, 'dropout-config.json');
    writeFileSync(
      dropCfg,
      JSON.stringify({
        ...JSON.parse(readFileSync(configPath, 'utf8')),
        hidden_dropout_prob: 0.1,
        attention_probs_dropout_prob: 0.1,
      }),
    );
    const runOnce = async (name: string, seed: number) => {
      const out = join(dir, name);
      (
        await train(base(out, { seed, config: dropCfg, epochs: 2, limitTrain: 128, limitTest: 32 }))
      ).model.dispose();
      return { model: bytes(out, 'model.safetensors'), metrics: bytes(out, 'metrics.jsonl') };
    };
    for (const seed of [0, 3]) {
      const a = await runOnce(`repro-${seed}-a`, seed);
      const b = await runOnce(`repro-${seed}-b`, seed);
      expect(a.model.equals(b.model), `seed ${seed}: model.safetensors`).toBe(true);
      expect(a.metrics.toString(), `seed ${seed}: metrics.jsonl`).toBe(b.metrics.toString());
    }
    const zero = await runOnce('repro-0-c', 0);
    const three = await runOnce('repro-3-c', 3);
    expect(zero.model.equals(three.model)).toBe(false);
  });
});

describe('checkpoints and resume (issue 7, items 6 and 7)', () => {
  it('lays the run out as a model folder plus checkpoints/latest', () => {
    const out = join(dir, 'plain');
    const latest = readFileSync(join(out, 'checkpoints', 'latest'), 'utf8').trim();
    expect(latest).toBe('step-12'); // 3 epochs x 4 steps
    const ckpt = join(out, 'checkpoints', latest);
    for (const f of ['model.safetensors', 'config.json', 'preprocessor_config.json', 'metrics.jsonl']) {
      expect(bytes(out, f).equals(bytes(ckpt, f)), f).toBe(true);
    }
    expect(readdirSync(join(out, 'checkpoints')).sort()).toEqual(['latest', 'step-12']);
    const state = JSON.parse(readFileSync(join(ckpt, 'trainer_state.json'), 'utf8')) as {
      step: number;
      options: Record<string, unknown>;
    };
    expect(state.step).toBe(12);
    expect(state.options).toMatchObject({
      lr: 2e-3,
      weightDecay: 0.05,
      limitTrain: 256,
      seed: 7,
      workers: 0,
    });
    // metrics.jsonl: results only (timings.jsonl holds the machine-dependent numbers)
    expect(Object.keys(metricsOf(out)[0])).toEqual([
      'epoch',
      'train_loss',
      'train_acc',
      'test_loss',
      'test_acc',
      'lr',
    ]);
  });

  it('--resume needs no flags: the stored options continue the run exactly', async () => {
    const cut = join(dir, 'cut-noflags');
    (await train(base(cut, { maxSteps: 5 }))).model.dispose();
    const r = await train({ out: cut, resume: true, plots: false, ...quiet });
    r.model.dispose();
    expect(r.interrupted).toBe(false);
    expect(bytes(cut, 'model.safetensors').equals(bytes(join(dir, 'full'), 'model.safetensors'))).toBe(true);
    expect(bytes(cut, 'metrics.jsonl').toString()).toBe(bytes(join(dir, 'full'), 'metrics.jsonl').toString());
  });

  it('refuses a resume with conflicting options, listing every one of them', async () => {
    const out = join(dir, 'plain');
    const before = snapshot(out);
    const err = await train(
      base(out, { resume: true, lr: 0.01, weightDecay: 0, limitTrain: 100, batchSize: 32, seed: 7 }),
    ).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(UsageError);
    const msg = (err as Error).message;
    for (const part of [
      '--lr 0.01 (the run has 0.002)',
      '--weight-decay 0 (the run has 0.05)',
      '--limit-train 100 (the run has 256)',
      '--batch-size 32 (the run has 64)',
    ]) {
      expect(msg).toContain(part);
    }
    expect(msg).not.toContain('--seed'); // given, but the same as the run's
    expect(snapshot(out)).toEqual(before);
  });

  it('resuming a finished run says so and changes nothing', async () => {
    const out = join(dir, 'plain');
    const before = snapshot(out);
    const lines: string[] = [];
    const r = await train({ out, resume: true, log: (l) => lines.push(l), progress: false });
    r.model.dispose();
    expect(r.alreadyFinished).toBe(true);
    expect(lines.join('\n')).toMatch(/is finished: 3 epochs done, test accuracy \d+\.\d\d%; nothing to do/);
    expect(snapshot(out)).toEqual(before);
  });

  it('a stop requested before training starts writes no checkpoint; "1 epoch" is singular', async () => {
    const out = join(dir, 'aborted');
    const stop = new AbortController();
    stop.abort();
    const lines: string[] = [];
    const before = tf.memory().numTensors;
    const r = await train(base(out, { signal: stop.signal, epochs: 1, log: (l) => lines.push(l) }));
    r.model.dispose();
    expect(tf.memory().numTensors).toBe(before);
    expect(r.interrupted).toBe(true);
    expect(lines.join('\n')).toContain('1 epoch x 4 steps');
    expect(lines.join('\n')).toContain('stopped before training started: nothing was saved');
    expect(existsSync(join(out, 'checkpoints', 'latest'))).toBe(false);
    expect(existsSync(join(out, 'model.safetensors'))).toBe(false);
    // ... so the same command starts it again (no --resume needed).
    (await train(base(out, { epochs: 1 }))).model.dispose();
    expect(metricsOf(out).map((m) => m.epoch)).toEqual([1]);
  });
});
