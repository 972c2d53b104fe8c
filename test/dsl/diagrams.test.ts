import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { diagramsHtml } from '../../src/dsl/diagrams.js';

describe('grammar/diagrams.html', () => {
  it('is generated from the current parser (run `npm run diagrams` when this fails)', () => {
    const onDisk = readFileSync(join(import.meta.dirname, '..', '..', 'grammar', 'diagrams.html'), 'utf8');
    expect(onDisk).toBe(diagramsHtml());
  });

  it('documents every grammar rule', () => {
    const html = diagramsHtml();
    for (const rule of [
      'pattern',
      'einsumPattern',
      'shapePattern',
      'expression',
      'group',
      'axis',
      'packPattern',
    ]) {
      expect(html).toContain(`"name": "${rule}"`);
    }
  });
});
