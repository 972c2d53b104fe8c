import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { ready, tf } from '../../src/index.js';
import { readCases, runCase } from '../../src/conformance/einops.js';

const dir = join(import.meta.dirname);
const files = readdirSync(dir)
  .filter((f) => f.endsWith('.jsonl'))
  .sort();

beforeAll(async () => {
  await ready('wasm');
});

describe.each(files)('einops conformance: %s', (file) => {
  const cases = readCases(join(dir, file));
  it.each(cases.map((c) => [c.id, c] as const))('%s', (_id, c) => {
    const before = tf.memory().numTensors;
    const r = runCase(c);
    if (!r.backendDefined) expect(r.detail ?? '').toBe('');
    expect(r.ruleMismatch ?? '').toBe('');
    expect(tf.memory().numTensors).toBe(before);
  });
});
