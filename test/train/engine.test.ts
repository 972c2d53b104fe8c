// Trainer engines (issue 9, part 3 and "Bad input"): the onnxruntime engine's runs are reproducible
// and resume bit-identically; a checkpoint of one engine resumes on the other; a failed onnxruntime
// load falls back to tfjs with one line; configs the compiled step cannot train fail before training.
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { ready, tf } from '../../src/index.js';
import { CheckpointError, EinvitError, UsageError } from '../../src/errors.js';
import { train, type TrainOptions, type TrainerState } from '../../src/train/trainer.js';
import { setOnnxruntimeImporter } from '../../src/onnx/runtime.js';
import { PRESETS } from '../../src/vit/config.js';

const dir = mkdtempSync(join(tmpdir(), 'einvit-engine-'));
const configPath = join(dir, 'config.json');
const small = {
  ...PRESETS.tiny,
  hidden_size: 24,
  num_hidden_layers: 2,
  num_attention_heads: 2,
  intermediate_size: 48,
};

beforeAll(async () => {
  await ready('wasm');
  writeFileSync(configPath, JSON.stringify(small));
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));
afterEach(() => setOnnxruntimeImporter());

/** 4 steps per epoch, 3 epochs; 2 onnxruntime threads (--workers 1), as the CLI's default on 2 cores. */
function base(out: string, extra: Partial<TrainOptions> = {}): TrainOptions {
  return {
    out: join(dir, out),
    config: configPath,
    epochs: 3,
    batchSize: 64,
    limitTrain: 256,
    limitTest: 64,
    seed: 3,
    workers: 1,
    engine: 'onnxruntime',
    plots: false,
    log: () => undefined,
    progress: false,
    ...extra,
  };
}

async function run(o: TrainOptions, lines?: string[]) {
  const r = await train({ ...o, log: lines ? (l) => lines.push(l) : o.log });
  r.model.dispose();
  return r;
}

const bytes = (out: string, file: string) => readFileSync(join(dir, out, file));
const stateOf = (out: string): TrainerState => {
  const latest = readFileSync(join(dir, out, 'checkpoints', 'latest'), 'utf8').trim();
  return JSON.parse(readFileSync(join(dir, out, 'checkpoints', latest, 'trainer_state.json'), 'utf8'));
};
const metricsOf = (out: string) =>
  bytes(out, 'metrics.jsonl')
    .toString()
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l) as { epoch: number; train_loss: number; test_loss: number; test_acc: number });

describe('the onnxruntime engine', () => {
  it('trains, and the same command gives byte-identical model.safetensors and metrics.jsonl', async () => {
    const lines: string[] = [];
    const r = await run(base('ort-a'), lines);
    await run(base('ort-b'));
    expect(r.engine).toBe('onnxruntime');
    expect(lines.join('\n')).toMatch(/engine onnxruntime, 2 threads/);
    expect(stateOf('ort-a').options.engine).toBe('onnxruntime');
    expect(stateOf('ort-a').options.workers).toBe(1);
    expect(bytes('ort-a', 'model.safetensors').equals(bytes('ort-b', 'model.safetensors'))).toBe(true);
    expect(bytes('ort-a', 'metrics.jsonl').equals(bytes('ort-b', 'metrics.jsonl'))).toBe(true);
    const m = metricsOf('ort-a');
    expect(m.map((x) => x.epoch)).toEqual([1, 2, 3]);
    expect(m[2].train_loss).toBeLessThan(m[0].train_loss); // it learns
    expect(stateOf('ort-a').step).toBe(12);
  }, 120_000);

  it('--resume after a stop mid-epoch is bit-identical to the uninterrupted run', async () => {
    const first = await run(base('ort-cut', { maxSteps: 6 })); // inside epoch 2
    expect(first.interrupted).toBe(true);
    expect(stateOf('ort-cut').step).toBe(6);
    const lines: string[] = [];
    // No engine given: the run keeps its own (no note about a switch).
    await run(base('ort-cut', { resume: true, engine: undefined }), lines);
    expect(lines.join('\n')).not.toMatch(/continues on/);
    expect(bytes('ort-cut', 'model.safetensors').equals(bytes('ort-a', 'model.safetensors'))).toBe(true);
    expect(bytes('ort-cut', 'metrics.jsonl').equals(bytes('ort-a', 'metrics.jsonl'))).toBe(true);
    expect(stateOf('ort-cut').step).toBe(12);
  }, 120_000);

  it('agrees with the tfjs engine on the same run (same data, schedule and update)', async () => {
    await run(base('tfjs-full', { engine: 'tfjs' }));
    const a = metricsOf('ort-a');
    const b = metricsOf('tfjs-full');
    for (let i = 0; i < 3; i++) {
      expect(Math.abs(a[i].train_loss - b[i].train_loss)).toBeLessThan(1e-3 * b[i].train_loss);
      expect(Math.abs(a[i].test_loss - b[i].test_loss)).toBeLessThan(1e-3 * b[i].test_loss);
    }
  }, 120_000);
});

