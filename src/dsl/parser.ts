// The chevrotain parser: grammar rules only. The CST it builds is turned into the library's AST in
// build.ts; nothing chevrotain-specific leaves src/dsl.
import { CstParser, EOF } from 'chevrotain';
import { Arrow, Comma, Ellipsis, LParen, PackItem, PackStar, parserTokens, RParen, Word } from './tokens.js';

export class PatternParser extends CstParser {
  constructor() {
    super(parserTokens, { recoveryEnabled: false, maxLookahead: 1 });
    this.performSelfAnalysis();
  }

  /** rearrange / reduce / repeat: `left -> right`. */
  readonly pattern = this.RULE('pattern', () => {
    this.SUBRULE(this.expression, { LABEL: 'left' });
    this.CONSUME(Arrow);
    this.SUBRULE2(this.expression, { LABEL: 'right' });
    this.CONSUME(EOF);
  });

  /** einsum: `in1, in2, ... -> out`. */
  readonly einsumPattern = this.RULE('einsumPattern', () => {
    this.SUBRULE(this.expression, { LABEL: 'inputs' });
    this.MANY(() => {
      this.CONSUME(Comma);
      this.SUBRULE2(this.expression, { LABEL: 'inputs' });
    });
    this.CONSUME(Arrow);
    this.SUBRULE3(this.expression, { LABEL: 'output' });
    this.CONSUME(EOF);
  });

  /** parse_shape: one side only. */
  readonly shapePattern = this.RULE('shapePattern', () => {
    this.SUBRULE(this.expression);
    this.CONSUME(EOF);
  });

  readonly expression = this.RULE('expression', () => {
    this.MANY(() => {
      this.OR([{ ALT: () => this.SUBRULE(this.axis) }, { ALT: () => this.SUBRULE(this.group) }]);
    });
  });

  readonly group = this.RULE('group', () => {
    this.CONSUME(LParen);
    this.MANY(() => this.SUBRULE(this.axis));
    this.CONSUME(RParen);
  });

  readonly axis = this.RULE('axis', () => {
    this.OR([{ ALT: () => this.CONSUME(Word) }, { ALT: () => this.CONSUME(Ellipsis) }]);
  });

  /** pack / unpack: names around one `*`, split on any whitespace (see pack.ts). */
  readonly packPattern = this.RULE('packPattern', () => {
    this.MANY(() => {
      this.OR([{ ALT: () => this.CONSUME(PackItem) }, { ALT: () => this.CONSUME(PackStar) }]);
    });
    this.CONSUME(EOF);
  });
}

/** One shared parser instance (chevrotain parsers are reusable after `input` is reset). */
export const parser = new PatternParser();
