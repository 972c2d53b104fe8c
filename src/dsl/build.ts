// From pattern text to the library's AST: lexing and parsing with chevrotain, then einops' checks on
// each side in einops' order, so that the first error reported is the one einops reports.
import type { CstNode, IToken, TokenType } from 'chevrotain';
import { EinopsError, caret } from '../errors.js';
import type { Axis, Dimension, Expression, Span } from './ast.js';
import { axisNameProblem, decimalValue, isDecimal } from './names.js';
import { parser } from './parser.js';
import { Dot, Ellipsis, LParen, patternLexer, RParen, Word } from './tokens.js';

export interface SideOptions {
  /** `_` may be used (repeatedly) as a name: parse_shape and einsum. */
  readonly allowUnderscore?: boolean;
  /** A name may repeat: einsum inputs (traces and diagonals). */
  readonly allowDuplicates?: boolean;
}

/** A candidate error with the offset at which einops would detect it. */
interface Found {
  readonly at: number;
  /** Tie-break at one offset: end-of-side and unknown characters first, then names, then brackets. */
  readonly order: number;
  readonly rule: string;
  readonly reason: string;
  readonly span: Span;
}

export function patternError(source: string, rule: string, reason: string, span?: Span): EinopsError {
  const where = span ? `\n${caret(source, span.start, span.end)}` : `\n  ${source}`;
  return new EinopsError(`${reason}${where}`, { rule });
}

function tokenSpan(t: IToken): Span {
  return { start: t.startOffset, end: t.startOffset + t.image.length };
}

function count(text: string, sub: string): number {
  return text.split(sub).length - 1;
}

/** einops checks dots on a whole side before reading its characters. */
function checkDots(source: string, start: number, end: number): void {
  const text = source.slice(start, end);
  if (!text.includes('.')) return;
  const firstStray = (): Span => {
    const inEllipsis = new Set<number>();
    const at = text.indexOf('...');
    if (at >= 0) for (let i = at; i < at + 3; i++) inEllipsis.add(i);
    for (let i = 0; i < text.length; i++) {
      if (text[i] === '.' && !inEllipsis.has(i)) return { start: start + i, end: start + i + 1 };
    }
    return { start, end: start + 1 };
  };
  if (!text.includes('...')) {
    throw patternError(source, 'stray-dots', "Dots may only appear as an ellipsis '...'", firstStray());
  }
  if (count(text, '...') !== 1 || count(text, '.') !== 3) {
    const first = text.indexOf('...');
    const second = text.indexOf('...', first + 3);
    const span = second >= 0 ? { start: start + second, end: start + second + 3 } : firstStray();
    throw patternError(source, 'multiple-ellipsis', "Only one ellipsis '...' is allowed on each side", span);
  }
}

/** Name-level checks of one side, token by token, as einops' character loop does them. */
function checkNames(tokens: readonly IToken[], options: SideOptions, found: Found[]): void {
  const seen = new Set<string>();
  for (const t of tokens) {
    if (t.tokenType !== Word && t.tokenType !== Ellipsis) continue;
    const span = tokenSpan(t);
    const add = (rule: string, reason: string) => found.push({ at: span.end, order: 1, rule, reason, span });
    const key = t.tokenType === Ellipsis ? '...' : t.image;
    if (seen.has(key) && !options.allowDuplicates && !(options.allowUnderscore && key === '_')) {
      add('duplicate-axis', `Axis '${key}' appears twice on one side of the pattern`);
      continue;
    }
    if (t.tokenType === Ellipsis) {
      seen.add(key);
      continue;
    }
    if (isDecimal(t.image)) {
      const value = decimalValue(t.image);
      if (value === 0) {
        add('non-positive-anonymous-axis', `Anonymous axis must have a positive length, not ${t.image}`);
      } else if (!Number.isSafeInteger(value)) {
        // Past 2^53 the number is not even represented exactly (9007199254740993 reads as ...992).
        add('anonymous-axis-too-large', `Anonymous axis ${t.image} is too large: it is not a safe integer`);
      }
      continue; // numbers never clash: every numeric axis is its own axis
    }
    const problem = axisNameProblem(t.image, options.allowUnderscore);
    if (problem) add('invalid-identifier', `Invalid axis identifier '${t.image}': ${problem}`);
    seen.add(key);
  }
}

