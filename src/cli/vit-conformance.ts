// Checks a ViT reference folder (config.json + model.safetensors + io.safetensors): every output
// tensor against the reference, max |diff| / max |ref| <= 1e-5 per tensor. The folder may hold any
// checkpoint ViT.fromPretrained reads: HF, timm, torchvision, or a seed tutorial's own (test/seed-models,
// whose io.safetensors holds only `logits`); tensors absent from io.safetensors are not compared.
import { join } from 'node:path';
import { tf } from '../tf.js';
import { openSafetensors, type SafetensorsFile } from '../vit/safetensors.js';
import { openModel, type RuntimeChoice } from './runtime.js';
import type { Tally } from './conformance.js';

export const VIT_TOLERANCE = 1e-5;

/** max |a - b| / max |b|, the per-tensor relative error used by the ViT references. */
export function relativeError(actual: tf.Tensor, expected: tf.Tensor): number {
  return tf.tidy(() => {
    const diff = tf.max(tf.abs(tf.sub(actual, expected))).dataSync()[0];
    const scale = tf.max(tf.abs(expected)).dataSync()[0];
    return scale === 0 ? diff : diff / scale;
  });
}

/**
 * Runs one folder on the chosen engine (tfjs by default here: conformance checks what is asked);
 * appends a line per tensor and counts each tensor as one check.
 */
export async function runVitFolder(
  dir: string,
  tally: Tally,
  runtime: RuntimeChoice = 'tfjs',
): Promise<void> {
  const all = {
    outputHiddenStates: true,
    outputAttentions: true,
    outputPreLogits: true,
    outputLastHiddenState: true,
  };
  const runner = await openModel(dir, { runtime, ...all });
  let io: SafetensorsFile | undefined;
  try {
    io = openSafetensors(join(dir, 'io.safetensors'));
    const pixels = io.readTensor('pixel_values');
    const out = await runner.forward(pixels, all);
    const produced: Array<[string, tf.Tensor]> = [
      ['logits', out.logits],
      ['pre_logits', out.preLogits!],
      ['last_hidden_state', out.lastHiddenState!],
      ...(out.hiddenStates ?? []).map((t, i): [string, tf.Tensor] => [`hidden_states.${i}`, t]),
      ...(out.attentions ?? []).map((t, i): [string, tf.Tensor] => [`attentions.${i}`, t]),
    ];
    for (const [name, actual] of produced) {
      if (!io.has(name)) continue;
      const expected = io.readTensor(name);
      const shapeOk = actual.shape.join(',') === expected.shape.join(',');
      const err = shapeOk ? relativeError(actual, expected) : Infinity;
      const ok = shapeOk && err <= VIT_TOLERANCE;
      if (ok) tally.passed++;
      else tally.failed++;
      const what = shapeOk
        ? `rel. error ${err.toExponential(2)}`
        : `shape [${actual.shape}] != [${expected.shape}]`;
      const where = runner.runtime === 'tfjs' ? dir : `${dir} [${runner.runtime}]`;
      tally.lines.push(`${ok ? 'ok  ' : 'FAIL'} ${where} ${name}: ${what}`);
      expected.dispose();
    }
    for (const [, t] of produced) t.dispose();
    pixels.dispose();
  } finally {
    io?.close();
    await runner.dispose();
  }
}
