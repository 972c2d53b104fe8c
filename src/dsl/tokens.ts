// Tokens of the pattern language. Only ASCII space separates tokens, as in einops: tabs and
// newlines are unknown characters.
import { createToken, Lexer, type TokenType } from 'chevrotain';

export const Space = createToken({ name: 'Space', pattern: / +/, group: Lexer.SKIPPED });
export const Arrow = createToken({ name: 'Arrow', pattern: /->/, label: "'->'" });
export const Comma = createToken({ name: 'Comma', pattern: /,/, label: "','" });
export const LParen = createToken({ name: 'LParen', pattern: /\(/, label: "'('" });
export const RParen = createToken({ name: 'RParen', pattern: /\)/, label: "')'" });
export const Star = createToken({ name: 'Star', pattern: /\*/, label: "'*'" });
/** A word: letters, digits, `_`, and dots only as part of `...` (so `a...` is one, invalid, word). */
// Unicode letters and digits count, as Python's str.isalnum does; chevrotain needs a custom matcher
// for a `u`-flag regex.
const wordRegex = /(?:[\p{L}\p{N}_\u2026]|\.\.\.)+/uy;
export const Word = createToken({
  name: 'Word',
  pattern: {
    exec: (text: string, offset: number) => {
      wordRegex.lastIndex = offset;
      return wordRegex.exec(text);
    },
  },
  label: 'axis name or number',
  line_breaks: false,
});
export const Ellipsis = createToken({
  name: 'Ellipsis',
  pattern: /\.\.\.|\u2026/,
  label: "'...'",
  longer_alt: Word,
});
/** A dot that is not part of `...`: always an error, kept as a token to report it at its place. */
export const Dot = createToken({ name: 'Dot', pattern: /\./, label: "'.'" });

export const allTokens: TokenType[] = [Space, Arrow, Comma, LParen, RParen, Star, Ellipsis, Word, Dot];

// pack/unpack split their pattern on any whitespace (as einops does), so they have their own lexer:
// every run of non-space characters is one item, `*` alone is the packed axis.
export const PackSpace = createToken({ name: 'PackSpace', pattern: /\s+/, group: Lexer.SKIPPED });
export const PackItem = createToken({ name: 'PackItem', pattern: /\S+/, label: 'axis name' });
export const PackStar = createToken({ name: 'PackStar', pattern: /\*/, label: "'*'", longer_alt: PackItem });

export const packLexer = new Lexer([PackSpace, PackStar, PackItem], {
  positionTracking: 'onlyOffset',
  ensureOptimizations: false,
});

/** Every token the parser knows (both vocabularies). */
export const parserTokens: TokenType[] = [...allTokens, PackSpace, PackStar, PackItem];

export const patternLexer = new Lexer(allTokens, {
  positionTracking: 'onlyOffset',
  ensureOptimizations: false,
  skipValidations: false,
});
