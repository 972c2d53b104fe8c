// Issue 7, item 6: SIGKILL a real `einvit train` process at random moments (many inside checkpoint
// saves, widened by EINVIT_TEST_SAVE_DELAY_MS), resume each time with `--resume` alone, and check the
// final model and metrics are byte-identical to an uninterrupted run.
//
// The children run one esbuild bundle of the CLI (what `dist/` holds, without a 20 s tsc build): under
// tsx each start costs several seconds more, and this test starts two dozen processes.
import { spawn } from 'node:child_process';
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
import { build } from 'esbuild';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PRESETS } from '../../src/vit/config.js';
import { writePng } from '../../src/image/png.js';
import { Rng } from '../../src/train/random.js';

const repo = join(import.meta.dirname, '..', '..');
const dir = mkdtempSync(join(tmpdir(), 'einvit-kill-'));
// Inside node_modules/<folder>/ so the bundle resolves packages and `../../assets` like dist/cli/.
const bundleDir = join(repo, 'node_modules', `.einvit-kill-${process.pid}`);
const cli = join(bundleDir, 'cli.mjs');
const data = join(dir, 'data');
const config = join(dir, 'config.json');

beforeAll(async () => {
  await build({
    entryPoints: [join(repo, 'src', 'cli', 'index.ts')],
    outfile: cli,
    bundle: true,
    platform: 'node',
    format: 'esm',
    packages: 'external',
    logLevel: 'error',
  });
  // Two classes of 8x8 images: a bright square top-left or bottom-right, with noise.
  const rng = new Rng(5);
  for (const [k, cls] of ['left', 'right'].entries()) {
    mkdirSync(join(data, cls), { recursive: true });
    for (let i = 0; i < 15; i++) {
      const px = new Uint8Array(8 * 8 * 3);
      for (let y = 0; y < 8; y++) {
        for (let x = 0; x < 8; x++) {
          const on = k === 0 ? x < 4 && y < 4 : x >= 4 && y >= 4;
          px.fill((on ? 180 : 40) + rng.nextInt(60), (y * 8 + x) * 3, (y * 8 + x) * 3 + 3);
        }
      }
      writePng(join(data, cls, `${i}.png`), { width: 8, height: 8, data: px });
    }
  }
  writeFileSync(
    config,
    JSON.stringify({
      ...PRESETS.tiny,
      image_size: 8,
      patch_size: 4,
      hidden_size: 8,
      num_hidden_layers: 1,
      num_attention_heads: 2,
      intermediate_size: 16,
      hidden_dropout_prob: 0.1,
      num_labels: 2,
      id2label: { 0: 'left', 1: 'right' },
      label2id: { left: 0, right: 1 },
    }),
  );
}, 60_000);

afterAll(() => {
  rmSync(dir, { recursive: true, force: true });
  rmSync(bundleDir, { recursive: true, force: true });
});

const EPOCHS = 30;
const flags = (out: string) => [
  ...['--data', `folder:${data}`, '--config', config, '--epochs', String(EPOCHS), '--batch-size', '12'],
  ...['--seed', '0', '--workers', '0', '--out', out],
];

interface Child {
  code: number | null;
  signal: NodeJS.Signals | null;
  output: string;
  /** The child was inside a checkpoint save when it was killed. */
  inSave: boolean;
  /** performance.now() when each epoch's line arrived. */
  epochAt: number[];
}

