// Ctrl-C on each trainer engine (issue 9, part 3): the CLI saves a checkpoint, says so and exits 0;
// the checkpoint records the engine and resumes.
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { PRESETS } from '../../src/vit/config.js';

const dir = mkdtempSync(join(tmpdir(), 'einvit-sigint-engines-'));
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
const cli = join(import.meta.dirname, '..', '..', 'src', 'cli', 'index.ts');

/** Runs `einvit train args`; sends SIGINT when the output first matches `when`. */
function interrupted(args: string[], when: RegExp): Promise<{ code: number | null; output: string }> {
  const child = spawn(process.execPath, ['--import', 'tsx', cli, 'train', '--backend', 'wasm', ...args], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  let signalled = false;
  return new Promise((resolve) => {
    const onData = (chunk: Buffer) => {
      output += chunk.toString();
      if (!signalled && when.test(output)) {
        signalled = true;
        child.kill('SIGINT');
      }
    };
    child.stdout.on('data', onData);
    child.stderr.on('data', onData);
    child.on('close', (code) => resolve({ code, output }));
  });
}

describe('einvit train --engine and Ctrl-C', () => {
  for (const engine of ['onnxruntime', 'tfjs']) {
    it(`${engine}: saves a checkpoint, says so, exits 0; the run records its engine`, async () => {
      const out = join(dir, engine);
      const flags = ['--config', config, '--epochs', '50', '--batch-size', '16', '--limit-train', '512'];
      const { code, output } = await interrupted(
        [...flags, '--limit-test', '32', '--workers', '0', '--engine', engine, '--out', out],
        /epoch 1\/50 {2}train loss/,
      );
      expect(output).toMatch(
        new RegExp(`engine ${engine === 'tfjs' ? 'tfjs on wasm' : 'onnxruntime, 1 thread'}`),
      );
      expect(output).toMatch(/stopped at epoch \d+, step \d+: checkpoint saved/);
      expect(output).not.toMatch(/Error|at .*\.ts:\d+/);
      expect(code, output).toBe(0);
      const latest = readFileSync(join(out, 'checkpoints', 'latest'), 'utf8').trim();
      const state = JSON.parse(
        readFileSync(join(out, 'checkpoints', latest, 'trainer_state.json'), 'utf8'),
      ) as {
        step: number;
        options: { engine: string };
      };
      expect(state.step).toBeGreaterThanOrEqual(32);
      expect(state.options.engine).toBe(engine);
      // Resumes on its own engine, and Ctrl-C there saves again.
      const again = await interrupted(['--resume', '--out', out], /epoch \d+\/50 {2}train loss/);
      expect(again.output).toMatch(new RegExp(`resuming .* step ${state.step}`));
      expect(again.output).not.toMatch(/continues on/);
      expect(again.code, again.output).toBe(0);
    }, 180_000);
  }
});
