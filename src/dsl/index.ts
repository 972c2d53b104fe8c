// Public face of the pattern language: text in, the library's AST out, EinopsError on any rejection.
import type { CstNode, IToken } from 'chevrotain';
import type { EinsumPattern, Expression, PackPattern, Pattern } from './ast.js';
import { arrowOffsets, buildExpression, lex, parseChecked, patternError, type SideRange } from './build.js';
import { axisNameProblem } from './names.js';
import { Comma, packLexer, PackStar, Star } from './tokens.js';

export type * from './ast.js';
export { axisNameProblem } from './names.js';

function child(cst: CstNode, label: string): CstNode[] {
  return (cst.children[label] ?? []) as CstNode[];
}

/**
 * Parses a `left -> right` pattern of rearrange, reduce or repeat.
 *
 * @example
 * const p = parsePattern('b (h w) c -> b h w c');
 * p.left.dims.length; // 3
 */
export function parsePattern(source: string): Pattern {
  const arrows = arrowOffsets(source);
  if (arrows.length === 0) throw patternError(source, 'missing-arrow', "Pattern must contain '->'");
  if (arrows.length > 1) {
    throw patternError(source, 'multiple-arrows', "Pattern must contain exactly one '->'", {
      start: arrows[1],
      end: arrows[1] + 2,
    });
  }
  const arrow = arrows[0];
  const lexed = lex(source, (type) => type !== Comma && type !== Star);
  const sides: SideRange[] = [
    { start: 0, end: arrow, options: {} },
    { start: arrow + 2, end: source.length, options: {} },
  ];
  const cst = parseChecked(lexed, 'pattern', sides);
  return {
    source,
    left: buildExpression(child(cst, 'left')[0], { start: 0, end: arrow }),
    right: buildExpression(child(cst, 'right')[0], { start: arrow + 2, end: source.length }),
  };
}

/**
 * Parses an einsum pattern: comma-separated inputs, `->`, one output. Names may be several letters
 * long and may repeat within an input (traces, diagonals).
 *
 * @example
 * parseEinsum('b h q d, b h k d -> b h q k').inputs.length; // 2
 */
export function parseEinsum(source: string): EinsumPattern {
  const arrows = arrowOffsets(source);
  if (arrows.length === 0) {
    throw patternError(source, 'einsum-missing-arrow', "Einsum pattern must contain '->'");
  }
  if (arrows.length > 1) {
    throw patternError(source, 'multiple-arrows', "Einsum pattern must contain exactly one '->'", {
      start: arrows[1],
      end: arrows[1] + 2,
    });
  }
  const arrow = arrows[0];
  const lexed = lex(source, (type, offset) => type !== Star && (type !== Comma || offset < arrow));
  const sides: SideRange[] = [];
  let start = 0;
  for (const t of lexed.tokens) {
    if (t.tokenType === Comma) {
      sides.push({ start, end: t.startOffset, options: { allowUnderscore: true, allowDuplicates: true } });
      start = t.startOffset + 1;
    }
  }
  sides.push({ start, end: arrow, options: { allowUnderscore: true, allowDuplicates: true } });
  sides.push({ start: arrow + 2, end: source.length, options: { allowUnderscore: true } });
  const cst = parseChecked(lexed, 'einsumPattern', sides);
  const inputs = child(cst, 'inputs');
  return {
    source,
    inputs: sides.slice(0, -1).map((s, i) => buildExpression(inputs[i], { start: s.start, end: s.end })),
    output: buildExpression(child(cst, 'output')[0], { start: arrow + 2, end: source.length }),
  };
}

/**
 * Parses a parse_shape pattern: one side, `_` skips a dimension.
 *
 * @example
 * parseShapePattern('b _ h w').dims.length; // 4
 */
export function parseShapePattern(source: string): Expression {
  return parseSide(source, { allowUnderscore: true });
}

/**
 * Parses one side on its own (e.g. EinMix's weight shape `'c_in c_out'`).
 *
 * @example
 * parseSide('h c_in c_out').dims.length; // 3
 */
export function parseSide(source: string, options: { allowUnderscore?: boolean } = {}): Expression {
  const lexed = lex(source, (type) => type !== Comma && type !== Star && type.name !== 'Arrow');
  const cst = parseChecked(lexed, 'shapePattern', [{ start: 0, end: source.length, options }]);
  return buildExpression(child(cst, 'expression')[0], { start: 0, end: source.length });
}

/**
 * Parses a pack/unpack pattern such as `b * c`: names separated by any whitespace around exactly
 * one `*`.
 *
 * @example
 * parsePackPattern('b * c', 'pack'); // { names: ['b', 'c'], star: 1, ... }
 */
export function parsePackPattern(source: string, op: 'pack' | 'unpack'): PackPattern {
  const items = packLexer.tokenize(source).tokens;
  const where = (t: IToken) => ({ start: t.startOffset, end: t.startOffset + t.image.length });
  const seen = new Set<string>();
  for (const t of items) {
    if (seen.has(t.image)) {
      throw patternError(
        source,
        'pack-duplicate-axis',
        `Duplicate axis '${t.image}' in ${op} pattern`,
        where(t),
      );
    }
    seen.add(t.image);
  }
  const star = items.findIndex((t) => t.tokenType === PackStar);
  if (star < 0) throw patternError(source, 'pack-missing-star', `No '*' axis in ${op} pattern`);
  for (const t of items) {
    if (t.tokenType === PackStar) continue;
    const problem = axisNameProblem(t.image);
    if (problem) {
      throw patternError(
        source,
        'pack-invalid-axis-name',
        `Invalid axis name '${t.image}' in ${op} pattern: ${problem}`,
        where(t),
      );
    }
  }
  return { source, names: items.filter((t) => t.tokenType !== PackStar).map((t) => t.image), star };
}
