// Axis-name rules, as einops applies them (Python identifiers that neither start nor end with `_`).

const identifier = /^[\p{ID_Start}_][\p{ID_Continue}]*$/u;
const decimalDigit = /^\p{Nd}$/u;

/** Python's str.isdecimal: one or more Unicode decimal digits. */
export function isDecimal(text: string): boolean {
  if (text.length === 0) return false;
  for (const ch of text) if (!decimalDigit.test(ch)) return false;
  return true;
}

/** Python's int() of a decimal string (Unicode digits included). */
export function decimalValue(text: string): number {
  let value = 0;
  for (const ch of text) {
    let cp = ch.codePointAt(0)!;
    // Decimal digits come in contiguous runs of ten starting at zero.
    let start = cp;
    while (decimalDigit.test(String.fromCodePoint(start - 1))) start--;
    cp = (cp - start) % 10;
    value = value * 10 + cp;
  }
  return value;
}

/**
 * Why `name` is not a valid axis name, or undefined when it is. `_` alone is accepted only when
 * `allowUnderscore` (parse_shape and einsum).
 */
export function axisNameProblem(name: string, allowUnderscore = false): string | undefined {
  if (!identifier.test(name)) return 'not a valid Python identifier';
  if (name.startsWith('_') || name.endsWith('_')) {
    if (name === '_' && allowUnderscore) return undefined;
    return 'axis names must not start or end with an underscore';
  }
  return undefined;
}
