// The CLI's argument errors: one line naming the flag or path as the user typed it, exit code 2.
import { spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ready } from '../../src/backends/index.js';
import { numberFlag } from '../../src/cli/options.js';
import { conformanceCommand } from '../../src/cli/conformance.js';
import { formatConfusion } from '../../src/train/metrics.js';
import { UsageError } from '../../src/errors.js';

const ROOT = join(import.meta.dirname, '..', '..');
const CLI = join(ROOT, 'src', 'cli', 'index.ts');
const dir = mkdtempSync(join(tmpdir(), 'einvit-cli-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
beforeAll(async () => {
  await ready('cpu');
});

// Runs the CLI from source as a user runs `einvit ...` (asynchronously: the event loop stays free).
function einvit(...args: string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
  const child = spawn(process.execPath, ['--import', 'tsx', CLI, '--backend', 'cpu', ...args], { cwd: ROOT });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (c: Buffer) => (stdout += c.toString()));
  child.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
  return new Promise((resolve, reject) => {
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, stdout, stderr }));
  });
}

// Asserts the UsageError that conformanceCommand throws for `paths`, with its exact message.
async function rejectsWith(paths: string[], message: string): Promise<void> {
  const error = await conformanceCommand(paths, 'cpu').then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(error).toBeInstanceOf(UsageError);
  expect((error as Error).message).toBe(message);
}

// A folder that is not a conformance folder: a training run's metrics (JSON Lines, but not cases).
const runDir = join(dir, 'run');
mkdirSync(runDir);
writeFileSync(join(runDir, 'metrics.jsonl'), '{"epoch":1,"train_loss":2.1,"test_acc":0.34}\n');
const emptyDir = join(dir, 'empty');
mkdirSync(emptyDir);

describe('einvit conformance on something that is not conformance vectors', () => {
  it('a folder of other JSON Lines: names the file, the line and what is missing', async () => {
    await rejectsWith(
      [runDir],
      `${join(runDir, 'metrics.jsonl')}:1: not an einops conformance case (no "id", "op", "pattern", ` +
        '"inputs", "expect"); expected einops conformance vectors (one JSON case per line)',
    );
  });

  it('an empty folder: an error, not "0 passed, 0 failed"', async () => {
    await rejectsWith(
      [emptyDir],
      `${emptyDir} is not a conformance folder: it holds no einops .jsonl vectors and no ViT ` +
        'reference folder (config.json + model.safetensors + io.safetensors)',
    );
  });

  it('a .jsonl file with no cases', async () => {
    const empty = join(dir, 'nothing.jsonl');
    writeFileSync(empty, '\n');
    await rejectsWith([empty], `no conformance vectors in ${empty}: the einops .jsonl files hold no cases`);
  });

  it('still runs the real vectors', async () => {
    const { lines, passed, failed } = await conformanceCommand([join(ROOT, 'test', 'conformance')], 'cpu');
    expect([passed, failed]).toEqual([441, 0]);
    expect(lines.at(-1)).toBe('441 passed, 0 failed');
  });

  it('the command exits with code 2 and one line on stderr', async () => {
    const r = await einvit('conformance', emptyDir);
    expect(r.code).toBe(2);
    expect(r.stderr.trim()).toBe(
      `einvit: ${emptyDir} is not a conformance folder: it holds no einops .jsonl vectors and no ViT reference folder (config.json + model.safetensors + io.safetensors)`,
    );
    expect(r.stdout).toBe('');
  });
});

describe('numeric flags', () => {
  it('name the flag as typed (--batch-size, not --batchSize), and --top 0 is rejected', async () => {
    const [batch, top] = await Promise.all([
      einvit('train', '--batch-size', '0'),
      einvit('predict', '--model', dir, '--top', '0', 'x.png'),
    ]);
    expect(batch.code).toBe(2);
    expect(batch.stderr.trim()).toBe("einvit: --batch-size must be a positive integer, got '0'");
    expect(top.code).toBe(2);
    expect(top.stderr.trim()).toBe("einvit: --top must be a positive integer, got '0'");
  });

  it('numberFlag checks integers and bounds', () => {
    const top = numberFlag('top', { integer: true, min: 1 });
    expect(top('3')).toBe(3);
    for (const bad of ['0', '-1', '2.5', 'abc', '', 'Infinity']) expect(() => top(bad)).toThrow(UsageError);
    const smoothing = numberFlag('label-smoothing', { min: 0, below: 1 });
    expect(smoothing('0')).toBe(0);
    expect(() => smoothing('1')).toThrow("--label-smoothing must be a number >= 0 and < 1, got '1'");
    expect(numberFlag('lr', { above: 0 })('2e-3')).toBe(0.002);
    expect(() => numberFlag('lr', { above: 0 })('0')).toThrow("--lr must be a number > 0, got '0'");
    expect(numberFlag('seed', { integer: true })('-4')).toBe(-4);
  });
});

describe('eval confusion matrix', () => {
  it('labels rows once when the class names are the indices (MNIST), index and name otherwise', () => {
    const m = [
      [5, 1, 0],
      [0, 7, 0],
      [2, 0, 9],
    ];
    expect(formatConfusion(m, ['0', '1', '2'])).toBe(
      [
        'true \\ pred 0 1 2    acc',
        '0           5 1 0  83.3%',
        '1           0 7 0 100.0%',
        '2           2 0 9  81.8%',
      ].join('\n'),
    );
    expect(formatConfusion(m, ['cat', 'dog', 'emu']).split('\n')[1]).toBe('0 cat       5 1 0  83.3%');
  });
});
