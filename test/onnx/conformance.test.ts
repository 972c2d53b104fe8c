import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { tf } from '../../src/tf.js';
import { readCases } from '../../src/conformance/einops.js';
import { onnxApplicable, runCaseOnnx } from '../../src/onnx/conformance.js';

await tf.setBackend('cpu');

const dir = join(import.meta.dirname, '..', 'conformance');
const files = readdirSync(dir)
  .filter((f) => f.endsWith('.jsonl'))
  .sort();

/** ONNX-specific exceptions, with the reason (README lists them). */
const EXCEPTIONS: Record<string, string> = {};

describe.each(files)('einops conformance on onnxruntime: %s', (file) => {
  const cases = readCases(join(dir, file)).filter(onnxApplicable);
  if (cases.length === 0) return it.skip('no tensor cases', () => undefined);
  it.each(cases.map((c) => [c.id, c] as const))('%s', async (id, c) => {
    const before = tf.memory().numTensors;
    const r = await runCaseOnnx(c, true);
    if (!r.backendDefined && !EXCEPTIONS[id]) expect(r.detail ?? '').toBe('');
    expect(tf.memory().numTensors).toBe(before);
  });
});
