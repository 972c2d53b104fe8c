import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import * as PImage from 'pureimage';
import { CheckpointError, UsageError } from '../errors.js';
import type { RgbImage } from '../image/decode.js';
import { writePng } from '../image/png.js';

/** One epoch of training history. */
export interface CurveRow {
  epoch: number;
  train_loss: number;
  test_loss: number;
  train_acc: number;
  test_acc: number;
}

export interface PlotOptions {
  /** Canvas width in pixels (default 1000; two panels side by side). */
  width?: number;
  /** Canvas height in pixels (default 420). */
  height?: number;
  /**
   * A TTF file for labels. Default: the first found of `assets/fonts/DejaVuSans.ttf` in this package,
   * the `dejavu-fonts-ttf` npm package, and common system DejaVu/Liberation locations; when none is
   * found a small built-in pixel font is used. `'builtin'` forces the pixel font; `false` draws no text.
   */
  font?: string | false;
}

type Ctx = ReturnType<PImage.Bitmap['getContext']>;

const TRAIN_COLOR = '#1f77b4';
const TEST_COLOR = '#ff7f0e';
const AXIS_COLOR = '#333333';
const GRID_COLOR = '#e6e6e6';

function fontCandidates(): string[] {
  const out = [fileURLToPath(new URL('../../assets/fonts/DejaVuSans.ttf', import.meta.url))];
  try {
    const require = createRequire(import.meta.url);
    const pkg = require.resolve('dejavu-fonts-ttf/package.json');
    out.push(join(dirname(pkg), 'ttf', 'DejaVuSans.ttf'));
  } catch {
    // optional package not installed
  }
  // Standard install locations of free fonts on Linux distributions.
  out.push(
    '/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf',
    '/usr/share/fonts/TTF/DejaVuSans.ttf',
    '/usr/share/fonts/dejavu/DejaVuSans.ttf',
    '/usr/share/fonts/truetype/liberation/LiberationSans-Regular.ttf',
  );
  return out;
}

/** Font file -> the family name it was registered under (undefined if it failed to load). */
const loadedFonts = new Map<string, string | undefined>();
/** Family used by the chart being drawn (rendering is synchronous, so one at a time). */
let fontFamily = '';

/** Registers the font with pureimage once (its font table is global); returns its family name. */
function loadFont(choice: string | false | undefined): string | undefined {
  if (choice === false || choice === 'builtin') return undefined;
  const path = choice ?? fontCandidates().find((p) => existsSync(p));
  if (path === undefined) return undefined;
  if (loadedFonts.has(path)) return loadedFonts.get(path);
  let ok: string | undefined;
  try {
    const family = `einvit-plot-${loadedFonts.size}`;
    PImage.registerFont(path, family).loadSync();
    ok = family;
  } catch (e) {
    if (choice !== undefined) {
      throw new CheckpointError(`${path}: cannot load font (${e instanceof Error ? e.message : String(e)})`, {
        rule: 'bad-font',
        cause: e,
      });
    }
  }
  loadedFonts.set(path, ok);
  return ok;
}

/** Round tick values covering [lo, hi], about `target` of them, at steps of 1, 2 or 5 x 10^k. */
export function niceTicks(lo: number, hi: number, target = 5): number[] {
  if (!(hi > lo)) return [lo];
  const raw = (hi - lo) / target;
  const mag = 10 ** Math.floor(Math.log10(raw));
  const step = [1, 2, 5, 10].map((m) => m * mag).find((s) => s >= raw) ?? 10 * mag;
  const ticks: number[] = [];
  const first = Math.ceil(lo / step - 1e-9);
  for (let k = first; k * step <= hi + step * 1e-9; k++) {
    // toPrecision strips float noise such as 0.6000000000000001
    ticks.push(Number((k * step).toPrecision(12)));
  }
  return ticks;
}

function formatTick(v: number, step: number): string {
  const decimals = Math.max(0, -Math.floor(Math.log10(step) + 1e-9));
  return v.toFixed(Math.min(decimals, 6));
}

interface Series {
  label: string;
  color: string;
  values: number[];
}

interface Panel {
  title: string;
  x0: number;
  y0: number;
  x1: number;
  y1: number;
  epochs: number[];
  series: Series[];
  /** Fixed y range, e.g. [0, 1] for accuracy; otherwise fitted to the data. */
  yRange?: [number, number];
}

type TextMode = 'ttf' | 'pixel' | 'none';

