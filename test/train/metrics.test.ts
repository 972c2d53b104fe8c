import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { afterAll, describe, expect, it } from 'vitest';
import { writeFileAtomic, writeJsonAtomic } from '../../src/train/atomic.js';
import {
  accuracyOf,
  appendMetrics,
  confusionMatrix,
  formatConfusion,
  perClassAccuracy,
} from '../../src/train/metrics.js';
import { Progress } from '../../src/train/progress.js';

const root = mkdtempSync(join(tmpdir(), 'einvit-metrics-'));
afterAll(() => rmSync(root, { recursive: true, force: true }));

describe('metrics', () => {
  it('appends JSON lines, creating the folder', () => {
    const path = join(root, 'run', 'metrics.jsonl');
    appendMetrics(path, { epoch: 1, loss: 0.5 });
    appendMetrics(path, { epoch: 2, loss: 0.25, acc: 0.9 });
    const lines = readFileSync(path, 'utf8')
      .trimEnd()
      .split('\n')
      .map((l) => JSON.parse(l));
    expect(lines).toEqual([
      { epoch: 1, loss: 0.5 },
      { epoch: 2, loss: 0.25, acc: 0.9 },
    ]);
  });

  it('builds a confusion matrix (rows = labels) with per-class accuracy', () => {
    const pred = Int32Array.of(0, 1, 1, 2, 2, 2, 0);
    const labels = Int32Array.of(0, 1, 0, 2, 2, 1, 0);
    const m = confusionMatrix(pred, labels, 3);
    expect(m).toEqual([
      [2, 1, 0],
      [0, 1, 1],
      [0, 0, 2],
    ]);
    expect(perClassAccuracy(m)).toEqual([2 / 3, 0.5, 1]);
    expect(accuracyOf(m)).toBeCloseTo(5 / 7, 12);
    expect(
      perClassAccuracy([
        [0, 0],
        [1, 1],
      ])[0],
    ).toBeNaN();
    expect(() => confusionMatrix(Int32Array.of(3), Int32Array.of(0), 3)).toThrow(/prediction 3/);
    expect(() => confusionMatrix(Int32Array.of(0), Int32Array.of(0, 1), 3)).toThrow(
      /1 predictions but 2 labels/,
    );
  });

  it('formats an aligned table', () => {
    const text = formatConfusion(
      [
        [12, 1],
        [0, 100],
      ],
      ['cat', 'dog'],
    );
    expect(text).toBe(
      ['true \\ pred   0   1    acc', '0 cat        12   1  92.3%', '1 dog         0 100 100.0%'].join('\n'),
    );
    expect(() => formatConfusion([[1]], ['a', 'b'])).toThrow(/2 class names/);
  });
});

describe('atomic writes', () => {
  it('replaces the file in one step and leaves no temp files', () => {
    const path = join(root, 'state.json');
    writeFileSync(path, 'old');
    writeJsonAtomic(path, { epoch: 3, rng: 12345 });
    expect(JSON.parse(readFileSync(path, 'utf8'))).toEqual({ epoch: 3, rng: 12345 });
    writeFileAtomic(join(root, 'bytes.bin'), Uint8Array.of(1, 2, 3));
    expect([...readFileSync(join(root, 'bytes.bin'))]).toEqual([1, 2, 3]);
    expect(readdirSync(root).filter((f) => f.endsWith('.tmp'))).toEqual([]);
  });

  it('throws an EinopsError naming the path when the folder is missing', () => {
    const path = join(root, 'no', 'such', 'x.json');
    expect(() => writeJsonAtomic(path, 1)).toThrow(/cannot write .*x\.json/);
    expect(existsSync(path)).toBe(false);
  });
});

describe('Progress (plain mode)', () => {
  it('prints one line per 25% and a final line', () => {
    let out = '';
    const stream = new Writable({
      write(chunk, _enc, cb) {
        out += chunk.toString();
        cb();
      },
    });
    const p = new Progress({ total: 100, title: 'epoch 1/2', everyPercent: 25, tty: false, stream });
    for (let i = 0; i < 10; i++) p.tick(10, { loss: 1 / (i + 1), acc: i / 10 });
    p.stop();
    const lines = out.trimEnd().split('\n');
    expect(lines.length).toBe(4); // 30% (first >= 25), 50%, 80% (first >= 75), 100%
    expect(lines[0]).toMatch(
      /^epoch 1\/2 {2}30% 30\/100 \| loss 0\.3333 \| acc 20\.0% \| \d+ img\/s \| eta \d+s$/,
    );
    expect(lines[3]).toMatch(/100% 100\/100 \| loss 0\.1000 \| acc 90\.0%/);
  });

  it('a resumed epoch: the images done before are shown but not counted in img/s', async () => {
    let out = '';
    const stream = new Writable({
      write(chunk, _enc, cb) {
        out += chunk.toString();
        cb();
      },
    });
    const p = new Progress({ total: 10_000, initial: 9_000, everyPercent: 5, tty: false, stream });
    const t0 = performance.now();
    await new Promise((r) => setTimeout(r, 50));
    p.tick(500, { loss: 1, acc: 0.5 });
    const seconds = (performance.now() - t0) / 1000;
    const lines = out.trimEnd().split('\n');
    expect(lines).toHaveLength(1); // 95%: the first step of 5% after the 90% already done
    const [, done, rate] = /(\d+)\/10000 .* (\d+) img\/s/.exec(lines[0])!;
    expect(Number(done)).toBe(9500);
    // 500 images in about 50 ms: near 10,000 img/s (counting the 9,000 gave >= 190,000 img/s). Node's
    // timers may fire up to a millisecond early against performance.now() (seen: 10,003 img/s).
    expect(Number(rate)).toBeGreaterThan(0);
    expect(Number(rate)).toBeLessThanOrEqual(Math.ceil(500 / 0.048));
    expect(Number(rate)).toBeGreaterThanOrEqual(Math.floor((0.9 * 500) / seconds));
  });

  it('draws a cli-progress bar in TTY mode', () => {
    let out = '';
    const stream = Object.assign(
      new Writable({
        write(chunk, _enc, cb) {
          out += chunk.toString();
          cb();
        },
      }),
      { isTTY: true, columns: 120, cursorTo: () => true, clearLine: () => true, moveCursor: () => true },
    );
    const p = new Progress({ total: 10, title: 'eval', stream });
    p.tick(10, { loss: 0.5, acc: 1 });
    p.stop();
    expect(out).toMatch(/eval .*100% .*loss 0\.5000 \| acc 100\.0%/);
  });
});
