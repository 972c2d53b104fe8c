import {
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ready, tf } from '../../src/index.js';
import { ViT } from '../../src/vit/model.js';
import { PRESETS } from '../../src/vit/config.js';
import { AdamW } from '../../src/train/optimizer.js';
import {
  latestCheckpoint,
  loadRunCheckpoint,
  openRun,
  saveRunCheckpoint,
} from '../../src/train/checkpoint.js';
import { CheckpointError } from '../../src/errors.js';

const dir = mkdtempSync(join(tmpdir(), 'einvit-ckpt-'));
const cfg = {
  ...PRESETS.tiny,
  hidden_size: 8,
  num_hidden_layers: 1,
  num_attention_heads: 2,
  intermediate_size: 16,
};

beforeAll(async () => {
  await ready('wasm');
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function files(step: number) {
  return {
    state: { step },
    preprocessor: { image_mean: [0.5] },
    metrics: [{ epoch: 1, test_acc: 0.5 }],
    timings: [{ epoch: 1, elapsed_s: 1 }],
  };
}

describe('run checkpoints', () => {
  it('saves one unit, shows it at the top of the run, keeps one checkpoint, loads it back', async () => {
    const run = join(dir, 'a');
    const before = tf.memory().numTensors;
    const model = ViT.create(cfg, 1);
    const opt = new AdamW(model.parameters());
    expect(openRun(run)).toBeUndefined();
    await saveRunCheckpoint(run, model, opt, files(4));
    await saveRunCheckpoint(run, model, opt, files(8));
    expect(readdirSync(join(run, 'checkpoints')).sort()).toEqual(['latest', 'step-8']);
    expect(latestCheckpoint(run)).toBe(join(run, 'checkpoints', 'step-8'));
    for (const f of ['config.json', 'model.safetensors', 'preprocessor_config.json', 'metrics.jsonl']) {
      expect(readFileSync(join(run, f)).equals(readFileSync(join(run, 'checkpoints', 'step-8', f))), f).toBe(
        true,
      );
    }
    expect(readFileSync(join(run, 'metrics.jsonl'), 'utf8')).toBe('{"epoch":1,"test_acc":0.5}\n');
    // The run folder is a model folder.
    const again = await ViT.fromPretrained(run);
    expect(again.config.hidden_size).toBe(8);
    again.dispose();
    const loaded = await loadRunCheckpoint(latestCheckpoint(run)!, () => 0.05);
    expect(loaded.state).toEqual({ step: 8 });
    expect(loaded.model.parameters().get('cls_token')!.dataSync()).toEqual(
      model.parameters().get('cls_token')!.dataSync(),
    );
    loaded.model.dispose();
    loaded.opt.dispose();
    model.dispose();
    opt.dispose();
    expect(tf.memory().numTensors).toBe(before);
  });

  it('openRun removes what a crash left and re-links the top of the run to latest', async () => {
    const run = join(dir, 'a');
    const ckpts = join(run, 'checkpoints');
    // A crash inside a save (a staging folder), after its rename but before the commit (an orphan
    // step folder), and temporary files of every writer.
    mkdirSync(join(ckpts, '.staging-123-abcd'));
    writeFileSync(join(ckpts, '.staging-123-abcd', 'model.safetensors'), 'partial');
    mkdirSync(join(ckpts, 'step-12'));
    writeFileSync(join(run, 'model.safetensors.tmp-123'), 'x');
    writeFileSync(join(run, '.metrics.jsonl.123.abcd1234.tmp'), 'x');
    writeFileSync(join(ckpts, '.latest.123.abcd1234.tmp'), 'x');
    // A crash after the commit but before the top was re-linked: the top shows an older model.
    rmSync(join(run, 'model.safetensors'));
    writeFileSync(join(run, 'model.safetensors'), 'old');
    expect(openRun(run)).toBe(join(ckpts, 'step-8'));
    expect(readdirSync(ckpts).sort()).toEqual(['latest', 'step-8']);
    expect(readdirSync(run).filter((f) => f.includes('tmp'))).toEqual([]);
    expect(
      readFileSync(join(run, 'model.safetensors')).equals(
        readFileSync(join(ckpts, 'step-8', 'model.safetensors')),
      ),
    ).toBe(true);
  });

  it('a pointer to nowhere, or a checkpoint whose files disagree, is a CheckpointError', async () => {
    const run = join(dir, 'b');
    mkdirSync(join(run, 'checkpoints'), { recursive: true });
    writeFileSync(join(run, 'checkpoints', 'latest'), 'step-5\n');
    expect(() => openRun(run)).toThrow(CheckpointError);
    const model = ViT.create(cfg, 1);
    const opt = new AdamW(model.parameters());
    rmSync(join(run, 'checkpoints', 'latest'));
    const saved = await saveRunCheckpoint(run, model, opt, files(3));
    writeFileSync(join(saved, 'trainer_state.json'), JSON.stringify({ step: 4 }));
    await expect(loadRunCheckpoint(saved, () => 0)).rejects.toThrow(
      /is from step 3, trainer_state.json from step 4/,
    );
    expect(existsSync(join(run, 'model.safetensors'))).toBe(true);
    model.dispose();
    opt.dispose();
  });
});
