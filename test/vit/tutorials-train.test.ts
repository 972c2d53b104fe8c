// `einvit train --config cifar-tutorial`: the CIFAR tutorial's architecture and recipe (constant lr 0.01,
// batch 256 unless overridden) train end to end, and the run's checkpoints are in the tutorial's own
// per-head state_dict names with its constructor arguments as config.json, which resume reads back.
import { mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ready } from '../../src/index.js';
import { train } from '../../src/train/trainer.js';
import { writePng } from '../../src/image/png.js';
import { openSafetensors } from '../../src/vit/safetensors.js';
import { Rng } from '../../src/train/random.js';

const root = mkdtempSync(join(tmpdir(), 'einvit-tutorial-train-'));
afterAll(() => rmSync(root, { recursive: true, force: true }));
const data = join(root, 'shapes');

beforeAll(async () => {
  await ready('wasm');
  const rng = new Rng(3);
  for (const [c, name] of ['red', 'blue'].entries()) {
    mkdirSync(join(data, name), { recursive: true });
    for (let v = 0; v < 8; v++) {
      const px = new Uint8Array(32 * 32 * 3);
      for (let i = 0; i < 32 * 32; i++) {
        px[i * 3 + (c === 0 ? 0 : 2)] = 128 + Math.floor(rng.nextFloat() * 127);
        px[i * 3 + 1] = Math.floor(rng.nextFloat() * 60);
      }
      writePng(join(data, name, `${v}.png`), { width: 32, height: 32, data: px });
    }
  }
});

describe('training the CIFAR tutorial preset', () => {
  it('constant lr 0.01 by default; checkpoints in the tutorial names; resume reads them', async () => {
    const out = join(root, 'run');
    const common = { data: `folder:${data}`, out, config: 'cifar-tutorial', batchSize: 8, seed: 1 };
    const quiet = { progress: false, plots: false, log: () => undefined };
    const r1 = await train({ ...common, ...quiet, epochs: 2, maxSteps: 2 });
    r1.model.dispose();
    const r2 = await train({ ...common, ...quiet, resume: true });
    expect(r2.model.config.naming).toBe('cifar-tutorial');
    expect(r2.model.config.hidden_act).toBe('gelu_new');
    r2.model.dispose();
    const metrics = readFileSync(join(out, 'metrics.jsonl'), 'utf8')
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as { lr: number });
    expect(metrics.map((m) => m.lr)).toEqual([0.01, 0.01]);
    const cfg = JSON.parse(readFileSync(join(out, 'config.json'), 'utf8')) as Record<string, unknown>;
    expect(cfg.source_code).toBe('seed-002');
    expect(cfg.num_classes).toBe(2);
    const f = openSafetensors(join(out, 'model.safetensors'));
    const keys = f.keys();
    f.close();
    expect(keys).toContain('encoder.blocks.3.attention.heads.3.value.weight');
    expect(keys).toContain('classifier.weight');
    expect(keys.some((k) => k.startsWith('blocks.'))).toBe(false);
  });
});