describe('a checkpoint resumes on the other engine', () => {
  for (const [from, to] of [
    ['onnxruntime', 'tfjs'],
    ['tfjs', 'onnxruntime'],
  ] as const) {
    it(`${from} -> ${to}: only when asked; the step count continues; losses track the uninterrupted run`, async () => {
      const out = `switch-${from}`;
      await run(base(out, { engine: from, maxSteps: 6 }));
      expect(stateOf(out).options.engine).toBe(from);
      const lines: string[] = [];
      await run(base(out, { resume: true, engine: to }), lines);
      expect(lines.join('\n')).toMatch(new RegExp(`trained on the ${from} engine and continues on ${to}`));
      expect(lines.join('\n')).toMatch(/resuming .* at epoch 2, step 6/);
      const state = stateOf(out);
      expect(state.step).toBe(12);
      expect(state.options.engine).toBe(to);
      // Same data order and schedule; the engines differ in float rounding only.
      const ref = metricsOf(from === 'onnxruntime' ? 'ort-a' : 'tfjs-full');
      const got = metricsOf(out);
      expect(got.map((m) => m.epoch)).toEqual([1, 2, 3]);
      for (let i = 0; i < 3; i++) {
        expect(Math.abs(got[i].train_loss - ref[i].train_loss)).toBeLessThan(1e-3 * ref[i].train_loss);
      }
    }, 120_000);
  }
});

