// Regenerates grammar/diagrams.html from the parser: `npm run diagrams`.
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { diagramsHtml } from '../src/dsl/diagrams.js';

const out = join(import.meta.dirname, '..', 'grammar', 'diagrams.html');
writeFileSync(out, diagramsHtml());
console.log(`wrote ${out}`);
