import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { PRESETS } from '../../src/vit/config.js';

const dir = mkdtempSync(join(tmpdir(), 'einvit-sigint-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

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

/** Runs `einvit train args`; sends SIGINT when the output first matches `when` (or after `when` ms). */
async function interrupted(
  args: string[],
  when: RegExp | number,
): Promise<{ code: number | null; signal: string | null; output: string }> {
  const child = spawn(process.execPath, ['--import', 'tsx', cli, 'train', '--backend', 'wasm', ...args], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  let signalled = false;
  if (typeof when === 'number') {
    setTimeout(() => {
      signalled = true;
      child.kill('SIGINT');
    }, when);
  }
  return new Promise((resolve) => {
    const onData = (chunk: Buffer) => {
      output += chunk.toString();
      if (!signalled && when instanceof RegExp && when.test(output)) {
        signalled = true;
        child.kill('SIGINT');
      }
    };
    child.stdout.on('data', onData);
    child.stderr.on('data', onData);
    child.on('close', (code, signal) => resolve({ code, signal, output }));
  });
}

describe('einvit train and Ctrl-C', () => {
  it('saves a checkpoint, says so, and exits with code 0', async () => {
    const flags = ['--config', config, '--epochs', '50', '--batch-size', '16', '--limit-train', '512'];
    const { code, output } = await interrupted(
      [...flags, '--limit-test', '32', '--workers', '0', '--out', out],
      // Interrupt once the first epoch has finished (its metrics line is printed).
      /epoch 1\/50 {2}train loss/,
    );
    expect(output).toMatch(/stopped at epoch \d+, step \d+: checkpoint saved/);
    expect(code).toBe(0);
    const latest = readFileSync(join(out, 'checkpoints', 'latest'), 'utf8').trim();
    const state = JSON.parse(
      readFileSync(join(out, 'checkpoints', latest, 'trainer_state.json'), 'utf8'),
    ) as {
      step: number;
    };
    expect(state.step).toBeGreaterThan(0);
    expect(existsSync(join(out, 'model.safetensors'))).toBe(true);
  }, 120_000);

  it('Ctrl-C right after a resume starts: exits 0 with a clear line, the run stays resumable', async () => {
    const latest = readFileSync(join(out, 'checkpoints', 'latest'), 'utf8');
    const model = readFileSync(join(out, 'model.safetensors'));
    const { code, output } = await interrupted(['--resume', '--out', out], /resuming /);
    expect(code, output).toBe(0);
    expect(output).not.toMatch(/Error|at .*\.ts:\d+/);
    // The signal may land before the first step (nothing saved) or after a few (a new checkpoint).
    if (/stopped before training started: nothing was saved/.test(output)) {
      expect(readFileSync(join(out, 'checkpoints', 'latest'), 'utf8')).toBe(latest);
      expect(readFileSync(join(out, 'model.safetensors')).equals(model)).toBe(true);
    } else {
      expect(output).toMatch(/stopped at epoch \d+, step \d+: checkpoint saved/);
    }
  }, 120_000);

  it('Ctrl-C during start-up: a quiet exit, nothing written', async () => {
    const early = join(dir, 'early');
    const { code, signal, output } = await interrupted(['--config', config, '--out', early], 300);
    // Before the CLI's handler exists Node's default applies (killed by SIGINT); after it, code 0.
    expect(code === 0 || signal === 'SIGINT', output).toBe(true);
    expect(output).not.toMatch(/Error|at .*\.ts:\d+/);
    expect(existsSync(join(early, 'checkpoints', 'latest'))).toBe(false);
  }, 120_000);
});