/*
 * A 5x7 pixel font (two extra rows for descenders) covering what the chart writes: digits, '.', '-'
 * and the letters of its labels. It keeps numbers on the axes when no TTF font is installed.
 */
const PIXEL_GLYPHS: Record<string, string> = {
  '0': '.###.|#...#|#..##|#.#.#|##..#|#...#|.###.',
  '1': '..#..|.##..|..#..|..#..|..#..|..#..|.###.',
  '2': '.###.|#...#|....#|...#.|..#..|.#...|#####',
  '3': '#####|...#.|..#..|...#.|....#|#...#|.###.',
  '4': '...#.|..##.|.#.#.|#..#.|#####|...#.|...#.',
  '5': '#####|#....|####.|....#|....#|#...#|.###.',
  '6': '..##.|.#...|#....|####.|#...#|#...#|.###.',
  '7': '#####|....#|...#.|..#..|.#...|.#...|.#...',
  '8': '.###.|#...#|#...#|.###.|#...#|#...#|.###.',
  '9': '.###.|#...#|#...#|.####|....#|...#.|.##..',
  '.': '.....|.....|.....|.....|.....|.##..|.##..',
  '-': '.....|.....|.....|.###.|.....|.....|.....',
  a: '.....|.....|.###.|....#|.####|#...#|.####',
  c: '.....|.....|.###.|#....|#....|#...#|.###.',
  e: '.....|.....|.###.|#...#|#####|#....|.###.',
  h: '#....|#....|#.##.|##..#|#...#|#...#|#...#',
  i: '..#..|.....|.##..|..#..|..#..|..#..|.###.',
  l: '.##..|..#..|..#..|..#..|..#..|..#..|.###.',
  n: '.....|.....|#.##.|##..#|#...#|#...#|#...#',
  o: '.....|.....|.###.|#...#|#...#|#...#|.###.',
  p: '.....|.....|####.|#...#|#...#|#...#|####.|#....|#....',
  r: '.....|.....|#.##.|##..#|#....|#....|#....',
  s: '.....|.....|.####|#....|.###.|....#|####.',
  t: '.#...|.#...|###..|.#...|.#...|.#..#|..##.',
  u: '.....|.....|#...#|#...#|#...#|#..##|.##.#',
  y: '.....|.....|#...#|#...#|#...#|.####|....#|#...#|.###.',
};

/** Draws `s` with the pixel font, `y` being the baseline like canvas text; unknown characters are gaps. */
function pixelText(
  ctx: Ctx,
  s: string,
  x: number,
  y: number,
  align: 'left' | 'center' | 'right',
  scale: number,
): void {
  const advance = 6 * scale;
  const width = s.length * advance - scale;
  let left = align === 'right' ? x - width : align === 'center' ? x - width / 2 : x;
  left = Math.round(left);
  const top = Math.round(y) - 7 * scale;
  ctx.fillStyle = AXIS_COLOR;
  for (const ch of s) {
    const glyph = PIXEL_GLYPHS[ch];
    glyph?.split('|').forEach((row, r) => {
      for (let c = 0; c < row.length; c++) {
        if (row[c] === '#') ctx.fillRect(left + c * scale, top + r * scale, scale, scale);
      }
    });
    left += advance;
  }
}

function text(
  ctx: Ctx,
  mode: TextMode,
  s: string,
  x: number,
  y: number,
  align: 'left' | 'center' | 'right',
  size = 13,
): void {
  if (mode === 'none') return;
  if (mode === 'pixel') return pixelText(ctx, s, x, y, align, size >= 16 ? 3 : 2);
  ctx.font = `${size}px ${fontFamily}`;
  ctx.textAlign = align;
  ctx.fillStyle = AXIS_COLOR;
  ctx.fillText(s, x, y);
}

function line(ctx: Ctx, color: string, width: number, pts: Array<[number, number]>): void {
  ctx.strokeStyle = color;
  ctx.lineWidth = width;
  ctx.beginPath();
  ctx.moveTo(pts[0][0], pts[0][1]);
  for (const [x, y] of pts.slice(1)) ctx.lineTo(x, y);
  ctx.stroke();
}