describe('choosing the engine', () => {
  it('onnxruntime that cannot load: one line, training on tfjs; a stored run is left as it is', async () => {
    const cut = await run(base('fallback-resume', { maxSteps: 2 })); // an onnxruntime run, stopped
    expect(cut.interrupted).toBe(true);
    const files = ['model.safetensors', 'metrics.jsonl', join('checkpoints', 'latest')];
    const before = files.map((f) => bytes('fallback-resume', f));
    setOnnxruntimeImporter(() => Promise.reject(new Error('no binary for this platform')));
    for (const engine of [undefined, 'onnxruntime'] as const) {
      const lines: string[] = [];
      const out = `fallback-${engine ?? 'default'}`;
      const r = await run(base(out, { engine, epochs: 1, workers: 0 }), lines);
      expect(r.engine).toBe('tfjs');
      const said = lines.filter((l) => /onnxruntime/.test(l));
      expect(said).toHaveLength(1);
      expect(said[0]).toMatch(
        /^onnxruntime-node could not be loaded \(no binary for this platform\): training on the tfjs engine/,
      );
      expect(stateOf(out).options.engine).toBe('tfjs');
    }
    // Resuming the onnxruntime run without onnxruntime: the line, a note, and (stopped before a step)
    // nothing saved is touched.
    const lines: string[] = [];
    await run(base('fallback-resume', { resume: true, engine: undefined, maxSteps: 2 }), lines);
    expect(lines.join('\n')).toMatch(/could not be loaded .*training on the tfjs engine/);
    expect(lines.join('\n')).toMatch(/trained on the onnxruntime engine and continues on tfjs/);
    expect(lines.join('\n')).toMatch(/stopped before training started: nothing was saved/);
    files.forEach((f, k) => expect(bytes('fallback-resume', f).equals(before[k]), f).toBe(true));
    expect(stateOf('fallback-resume').options.engine).toBe('onnxruntime');
  }, 120_000);

  it('an unknown engine is a UsageError naming the flag', async () => {
    await expect(run(base('bad-engine', { engine: 'torch' as never }))).rejects.toThrow(
      /--engine must be onnxruntime or tfjs, got torch/,
    );
    await expect(run(base('ort-a', { resume: true, engine: 'torch' as never }))).rejects.toThrow(UsageError);
  });

  it('dropout: trains on onnxruntime (host-drawn masks), resumes bit-identically, tracks the tfjs engine', async () => {
    const cfg = join(dir, 'dropout.json');
    writeFileSync(
      cfg,
      JSON.stringify({ ...small, hidden_dropout_prob: 0.1, attention_probs_dropout_prob: 0.1 }),
    );
    const o = { config: cfg, epochs: 3 };
    await run(base('dropout-full', o));
    await run(base('dropout-cut', { ...o, maxSteps: 5 }));
    await run(base('dropout-cut', { ...o, resume: true }));
    expect(bytes('dropout-cut', 'model.safetensors').equals(bytes('dropout-full', 'model.safetensors'))).toBe(
      true,
    );
    expect(bytes('dropout-cut', 'metrics.jsonl').equals(bytes('dropout-full', 'metrics.jsonl'))).toBe(true);
    // Dropout changes the run (the masks are applied) ...
    const plain = metricsOf('ort-a');
    const ort = metricsOf('dropout-full');
    expect(ort[0].train_loss).not.toBe(plain[0].train_loss);
    // ... and the two engines draw different masks but train alike: within 3% on every epoch's losses.
    await run(base('dropout-tfjs', { ...o, engine: 'tfjs', workers: 0 }));
    const eager = metricsOf('dropout-tfjs');
    for (let i = 0; i < 3; i++) {
      expect(Math.abs(ort[i].train_loss - eager[i].train_loss) / eager[i].train_loss).toBeLessThan(0.03);
      expect(Math.abs(ort[i].test_loss - eager[i].test_loss) / eager[i].test_loss).toBeLessThan(0.03);
    }
  }, 180_000);

  it('a config that does not fit fails before training, naming the field; nothing is written', async () => {
    const cfg = join(dir, 'bad.json');
    writeFileSync(cfg, JSON.stringify({ ...small, hidden_size: 25 }));
    const err = await run(base('bad-config', { config: cfg })).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(EinvitError);
    expect(err).toBeInstanceOf(CheckpointError);
    expect((err as Error).message).toMatch(/hidden_size/);
    expect(existsSync(join(dir, 'bad-config', 'checkpoints', 'latest'))).toBe(false);
  });
});

describe('memory on the onnxruntime engine', () => {
  it('tensors, resident memory and sessions stay flat across epochs; sessions are released', async () => {
    let created = 0;
    let released = 0;
    setOnnxruntimeImporter(async () => {
      const m = (await import('onnxruntime-node')) as unknown as {
        default?: typeof import('onnxruntime-node');
      };
      const ort = (m.default ?? m) as typeof import('onnxruntime-node');
      return {
        ...ort,
        InferenceSession: {
          create: async (...args: Parameters<typeof ort.InferenceSession.create>) => {
            const s = await ort.InferenceSession.create(...args);
            created++;
            const release = s.release.bind(s);
            s.release = () => {
              released++;
              return release();
            };
            return s;
          },
        },
      };
    });
    const before = tf.memory().numTensors;
    const rows: { tensors: number; rss: number }[] = [];
    await run(
      base('memory', {
        epochs: 8,
        onEpoch: () => rows.push({ tensors: tf.memory().numTensors, rss: process.memoryUsage().rss }),
      }),
    );
    expect(created).toBe(2); // the step and the evaluation graph, once per run
    expect(released).toBe(2);
    expect(new Set(rows.map((r) => r.tensors)).size).toBe(1);
    // After warm-up, resident memory moves by allocator noise only (a leak of the step's buffers
    // would add ~1 MB per step here, 4 steps an epoch).
    const growth = (rows[7].rss - rows[2].rss) / 2 ** 20;
    expect(
      growth,
      `rss per epoch: ${rows.map((r) => (r.rss / 2 ** 20).toFixed(0)).join(', ')} MB`,
    ).toBeLessThan(8);
    expect(tf.memory().numTensors).toBe(before);
    // Stopped runs release their sessions too.
    await run(base('memory-stop', { maxSteps: 3 }));
    expect(created).toBe(4);
    expect(released).toBe(4);
  }, 180_000);
});