function parseErrorToFound(token: IToken, tokens: readonly IToken[], sideEnd: number): Found {
  if (token.tokenType === RParen) {
    return {
      at: token.startOffset,
      order: 2,
      rule: 'unbalanced-parentheses',
      reason: "Brackets are not balanced: ')' has no matching '('",
      span: tokenSpan(token),
    };
  }
  if (token.tokenType === LParen) {
    return {
      at: token.startOffset,
      order: 2,
      rule: 'nested-parentheses',
      reason: 'Axis composition is one level deep: brackets inside brackets are not allowed',
      span: tokenSpan(token),
    };
  }
  // The side ended (arrow, comma or end of pattern) inside a group: point at the unclosed '('.
  let open: IToken | undefined;
  for (const t of tokens) {
    if (t.startOffset >= sideEnd) break;
    if (t.tokenType === LParen) open = t;
    if (t.tokenType === RParen) open = undefined;
  }
  return {
    at: sideEnd,
    order: 0,
    rule: 'unclosed-parenthesis',
    reason: "Imbalanced parentheses: '(' is never closed",
    span: open ? tokenSpan(open) : { start: sideEnd, end: sideEnd + 1 },
  };
}

export interface Lexed {
  readonly source: string;
  /** Tokens the parser sees (disallowed ones removed and reported). */
  readonly tokens: IToken[];
  readonly found: Found[];
}

/**
 * Lexes a whole pattern. `allowed(token)` says whether a token type may appear at that place; others,
 * and characters the lexer does not know, become unknown-character errors at their offset.
 */
export function lex(source: string, allowed: (type: TokenType, offset: number) => boolean): Lexed {
  const result = patternLexer.tokenize(source);
  const found: Found[] = result.errors.map((e) => ({
    at: e.offset,
    order: 0,
    rule: 'unknown-character',
    reason: `Unknown character '${printable(source[e.offset])}'`,
    span: { start: e.offset, end: e.offset + 1 },
  }));
  const tokens: IToken[] = [];
  for (const t of result.tokens) {
    if (t.tokenType === Dot) continue; // reported by checkDots for its side
    if (!allowed(t.tokenType, t.startOffset)) {
      found.push({
        at: t.startOffset,
        order: 0,
        rule: 'unknown-character',
        reason: `Unknown character '${t.image[0]}'`,
        span: { start: t.startOffset, end: t.startOffset + 1 },
      });
      continue;
    }
    tokens.push(t);
  }
  return { source, tokens, found };
}

function printable(ch: string | undefined): string {
  if (ch === undefined) return '';
  if (ch === '\t') return '\\t';
  if (ch === '\n') return '\\n';
  if (ch === '\r') return '\\r';
  return ch;
}

export interface SideRange {
  readonly start: number;
  readonly end: number;
  readonly options: SideOptions;
}

/**
 * Runs the chevrotain rule `rule` over the lexed tokens, then reports the first error of the first
 * side that has one (einops reads sides left to right). Returns the CST when all is well.
 */
