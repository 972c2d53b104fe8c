// The ViT is written with einvit patterns only: no file in src/vit may call tfjs' raw shape ops
// (reshape, transpose, tile, expandDims, squeeze, einsum, stack), as tf.* functions or as tensor methods.
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

const VIT_DIR = fileURLToPath(new URL('../../src/vit/', import.meta.url));

const TF_CALL = /\btf\s*\.\s*(reshape|transpose|tile|expandDims|squeeze|einsum|stack)\s*\(/;
const METHOD_CALL = /\.\s*(reshape|transpose|expandDims|squeeze)\s*\(/;
// Named imports of the same ops straight from a tfjs package, e.g. `import { reshape } from '@tensorflow/tfjs'`.
const TF_IMPORT =
  /import\s*\{[^}]*\b(reshape|transpose|tile|expandDims|squeeze|einsum|stack)\b[^}]*\}\s*from\s*['"]@tensorflow\//;

/** Blanks out comments (keeping line breaks) so that prose about an op is not a hit. */
function stripComments(source: string): string {
  return source
    .replace(/\/\*[\s\S]*?\*\//g, (m) => m.replace(/[^\n]/g, ' '))
    .replace(/(^|[^:'"`])\/\/.*$/gm, (_m, pre: string) => pre);
}

/** `file:line: text` for every raw shape op in `source`. */
function findRawOps(source: string, file: string): string[] {
  const hits: string[] = [];
  const lines = stripComments(source).split('\n');
  const original = source.split('\n');
  lines.forEach((line, i) => {
    if (TF_CALL.test(line) || METHOD_CALL.test(line) || TF_IMPORT.test(line)) {
      hits.push(`${file}:${i + 1}: ${original[i].trim()}`);
    }
  });
  return hits;
}

describe('no raw tfjs shape ops in src/vit', () => {
  it('catches planted examples and ignores comments', () => {
    const planted = [
      'const a = tf.reshape(x, [2, 3]);',
      '// tf.transpose(x) in a comment is fine',
      'const b = x.transpose([1, 0]);',
      'const c = tf . stack([x, y]);',
      '/* y.squeeze() here too */ const d = 1;',
      "const e = tf.einsum('ij,jk->ik', x, y);",
      'const f = y.expandDims(0);',
      "import { tile } from '@tensorflow/tfjs';",
      'const g = tf.add(x, y);',
    ].join('\n');
    expect(findRawOps(planted, 'planted.ts')).toEqual([
      'planted.ts:1: const a = tf.reshape(x, [2, 3]);',
      'planted.ts:3: const b = x.transpose([1, 0]);',
      'planted.ts:4: const c = tf . stack([x, y]);',
      "planted.ts:6: const e = tf.einsum('ij,jk->ik', x, y);",
      'planted.ts:7: const f = y.expandDims(0);',
      "planted.ts:8: import { tile } from '@tensorflow/tfjs';",
    ]);
  });

  it('finds none in any file of src/vit', () => {
    const files = readdirSync(VIT_DIR).filter((f) => f.endsWith('.ts'));
    expect(files.length).toBeGreaterThan(0);
    const hits = files.flatMap((f) => findRawOps(readFileSync(join(VIT_DIR, f), 'utf8'), `src/vit/${f}`));
    expect(hits, hits.join('\n')).toEqual([]);
  });
});