function drawPanel(ctx: Ctx, mode: TextMode, p: Panel): void {
  const finite = p.series.flatMap((s) => s.values.filter(Number.isFinite));
  let [ylo, yhi] = p.yRange ?? [Math.min(...finite), Math.max(...finite)];
  if (finite.length === 0) [ylo, yhi] = [0, 1];
  if (!(yhi > ylo)) [ylo, yhi] = [ylo - 0.5, yhi + 0.5];
  const pad = p.yRange ? 0 : (yhi - ylo) * 0.05;
  ylo -= pad;
  yhi += pad;
  let xlo = Math.min(...p.epochs);
  let xhi = Math.max(...p.epochs);
  if (!(xhi > xlo)) [xlo, xhi] = [xlo - 1, xhi + 1];
  const sx = (x: number) => p.x0 + ((x - xlo) / (xhi - xlo)) * (p.x1 - p.x0);
  const sy = (y: number) => p.y1 - ((y - ylo) / (yhi - ylo)) * (p.y1 - p.y0);

  const yt = niceTicks(ylo, yhi, 5);
  const ystep = yt.length > 1 ? yt[1] - yt[0] : 1;
  for (const v of yt) {
    line(ctx, GRID_COLOR, 1, [
      [p.x0, sy(v)],
      [p.x1, sy(v)],
    ]);
    line(ctx, AXIS_COLOR, 1, [
      [p.x0 - 5, sy(v)],
      [p.x0, sy(v)],
    ]);
    text(ctx, mode, formatTick(v, ystep), p.x0 - 8, sy(v) + 4, 'right', 12);
  }
  const xt = niceTicks(xlo, xhi, 6).filter((v) => Number.isInteger(v) || xhi - xlo < 2);
  const xstep = xt.length > 1 ? xt[1] - xt[0] : 1;
  for (const v of xt) {
    line(ctx, AXIS_COLOR, 1, [
      [sx(v), p.y1],
      [sx(v), p.y1 + 5],
    ]);
    text(ctx, mode, formatTick(v, xstep), sx(v), p.y1 + 19, 'center', 12);
  }
  line(ctx, AXIS_COLOR, 1.5, [
    [p.x0, p.y0],
    [p.x0, p.y1],
    [p.x1, p.y1],
  ]);

  for (const s of p.series) {
    // Break the line at non-finite values (e.g. a diverged epoch) instead of drawing to NaN.
    let run: Array<[number, number]> = [];
    const flush = () => {
      if (run.length > 1) line(ctx, s.color, 2.5, run);
      run = [];
    };
    s.values.forEach((v, i) => {
      if (!Number.isFinite(v)) return flush();
      const pt: [number, number] = [sx(p.epochs[i]), sy(Math.min(yhi, Math.max(ylo, v)))];
      run.push(pt);
      ctx.fillStyle = s.color;
      ctx.fillRect(pt[0] - 3, pt[1] - 3, 6, 6);
    });
    flush();
  }

  text(ctx, mode, p.title, p.x0, p.y0 - 12, 'left', 16);
  text(ctx, mode, 'epoch', (p.x0 + p.x1) / 2, p.y1 + 38, 'center', 13);

  // Legend in the header, right-aligned above the plot area, so it never hides data.
  const entry = { none: 40, ttf: 78, pixel: 100 }[mode];
  p.series.forEach((s, i) => {
    const lx = p.x1 - entry * (p.series.length - i);
    const y = p.y0 - 17;
    line(ctx, s.color, 3, [
      [lx, y],
      [lx + 26, y],
    ]);
    text(ctx, mode, s.label, lx + 31, y + 5, 'left', 13);
  });
}

function checkRows(rows: CurveRow[]): void {
  if (rows.length === 0) {
    throw new UsageError('drawCurves: no rows to plot (history is empty)', { rule: 'empty-input' });
  }
  rows.forEach((r, i) => {
    if (!Number.isFinite(r.epoch)) {
      throw new UsageError(`drawCurves: row ${i} has epoch ${r.epoch}, expected a finite number`, {
        rule: 'bad-value',
      });
    }
  });
}

/**
 * Renders the loss and accuracy curves (train and test per epoch) into an RGB image: two panels with
 * titles, axes, numbered ticks, grid lines and a legend. Text needs a TTF font (see
 * {@link PlotOptions.font}); without one the chart is drawn without text.
 *
 * @example
 * const img = renderCurves([{ epoch: 1, train_loss: 0.9, test_loss: 0.7, train_acc: 0.7, test_acc: 0.78 }]);
 */
