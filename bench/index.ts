// Benchmark runner: runs every section listed below and prints one markdown table per section.
//
//   npx tsx bench/index.ts            # all sections
//   npx tsx bench/index.ts ops        # only the sections named
//
// Add a benchmark by writing a module that exports a `Section` and listing it in SECTIONS.
import { pathToFileURL } from 'node:url';
import { tf } from '../src/tf.js';
import { ready } from '../src/backends/index.js';
import { opsSection } from './ops.js';
import { trainSection } from './train.js';
import { inferenceSection } from './inference.js';

/** One table row: column name -> value (numbers are printed as given, so round them first). */
export type Row = Record<string, string | number>;

/** A benchmark section: a name (for the command line), a table title, and what it measures. */
export interface Section {
  readonly name: string;
  readonly title: string;
  /** Printed under the table: what the rows mean, when the title cannot say it. */
  readonly notes?: () => string;
  run(): Promise<Row[]>;
}

/** Every benchmark section, in the order they run. */
export const SECTIONS: Section[] = [opsSection, inferenceSection, trainSection];

/**
 * Renders rows as a markdown table; the columns are the union of the rows' keys, in first-seen order.
 *
 * @example
 * markdownTable([{ case: 'a', ms: 1.5 }]); // '| case | ms |\n| --- | ---: |\n| a | 1.5 |' ('' cells stay numeric)
 */
export function markdownTable(rows: readonly Row[]): string {
  const columns: string[] = [];
  for (const r of rows) for (const k of Object.keys(r)) if (!columns.includes(k)) columns.push(k);
  const numeric = (c: string) =>
    rows.some((r) => typeof r[c] === 'number') &&
    rows.every((r) => r[c] === undefined || r[c] === '' || typeof r[c] === 'number');
  const cell = (v: string | number | undefined) => (v === undefined ? '' : String(v).replace(/\|/g, '\\|'));
  const lines = [
    `| ${columns.join(' | ')} |`,
    `| ${columns.map((c) => (numeric(c) ? '---:' : '---')).join(' | ')} |`,
    ...rows.map((r) => `| ${columns.map((c) => cell(r[c])).join(' | ')} |`),
  ];
  return lines.join('\n');
}

async function main(): Promise<void> {
  const wanted = process.argv.slice(2).filter((a) => !a.startsWith('-'));
  const unknown = wanted.filter((w) => !SECTIONS.some((s) => s.name === w));
  if (unknown.length > 0) {
    console.error(
      `unknown section(s): ${unknown.join(', ')}; known: ${SECTIONS.map((s) => s.name).join(', ')}`,
    );
    process.exitCode = 2;
    return;
  }
  const backend = await ready();
  console.log(
    `# einvit benchmarks\n\nbackend: ${backend}, tfjs ${tf.version.tfjs}, node ${process.version}\n`,
  );
  for (const section of SECTIONS) {
    if (wanted.length > 0 && !wanted.includes(section.name)) continue;
    const t0 = performance.now();
    const rows = await section.run();
    const seconds = ((performance.now() - t0) / 1000).toFixed(1);
    const notes = section.notes ? `${section.notes()}\n\n` : '';
    console.log(`## ${section.title}\n\n${markdownTable(rows)}\n\n${notes}(${section.name}: ${seconds} s)\n`);
  }
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  await main();
}
