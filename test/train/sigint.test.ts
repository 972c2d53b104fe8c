import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { PRESETS } from '../../src/vit/config.js';

const dir = mkdtempSync(join(tmpdir(), 'einvit-sigint-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('einvit train and Ctrl-C', () => {
  it('saves a checkpoint, says so, and exits with code 0', async () => {
    const config = join(dir, 'config.json');
    writeFileSync(
      config,
      JSON.stringify({
        ...PRESETS.tiny,
        hidden_size: 24,
        num_hidden_layers: 1,
        num_attention_heads: 2,
        intermediate_size: 48,
      }),
    );
    const out = join(dir, 'run');
    const cli = join(import.meta.dirname, '..', '..', 'src', 'cli', 'index.ts');
    const child = spawn(
      process.execPath,
      [
        '--import',
        'tsx',
        cli,
        'train',
        '--config',
        config,
        '--epochs',
        '50',
        '--batch-size',
        '16',
        '--limit-train',
        '512',
        '--limit-test',
        '32',
        '--workers',
        '0',
        '--out',
        out,
        '--backend',
        'wasm',
      ],
      { stdio: ['ignore', 'pipe', 'pipe'] },
    );
    let output = '';
    let signalled = false;
    const code = await new Promise<number | null>((resolve) => {
      const onData = (chunk: Buffer) => {
        output += chunk.toString();
        // Interrupt once the first epoch has finished (its metrics line is printed).
        if (!signalled && /epoch 1\/50 {2}train loss/.test(output)) {
          signalled = true;
          child.kill('SIGINT');
        }
      };
      child.stdout.on('data', onData);
      child.stderr.on('data', onData);
      child.on('exit', (c) => resolve(c));
    });
    expect(output).toMatch(/stopped at epoch \d+, step \d+: checkpoint saved/);
    expect(code).toBe(0);
    const state = JSON.parse(readFileSync(join(out, 'trainer_state.json'), 'utf8')) as { step: number };
    expect(state.step).toBeGreaterThan(0);
    expect(existsSync(join(out, 'model.safetensors'))).toBe(true);
  }, 120_000);
});
