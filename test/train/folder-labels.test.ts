// Item 11/12 end to end: a model trained on `folder:` data is named by its class folders in config.json,
// `predict` and `eval` print those names, the training data's polarity is saved, and `predict` inverts
// a dark-on-light digit for a model trained on light-on-dark ones.
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PNG } from 'pngjs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ready, tf } from '../../src/index.js';
import { train } from '../../src/train/trainer.js';
import { evalCommand } from '../../src/cli/run.js';
import { predictCommand } from '../../src/cli/predict.js';
import { attentionCommand } from '../../src/cli/attention.js';
import { PRESETS } from '../../src/vit/config.js';
import { writePng } from '../../src/image/png.js';
import { invertImage, type RgbImage } from '../../src/image/index.js';

const root = mkdtempSync(join(tmpdir(), 'einvit-folder-labels-'));
afterAll(() => rmSync(root, { recursive: true, force: true }));

/** A 28x28 digit drawn in white strokes on black: '7' (bar + diagonal) or '3' (three bars + right side). */
export function digit(kind: '7' | '3', variant: number): RgbImage {
  const gray = new Uint8Array(28 * 28);
  const dx = (variant % 3) - 1;
  const dy = (Math.floor(variant / 3) % 3) - 1;
  const ink = 200 + ((variant * 17) % 56);
  const dot = (x: number, y: number) => {
    for (let oy = 0; oy < 3; oy++)
      for (let ox = 0; ox < 3; ox++) {
        const px = Math.round(x) + ox + dx;
        const py = Math.round(y) + oy + dy;
        if (px >= 0 && px < 28 && py >= 0 && py < 28) gray[py * 28 + px] = ink;
      }
  };
  for (let t = 0; t <= 12; t++) {
    dot(8 + t, 6); // top bar (both digits)
    if (kind === '7') dot(20 - t * 0.6, 6 + t * 1.3);
    else {
      dot(9 + t * 0.9, 13);
      dot(8 + t, 20);
      dot(20, 6 + t * 1.2);
    }
  }
  const data = new Uint8Array(28 * 28 * 3);
  gray.forEach((v, i) => data.fill(v, i * 3, i * 3 + 3));
  return { width: 28, height: 28, data };
}

const data = join(root, 'digits');
const out = join(root, 'run');
const lines: string[] = [];

beforeAll(async () => {
  await ready('wasm');
  for (const [name, kind] of [
    ['seven', '7'],
    ['three', '3'],
  ] as const) {
    mkdirSync(join(data, name), { recursive: true });
    for (let v = 0; v < 12; v++) writePng(join(data, name, `${v}.png`), digit(kind, v));
  }
  // The default config (tiny, 10 labels), as `einvit train --data folder:<dir> --epochs 2` runs it.
  const r = await train({
    data: `folder:${data}`,
    out,
    epochs: 2,
    batchSize: 8,
    seed: 1,
    plots: true,
    progress: false,
    log: (l) => lines.push(l),
  });
  r.model.dispose();
}, 300_000);