export function renderCurves(rows: CurveRow[], options: PlotOptions = {}): RgbImage {
  checkRows(rows);
  const width = options.width ?? 1000;
  const height = options.height ?? 420;
  if (!Number.isInteger(width) || !Number.isInteger(height) || width < 200 || height < 150) {
    throw new UsageError(`drawCurves: canvas must be at least 200x150 integers, got ${width}x${height}`, {
      rule: 'bad-size',
    });
  }
  const mode = textMode(options.font);
  const bitmap = PImage.make(width, height);
  const ctx = bitmap.getContext('2d');
  ctx.fillStyle = '#ffffff';
  ctx.fillRect(0, 0, width, height);
  const sorted = [...rows].sort((a, b) => a.epoch - b.epoch);
  const epochs = sorted.map((r) => r.epoch);
  const half = Math.floor(width / 2);
  const frame = (ox: number) => ({ x0: ox + 64, x1: ox + half - 20, y0: 40, y1: height - 52 });
  drawPanel(ctx, mode, {
    title: 'loss',
    ...frame(0),
    epochs,
    series: [
      { label: 'train', color: TRAIN_COLOR, values: sorted.map((r) => r.train_loss) },
      { label: 'test', color: TEST_COLOR, values: sorted.map((r) => r.test_loss) },
    ],
  });
  const accs = sorted.flatMap((r) => [r.train_acc, r.test_acc]).filter(Number.isFinite);
  const inUnit = accs.every((a) => a >= 0 && a <= 1);
  drawPanel(ctx, mode, {
    title: 'accuracy',
    ...frame(half),
    epochs,
    series: [
      { label: 'train', color: TRAIN_COLOR, values: sorted.map((r) => r.train_acc) },
      { label: 'test', color: TEST_COLOR, values: sorted.map((r) => r.test_acc) },
    ],
    // Accuracies in [0, 1] get a fitted range rounded out to tenths, so small gains stay visible.
    yRange: inUnit && accs.length > 0 ? [Math.floor(Math.min(...accs) * 10) / 10, 1] : undefined,
  });
  return toRgb(bitmap);
}

/** RGBA (opaque) bitmap -> RGB image. */
function toRgb(bitmap: PImage.Bitmap): RgbImage {
  const { width, height } = bitmap;
  const data = new Uint8Array(width * height * 3);
  for (let i = 0; i < width * height; i++) {
    data[i * 3] = bitmap.data[i * 4];
    data[i * 3 + 1] = bitmap.data[i * 4 + 1];
    data[i * 3 + 2] = bitmap.data[i * 4 + 2];
  }
  return { width, height, data };
}

/** Picks the text mode and font family for a drawing, as {@link PlotOptions.font} says. */
function textMode(font: string | false | undefined): TextMode {
  const family = font === false ? undefined : loadFont(font);
  fontFamily = family ?? '';
  return font === false ? 'none' : family ? 'ttf' : 'pixel';
}

/** Shortens `s` with a trailing '...' until it is at most `max` pixels wide at `size` px. */
function fitText(ctx: Ctx, mode: TextMode, s: string, max: number, size: number): string {
  const width = (t: string): number => {
    if (mode === 'pixel') return t.length * 6 * (size >= 16 ? 3 : 2);
    ctx.font = `${size}px ${fontFamily}`;
    return ctx.measureText(t).width;
  };
  if (mode === 'none' || width(s) <= max) return s;
  let keep = s.length;
  while (keep > 1 && width(`${s.slice(0, keep)}...`) > max) keep--;
  return `${s.slice(0, keep)}...`;
}

/** Splits `s` at spaces into lines at most `max` pixels wide (a word too long alone is shortened). */
function wrapText(ctx: Ctx, mode: TextMode, s: string, max: number, size: number): string[] {
  const lines: string[] = [];
  let current = '';
  for (const word of s.split(' ')) {
    const next = current ? `${current} ${word}` : word;
    if (current && fitText(ctx, mode, next, max, size) !== next) {
      lines.push(current);
      current = fitText(ctx, mode, word, max, size);
    } else current = fitText(ctx, mode, next, max, size);
  }
  if (current) lines.push(current);
  return lines;
}

/** A grid of images with a label block left of each row and above each column. */
export interface LabelledGrid {
  /** `cells[row][column]`; every row has the same number of columns. */
  cells: RgbImage[][];
  /** Lines of text left of each row (first line larger). */
  rowLabels: string[][];
  /** Lines of text above each column. */
  columnLabels: string[][];
  /** A title across the top, wrapped to the sheet's width. */
  title?: string;
  /** As {@link PlotOptions.font}. */
  font?: string | false;
}

