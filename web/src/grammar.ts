// Railroad diagrams of the pattern grammar, drawn from the parser itself with chevrotain's renderer.
// The renderer's scripts are inlined into the frame, so the page needs no network and no node_modules.
import { parser } from '../../src/dsl/parser.js';
import css from '../../node_modules/chevrotain/diagrams/diagrams.css?raw';
import railroad from '../../node_modules/chevrotain/diagrams/vendor/railroad-diagrams.js?raw';
import builder from '../../node_modules/chevrotain/diagrams/src/diagrams_builder.js?raw';
import behavior from '../../node_modules/chevrotain/diagrams/src/diagrams_behavior.js?raw';
import main from '../../node_modules/chevrotain/diagrams/src/main.js?raw';

/** The diagrams page as one self-contained HTML document. */
export function grammarHtml(): string {
  const grammar = JSON.stringify(parser.getSerializedGastProductions());
  const script = (code: string): string => `<script>${code.replace(/<\/script/gi, '<\\/script')}</script>`;
  return [
    '<!doctype html><meta charset="utf-8">',
    `<style>${css}</style>`,
    script(railroad),
    script(builder),
    script(behavior),
    script(main),
    '<div id="diagrams" align="center"></div>',
    script(`main.drawDiagramsFromSerializedGrammar(${grammar}, document.getElementById('diagrams'));`),
  ].join('\n');
}
