/* global process, console */
// Runs one compiled README block in the consumer folder and reports what it printed, line by line,
// and the tensor count before and after. Run with --enable-source-maps so that call sites are the
// block's own .ts lines. Usage: node --enable-source-maps runner.mjs <block.js> <report.json>
import { writeFileSync } from 'node:fs';
import { basename, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { format } from 'node:util';
import { tf } from 'einvit';

const [script, report] = process.argv.slice(2);
const source = basename(script).replace(/\.js$/, '.ts');
const printed = [];
const log = console.log;
console.log = (...args) => {
  // The first stack frame in the block's source is the console.log call.
  const frame = (new Error().stack ?? '').split('\n').find((l) => l.includes(`${source}:`));
  const line = frame ? Number(new RegExp(`${source.replace('.', '\\.')}:(\\d+):`).exec(frame)?.[1]) : null;
  printed.push({ line, text: format(...args) });
  log(...args);
};

// The engine's count (what tf.memory().numTensors reports), readable before any backend starts.
const before = tf.engine().state.numTensors;
await import(pathToFileURL(resolve(script)).href);
const after = tf.engine().state.numTensors;
writeFileSync(report, JSON.stringify({ printed, before, after }));