export function parseChecked(
  lexed: Lexed,
  rule: 'pattern' | 'einsumPattern' | 'shapePattern',
  sides: readonly SideRange[],
): CstNode {
  parser.input = lexed.tokens;
  const cst = parser[rule]();
  const parseError = parser.errors[0];
  for (const side of sides) {
    checkDots(lexed.source, side.start, side.end);
    const inSide = lexed.tokens.filter((t) => t.startOffset >= side.start && t.startOffset < side.end);
    const found = lexed.found.filter((f) => f.at >= side.start && f.at < side.end);
    checkNames(inSide, side.options, found);
    if (parseError) {
      const token = parseError.token;
      const offset = token.tokenType.name === 'EOF' ? lexed.source.length : token.startOffset;
      if (offset >= side.start && offset <= side.end) {
        found.push(parseErrorToFound(token, lexed.tokens, side.end));
      }
    }
    if (found.length > 0) {
      found.sort((a, b) => a.at - b.at || a.order - b.order);
      const first = found[0];
      throw patternError(lexed.source, first.rule, first.reason, first.span);
    }
  }
  if (parseError) {
    // Every parse error falls inside some side; this is a safety net with chevrotain's own words.
    const t = parseError.token;
    throw patternError(lexed.source, 'syntax', parseError.message, tokenSpan(t));
  }
  return cst;
}

function axisFromToken(t: IToken): Axis | 'unit' {
  const span = tokenSpan(t);
  if (t.tokenType === Ellipsis) return { kind: 'ellipsis', span };
  if (isDecimal(t.image)) {
    const value = decimalValue(t.image);
    if (value === 1) return 'unit';
    return { kind: 'anonymous', value, span };
  }
  return { kind: 'named', name: t.image, span };
}

function axisToken(node: CstNode): IToken {
  const children = node.children;
  return ((children.Word ?? children.Ellipsis) as IToken[])[0];
}

/** Turns an `expression` CST node into the AST. */
export function buildExpression(node: CstNode | undefined, span: Span): Expression {
  const parts: Array<{ at: number; node: CstNode; kind: 'axis' | 'group' }> = [];
  if (node) {
    for (const a of (node.children.axis ?? []) as CstNode[]) {
      parts.push({ at: axisToken(a).startOffset, node: a, kind: 'axis' });
    }
    for (const g of (node.children.group ?? []) as CstNode[]) {
      const lp = (g.children.LParen as IToken[])[0];
      parts.push({ at: lp.startOffset, node: g, kind: 'group' });
    }
  }
  parts.sort((a, b) => a.at - b.at);
  const dims: Dimension[] = [];
  let hasEllipsis = false;
  let ellipsisInGroup = false;
  let hasAnonymous = false;
  for (const part of parts) {
    if (part.kind === 'axis') {
      const t = axisToken(part.node);
      const axis = axisFromToken(t);
      const tspan = tokenSpan(t);
      if (axis === 'unit') {
        dims.push({ axes: [], grouped: false, span: tspan });
        continue;
      }
      if (axis.kind === 'ellipsis') hasEllipsis = true;
      if (axis.kind === 'anonymous') hasAnonymous = true;
      dims.push({ axes: [axis], grouped: false, span: tspan });
    } else {
      const g = part.node;
      const lp = (g.children.LParen as IToken[])[0];
      const rp = (g.children.RParen as IToken[])[0];
      const axes: Axis[] = [];
      const inner = ((g.children.axis ?? []) as CstNode[])
        .map(axisToken)
        .sort((a, b) => a.startOffset - b.startOffset);
      for (const t of inner) {
        const axis = axisFromToken(t);
        if (axis === 'unit') continue; // `(a 1)` is `(a)`
        if (axis.kind === 'ellipsis') {
          hasEllipsis = true;
          ellipsisInGroup = true;
        }
        if (axis.kind === 'anonymous') hasAnonymous = true;
        axes.push(axis);
      }
      dims.push({ axes, grouped: true, span: { start: lp.startOffset, end: rp.startOffset + 1 } });
    }
  }
  return { dims, span, hasEllipsis, ellipsisInGroup, hasAnonymous };
}

/** Offsets of top-level `->` occurrences (einops splits on the raw string). */
export function arrowOffsets(source: string): number[] {
  const at: number[] = [];
  for (let i = source.indexOf('->'); i >= 0; i = source.indexOf('->', i + 2)) at.push(i);
  return at;
}
