import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { UsageError } from '../../src/errors.js';
import { decodeImage, type RgbImage } from '../../src/image/index.js';
import {
  drawCurves,
  niceTicks,
  renderCurves,
  renderLabelledGrid,
  type CurveRow,
} from '../../src/train/plot.js';

const rows: CurveRow[] = Array.from({ length: 6 }, (_, i) => ({
  epoch: i + 1,
  train_loss: 2 / (i + 1),
  test_loss: 2.2 / (i + 1) + 0.1,
  train_acc: 0.5 + i * 0.08,
  test_acc: 0.45 + i * 0.08,
}));

function countColor(data: Uint8Array, rgb: number[], tol = 8): number {
  let n = 0;
  for (let i = 0; i < data.length; i += 3) {
    if (
      Math.abs(data[i] - rgb[0]) <= tol &&
      Math.abs(data[i + 1] - rgb[1]) <= tol &&
      Math.abs(data[i + 2] - rgb[2]) <= tol
    )
      n++;
  }
  return n;
}

describe('drawCurves', () => {
  it('writes a PNG of the requested size with both series drawn', () => {
    const dir = mkdtempSync(join(tmpdir(), 'einvit-plot-'));
    const path = join(dir, 'curves.png');
    drawCurves(path, rows, { width: 800, height: 360 });
    const img = decodeImage(readFileSync(path), path);
    expect([img.width, img.height]).toEqual([800, 360]);
    // train is drawn in #1f77b4, test in #ff7f0e; the background is white
    expect(countColor(img.data, [0x1f, 0x77, 0xb4])).toBeGreaterThan(300);
    expect(countColor(img.data, [0xff, 0x7f, 0x0e])).toBeGreaterThan(300);
    expect(countColor(img.data, [255, 255, 255], 0)).toBeGreaterThan(800 * 360 * 0.6);
  });

  it('draws without a font, with one row and with NaN values', () => {
    const a = renderCurves(rows, { font: false });
    expect([a.width, a.height]).toEqual([1000, 420]);
    expect(renderCurves(rows.slice(0, 1), { font: false }).data.length).toBe(1000 * 420 * 3);
    const broken = rows.map((r, i) => (i === 3 ? { ...r, test_loss: Number.NaN } : r));
    expect(countColor(renderCurves(broken, { font: false }).data, [0xff, 0x7f, 0x0e])).toBeGreaterThan(100);
  });

  it('writes labels with the built-in pixel font when asked (no TTF needed)', () => {
    const dark = (o: { font: false | 'builtin' }) =>
      countColor(renderCurves(rows, o).data, [0x33, 0x33, 0x33], 0);
    // the axes alone are dark too; text adds a few thousand more pixels of that colour
    expect(dark({ font: 'builtin' }) - dark({ font: false })).toBeGreaterThan(1500);
  });

  it('rejects empty history, bad epochs and an unreadable font', () => {
    expect(() => renderCurves([])).toThrowError(UsageError);
    expect(() => renderCurves([{ ...rows[0], epoch: Number.NaN }])).toThrowError(/row 0/);
    expect(() => renderCurves(rows, { font: 'no-such-font.ttf' })).toThrowError(/no-such-font\.ttf/);
  });
});

describe('niceTicks', () => {
  it('uses 1-2-5 steps covering the range', () => {
    expect(niceTicks(0, 1, 5)).toEqual([0, 0.2, 0.4, 0.6, 0.8, 1]);
    expect(niceTicks(1, 12, 6)).toEqual([2, 4, 6, 8, 10, 12]);
    expect(niceTicks(3, 3)).toEqual([3]);
  });
});

describe('renderLabelledGrid', () => {
  const cell = (v: number): RgbImage => ({ width: 10, height: 8, data: new Uint8Array(240).fill(v) });

  it('copies cells pixel for pixel and draws the labels in text', () => {
    const grid = {
      cells: [
        [cell(200), cell(100)],
        [cell(50), cell(150)],
      ],
      rowLabels: [['input'], ['rollout', 'all layers']],
      columnLabels: [
        ['a.png', 'seven 90.0%'],
        ['b.png', 'three 10.0%'],
      ],
      title: 'a title',
    };
    const img = renderLabelledGrid(grid);
    // 104 px labels + 2 x (10 + 6) + 6; title 25 + header 2 x 16 + 6 + 2 x (8 + 6) + 6
    expect([img.width, img.height]).toEqual([142, 25 + 38 + 28 + 6]);
    const at = (x: number, y: number) => img.data[(y * img.width + x) * 3];
    const top = 25 + 38;
    expect([at(104, top), at(113, top + 7), at(120, top), at(104, top + 14), at(120, top + 21)]).toEqual([
      200, 200, 100, 50, 150,
    ]);
    const noText = renderLabelledGrid({ ...grid, font: false });
    const dark = (im: RgbImage) => Array.from(im.data).filter((v) => v < 100).length;
    // Text adds dark pixels (the cells valued 50 count in both).
    expect(dark(img) - dark(noText)).toBeGreaterThan(300);
  });

  it('rejects ragged grids and label counts that do not match', () => {
    expect(() =>
      renderLabelledGrid({ cells: [[cell(0)], []], rowLabels: [[], []], columnLabels: [[]] }),
    ).toThrowError(UsageError);
    expect(() => renderLabelledGrid({ cells: [[cell(0)]], rowLabels: [], columnLabels: [[]] })).toThrowError(
      /0 row labels and 1 column labels for 1 rows and 1 columns/,
    );
  });
});
