import { appendFileSync, mkdirSync } from 'node:fs';
import { dirname } from 'node:path';
import { CheckpointError, DataError, UsageError } from '../errors.js';

/**
 * Appends `obj` as one JSON line to `path` (JSON Lines), creating the folder if needed.
 *
 * @example
 * appendMetrics('runs/mnist/metrics.jsonl', { epoch: 1, step: 63, loss: 0.41, acc: 0.88 });
 */
export function appendMetrics(path: string, obj: Record<string, unknown>): void {
  try {
    mkdirSync(dirname(path), { recursive: true });
    appendFileSync(path, JSON.stringify(obj) + '\n');
  } catch (e) {
    throw new CheckpointError(`cannot append metrics to ${path}: ${(e as Error).message}`, { cause: e });
  }
}

/**
 * k x k confusion matrix: `m[label][prediction]` counts (rows are true classes).
 *
 * @example
 * confusionMatrix(Int32Array.of(0, 1, 1), Int32Array.of(0, 1, 0), 2); // [[1, 1], [0, 1]]
 */
export function confusionMatrix(pred: Int32Array, labels: Int32Array, k: number): number[][] {
  if (pred.length !== labels.length) {
    throw new DataError(`confusionMatrix: ${pred.length} predictions but ${labels.length} labels`);
  }
  const m = Array.from({ length: k }, () => new Array<number>(k).fill(0));
  for (let i = 0; i < pred.length; i++) {
    const p = pred[i];
    const l = labels[i];
    if (p < 0 || p >= k || l < 0 || l >= k) {
      throw new DataError(
        `confusionMatrix: entry ${i} has prediction ${p}, label ${l}; classes are 0..${k - 1}`,
      );
    }
    m[l][p]++;
  }
  return m;
}

/**
 * Accuracy per true class (diagonal / row sum); NaN for a class with no samples.
 *
 * @example
 * perClassAccuracy([[1, 1], [0, 1]]); // [0.5, 1]
 */
export function perClassAccuracy(matrix: number[][]): number[] {
  return matrix.map((row, i) => {
    const total = row.reduce((a, b) => a + b, 0);
    return total === 0 ? NaN : row[i] / total;
  });
}

/**
 * Overall accuracy of a confusion matrix (trace / total); NaN when empty.
 *
 * @example
 * accuracyOf([[1, 1], [0, 1]]); // 0.666...
 */
export function accuracyOf(matrix: number[][]): number {
  let hit = 0;
  let total = 0;
  matrix.forEach((row, i) => {
    hit += row[i];
    for (const v of row) total += v;
  });
  return total === 0 ? NaN : hit / total;
}

/**
 * Renders a confusion matrix as an aligned text table: rows are true classes, columns predictions
 * (headed by the class index, with a key), last column the per-class accuracy.
 *
 * @example
 * console.log(formatConfusion(m, ['cat', 'dog']));
 * //  true \ pred     0    1   acc
 * //  0 cat          1    1  50.0%
 * //  1 dog          0    1 100.0%
 */
export function formatConfusion(matrix: number[][], classNames: string[]): string {
  const k = matrix.length;
  if (classNames.length !== k) {
    throw new UsageError(`formatConfusion: ${classNames.length} class names for a ${k}x${k} matrix`);
  }
  // Class names that are their own index (MNIST's '0'..'9') are shown once, not as `0 0`.
  const rowLabels = classNames.map((n, i) => (n === String(i) ? n : `${i} ${n}`));
  const head = 'true \\ pred';
  const labelWidth = Math.max(head.length, ...rowLabels.map((s) => s.length));
  const cellWidth = Math.max(String(k - 1).length, ...matrix.flat().map((v) => String(v).length));
  const acc = perClassAccuracy(matrix).map((a) => (Number.isNaN(a) ? '-' : `${(a * 100).toFixed(1)}%`));
  const accWidth = Math.max(3, ...acc.map((s) => s.length));
  const line = (label: string, cells: string[], last: string) =>
    `${label.padEnd(labelWidth)} ${cells.map((c) => c.padStart(cellWidth)).join(' ')} ${last.padStart(accWidth)}`;
  const lines = [
    line(
      head,
      matrix.map((_, j) => String(j)),
      'acc',
    ),
  ];
  matrix.forEach((row, i) => lines.push(line(rowLabels[i], row.map(String), acc[i])));
  return lines.join('\n');
}