/**
 * Draws images in a labelled grid: row labels on the left, column labels (e.g. the predicted class)
 * above each column, text in DejaVu Sans (see {@link PlotOptions.font}), lines too long for their
 * column shortened with '...'.
 *
 * @example
 * const sheet = renderLabelledGrid({
 *   cells: [[a, b]], rowLabels: [['input']], columnLabels: [['cat 91%'], ['dog 80%']],
 * });
 */
export function renderLabelledGrid(grid: LabelledGrid): RgbImage {
  const rows = grid.cells.length;
  const cols = rows > 0 ? grid.cells[0].length : 0;
  if (rows === 0 || cols === 0 || grid.cells.some((r) => r.length !== cols)) {
    throw new UsageError(
      `renderLabelledGrid: need a non-empty grid with the same number of columns in every row, got [${grid.cells.map((r) => r.length).join(', ')}]`,
    );
  }
  if (grid.rowLabels.length !== rows || grid.columnLabels.length !== cols) {
    throw new UsageError(
      `renderLabelledGrid: ${grid.rowLabels.length} row labels and ${grid.columnLabels.length} column labels for ${rows} rows and ${cols} columns`,
    );
  }
  const size = 13;
  const lineH = 16;
  const pad = 6;
  const cellW = Math.max(...grid.cells.flat().map((c) => c.width));
  const cellH = Math.max(...grid.cells.flat().map((c) => c.height));
  const labelW = 104;
  const width = labelW + cols * (cellW + pad) + pad;
  const mode = textMode(grid.font);
  // Measure the title's lines on a scratch canvas: the sheet's height depends on them.
  const title = grid.title
    ? wrapText(PImage.make(1, 1).getContext('2d'), mode, grid.title, width - 2 * pad, 15)
    : [];
  const titleH = title.length > 0 ? title.length * 19 + 6 : 0;
  const headH = Math.max(...grid.columnLabels.map((l) => l.length)) * lineH + pad;
  const height = titleH + headH + rows * (cellH + pad) + pad;
  const bitmap = PImage.make(width, height);
  const ctx = bitmap.getContext('2d');
  ctx.fillStyle = '#ffffff';
  ctx.fillRect(0, 0, width, height);
  const top = titleH + headH;
  grid.cells.forEach((row, r) =>
    row.forEach((img, c) => {
      // Centred in its cell, copied pixel for pixel (no resampling of the maps).
      const x0 = labelW + c * (cellW + pad) + Math.floor((cellW - img.width) / 2);
      const y0 = top + r * (cellH + pad) + Math.floor((cellH - img.height) / 2);
      for (let y = 0; y < img.height; y++) {
        for (let x = 0; x < img.width; x++) {
          const s = (y * img.width + x) * 3;
          const d = ((y0 + y) * width + x0 + x) * 4;
          bitmap.data[d] = img.data[s];
          bitmap.data[d + 1] = img.data[s + 1];
          bitmap.data[d + 2] = img.data[s + 2];
          bitmap.data[d + 3] = 255;
        }
      }
    }),
  );
  title.forEach((l, i) => text(ctx, mode, l, pad, 17 + i * 19, 'left', 15));
  grid.columnLabels.forEach((lines, c) => {
    const cx = labelW + c * (cellW + pad) + cellW / 2;
    const y0 = top - pad - (lines.length - 1) * lineH;
    lines.forEach((l, i) =>
      text(ctx, mode, fitText(ctx, mode, l, cellW + pad, size), cx, y0 + i * lineH, 'center', size),
    );
  });
  grid.rowLabels.forEach((lines, r) => {
    const cy = top + r * (cellH + pad) + cellH / 2;
    const y0 = cy - ((lines.length - 1) * lineH) / 2 + size / 2 - 1;
    lines.forEach((l, i) =>
      text(
        ctx,
        mode,
        fitText(ctx, mode, l, labelW - 2 * pad, size),
        labelW - pad,
        y0 + i * lineH,
        'right',
        size,
      ),
    );
  });
  return toRgb(bitmap);
}

/**
 * Writes a PNG with two panels (loss and accuracy per epoch, train and test lines) to `path`.
 *
 * @example
 * drawCurves('runs/mnist/curves.png', history);
 */
export function drawCurves(path: string, rows: CurveRow[], options: PlotOptions = {}): void {
  writePng(path, renderCurves(rows, options));
}