/** Runs the CLI; `killer` may kill it (it gets the process and a promise of the first "training" line). */
function run(
  args: string[],
  env: Record<string, string> = {},
  killer?: (kill: (sig: NodeJS.Signals) => void, line: (n: number) => Promise<void>) => void,
): Promise<Child> {
  const child = spawn(process.execPath, [cli, 'train', '--backend', 'wasm', ...args], {
    cwd: repo,
    env: { ...process.env, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  let saving = false;
  let inSave = false;
  const epochAt: number[] = [];
  // Waiters for the n-th output line after the "training" / "resuming" line.
  let lines = -1;
  const waiters: { n: number; resolve: () => void }[] = [];
  const line = (n: number) =>
    new Promise<void>((resolve) => (lines >= n ? resolve() : waiters.push({ n, resolve })));
  const onData = (chunk: Buffer) => {
    const text = chunk.toString();
    output += text;
    for (const _ of text.matchAll(/^epoch \d+\/\d+ {2}train loss/gm)) epochAt.push(performance.now());
    for (const l of text.split('\n').filter((x) => x !== '')) {
      if (lines >= 0 || /^(training|resuming) /.test(l)) lines++;
    }
    for (const w of waiters.filter((x) => lines >= x.n)) w.resolve();
    for (const [, stage] of text.matchAll(/^\[save\] (\w+)$/gm)) saving = stage !== 'end';
  };
  child.stdout.on('data', onData);
  child.stderr.on('data', onData);
  killer?.((sig) => {
    if (child.exitCode !== null || child.signalCode !== null) return;
    if (sig === 'SIGKILL') inSave = saving;
    child.kill(sig);
  }, line);
  return new Promise((resolve) => {
    child.on('close', (code, signal) => resolve({ code, signal, output, inSave, epochAt }));
  });
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe('SIGKILL at random moments, then --resume', () => {
  it('always resumes, and ends byte-identical to an uninterrupted run', async () => {
    const delay = 15; // ms per save stage: 8 stages, so a good part of each epoch is inside a save
    const t0 = performance.now();
    const ref = join(dir, 'ref');
    const whole = await run(flags(ref));
    expect(whole.code, whole.output).toBe(0);
    const refSeconds = (performance.now() - t0) / 1000;
    const at = whole.epochAt;
    const linesPerEpoch = 2 + 8 + 1; // progress at 50% and 100%, 8 save stages, the epoch's line
    const gapMs = (at[at.length - 1] - at[0]) / (at.length - 1) / linesPerEpoch + delay;
    if (process.env.EINVIT_KILL_DEBUG) console.error(`ref ${refSeconds} gap ${gapMs} ms`);

    const out = join(dir, 'killed');
    const rng = new Rng(Number(process.env.EINVIT_KILL_SEED ?? Date.now() % 1e9));
    let kills = 0;
    let inSave = 0;
    let sigints = 0;
    const log: string[] = [];
    while (kills < 20 || inSave < 4) {
      expect(kills, `only ${inSave} of ${kills} kills landed inside a save`).toBeLessThan(60);
      const resumable = existsSync(join(out, 'checkpoints', 'latest'));
      const r = await run(
        resumable ? ['--resume', '--out', out] : flags(out),
        { EINVIT_TEST_SAVE_DELAY_MS: String(delay) },
        (kill, line) => {
          void (async () => {
            const mode = rng.nextFloat();
            if (mode < 0.15) {
              await sleep(rng.nextFloat() * 1500); // during start-up or loading the checkpoint
            } else {
              // A random output line of the next two epochs or so (progress, save stages, epoch
              // lines), then a random part of the usual gap between lines: random moments that
              // follow the process whatever the machine's speed.
              await line(rng.nextInt(2 * linesPerEpoch));
              await sleep(rng.nextFloat() * gapMs);
              if (mode > 0.8) {
                kill('SIGINT'); // then kill it while it saves a mid-epoch checkpoint
                sigints++;
                await sleep(rng.nextFloat() * 10 * gapMs);
              }
            }
            kill('SIGKILL');
          })();
        },
      );
      if (process.env.EINVIT_KILL_DEBUG) {
        console.error(
          `${((performance.now() - t0) / 1000).toFixed(1)}s ${r.signal ?? r.code} ${r.inSave} ${r.output
            .split('\n')
            .filter((l) => /^epoch \d+\/\d+ {2}train|resuming|stopped/.test(l))
            .join(' | ')}`,
        );
      }
      if (r.signal === 'SIGKILL') {
        kills++;
        if (r.inSave) inSave++;
        log.push(`${kills}${r.inSave ? ' (in a save)' : ''}`);
        continue;
      }
      // Stopped by SIGINT before the SIGKILL, or finished: it must have exited cleanly.
      expect(r.code, r.output).toBe(0);
      expect(r.output).not.toMatch(/is finished/); // the run must not end before the kills are done
    }
    const last = await run(['--resume', '--out', out]);
    expect(last.code, last.output).toBe(0);

    for (const f of ['model.safetensors', 'metrics.jsonl']) {
      expect(
        readFileSync(join(out, f)).equals(readFileSync(join(ref, f))),
        `${f} after ${log.join(', ')}`,
      ).toBe(true);
    }
    const epochsSeen = readFileSync(join(out, 'metrics.jsonl'), 'utf8')
      .trim()
      .split('\n')
      .map((l) => (JSON.parse(l) as { epoch: number }).epoch);
    expect(epochsSeen).toEqual(Array.from({ length: EPOCHS }, (_, i) => i + 1));
    // Nothing left behind: one checkpoint, no staging folders, no temporary files.
    expect(readdirSync(join(out, 'checkpoints')).sort()).toEqual(['latest', `step-${EPOCHS * 2}`]);
    expect(readdirSync(out).filter((f) => f.includes('tmp') || f.startsWith('.'))).toEqual([]);
    const seconds = (performance.now() - t0) / 1000;
    console.log(
      `${kills} SIGKILLs (${inSave} inside a save, ${sigints} after a SIGINT), ${seconds.toFixed(1)} s ` +
        `(uninterrupted run ${refSeconds.toFixed(1)} s)`,
    );
  }, 480_000);
});