describe('folder data: labels from the folder names', () => {
  it('adapts the default config to 2 classes, says so, and saves the folder names', () => {
    expect(lines).toContain('config: 2 classes (num_labels 10 -> 2 for folder-train), labels: seven, three');
    const cfg = JSON.parse(readFileSync(join(out, 'config.json'), 'utf8')) as Record<string, unknown>;
    expect(cfg.num_labels ?? Object.keys(cfg.id2label as object).length).toBe(2);
    expect(cfg.id2label).toEqual({ '0': 'seven', '1': 'three' });
    expect(cfg.label2id).toEqual({ seven: 0, three: 1 });
  });

  it('records the polarity of the training images', () => {
    const pre = JSON.parse(readFileSync(join(out, 'preprocessor_config.json'), 'utf8')) as Record<
      string,
      unknown
    >;
    expect(pre.einvit_polarity).toBe('light-on-dark');
  });

  it('eval and predict print the folder names', async () => {
    const ev = await evalCommand(out, `folder:${data}`);
    expect(ev.filter((l) => /^ {2}(seven|three) +\d+\.\d\d%$/.test(l))).toHaveLength(2);
    const png = join(data, 'seven', '0.png');
    const top = await predictCommand(out, [png], 2);
    expect(top[0]).toBe(png);
    expect(
      top
        .slice(1)
        .map((l) => l.replace(/^\s+\d+\.\d\d%\s+/, ''))
        .sort(),
    ).toEqual(['seven (0)', 'three (1)']);
  });

  it('inverts a dark digit on white paper for a light-on-dark model, and says so', async () => {
    const white = join(root, 'seven-white-on-black.png');
    const paper = join(root, 'seven-on-paper.png');
    writePng(white, digit('7', 4));
    writePng(paper, invertImage(digit('7', 4)));
    const before = tf.memory().numTensors;
    const [a, b] = [await predictCommand(out, [white], 2), await predictCommand(out, [paper], 2)];
    expect(a).toHaveLength(3); // no note for the training polarity
    expect(b[1]).toBe(
      '  note: inverted: dark-on-light image, the model was trained on light-on-dark (--invert never to keep it)',
    );
    expect(b.slice(2)).toEqual(a.slice(1)); // same input bits, same probabilities
    const kept = await predictCommand(out, [paper], 2, 'never');
    expect(kept[1]).toMatch(/^ {2}note: not inverted \(--invert never\): dark-on-light image/);
    expect(kept.slice(2)).not.toEqual(a.slice(1));
    const forced = await predictCommand(out, [white], 2, 'always');
    expect(forced[1]).toBe('  note: inverted (--invert always)');
    expect(forced.slice(2)).toEqual(kept.slice(2));
    expect(tf.memory().numTensors).toBe(before);
  });

  it('rejects --top 0', async () => {
    await expect(predictCommand(out, [join(data, 'seven', '0.png')], 0)).rejects.toThrow(
      /--top must be a positive integer, got 0/,
    );
  });

  it('draws labelled attention sheets of the same layout in training and `einvit attention`', async () => {
    const sheet = PNG.sync.read(readFileSync(join(out, 'attention.png')));
    const maps = join(root, 'maps.png');
    const before = tf.memory().numTensors;
    const notes = await attentionCommand(
      out,
      [join(data, 'seven', '0.png'), join(root, 'seven-on-paper.png')],
      maps,
    );
    expect(notes).toEqual([
      `${join(root, 'seven-on-paper.png')}: note: inverted: dark-on-light image, the model was trained on light-on-dark (--invert never to keep it)`,
    ]);
    expect(tf.memory().numTensors).toBe(before);
    const cli = PNG.sync.read(readFileSync(maps));
    // Both: a 104 px label column, then one 112 px column (28 px x 4) per image plus 6 px gaps; three
    // rows of 112 px under a title and a header (training's test set here has 4 images). The heights
    // differ only by the title's wrapping and the header's lines.
    expect(sheet.width).toBe(104 + 4 * 118 + 6);
    expect(cli.width).toBe(104 + 2 * 118 + 6);
    // Row labels are drawn: dark pixels in the label column next to each row.
    const darkIn = (img: PNG, x0: number, x1: number, y0: number, y1: number) => {
      let n = 0;
      for (let y = y0; y < y1; y++)
        for (let x = x0; x < x1; x++) if (img.data[(y * img.width + x) * 4] < 100) n++;
      return n;
    };
    for (const img of [sheet, cli]) {
      const top = img.height - 3 * 118 - 6; // first row of cells
      for (let r = 0; r < 3; r++) {
        expect(darkIn(img, 0, 100, top + r * 118, top + r * 118 + 112)).toBeGreaterThan(20);
      }
      expect(darkIn(img, 104, img.width, 24, top - 6)).toBeGreaterThan(20); // column headers
    }
  });

  it('takes the folder names for a hand-written config without labels', async () => {
    const cfgPath = join(root, 'two.json');
    const { id2label: _unused, ...rest } = { ...PRESETS.tiny, hidden_size: 24, intermediate_size: 48 };
    writeFileSync(cfgPath, JSON.stringify({ ...rest, num_labels: 2 }));
    const log: string[] = [];
    const hand = join(root, 'hand');
    const r = await train({
      data: `folder:${data}`,
      config: cfgPath,
      out: hand,
      epochs: 1,
      batchSize: 8,
      plots: false,
      progress: false,
      log: (l) => log.push(l),
    });
    r.model.dispose();
    expect(log).toContain('config: labels from folder-train: seven, three');
    const cfg = JSON.parse(readFileSync(join(hand, 'config.json'), 'utf8')) as { id2label: object };
    expect(cfg.id2label).toEqual({ '0': 'seven', '1': 'three' });
  });
});
