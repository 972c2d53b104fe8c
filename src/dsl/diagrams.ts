// Railroad diagrams generated from the parser itself, so the documentation cannot drift.
import { createSyntaxDiagramsCode } from 'chevrotain';
import { parser } from './parser.js';

/** Path (relative to grammar/) of chevrotain's diagram renderer, available after `npm install`. */
const RESOURCES = '../node_modules/chevrotain/diagrams/';

/**
 * The HTML page of railroad diagrams for every grammar rule (grammar/diagrams.html).
 *
 * @example
 * writeFileSync('grammar/diagrams.html', diagramsHtml());
 */
export function diagramsHtml(): string {
  return createSyntaxDiagramsCode(parser.getSerializedGastProductions(), {
    resourceBase: RESOURCES,
    css: `${RESOURCES}diagrams.css`,
  });
}
