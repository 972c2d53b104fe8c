/**
 * The one error class einvit throws for every rejected input: malformed patterns, shapes that do not
 * fit, bad axis lengths, bad files. Messages name what is wrong and where; pattern errors draw a caret
 * under the offending position.
 *
 * @example
 * try { rearrange(x, 'b (h w -> b h w'); } catch (e) { if (e instanceof EinopsError) console.log(e.message); }
 */
export class EinopsError extends Error {
  /** Stable slug of the rule that broke (e.g. `duplicate-axis`), when known. */
  readonly rule?: string;

  constructor(message: string, options?: { rule?: string; cause?: unknown }) {
    super(message, options?.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'EinopsError';
    this.rule = options?.rule;
  }
}

/** Renders `pattern` with a caret line under characters [start, end). */
export function caret(pattern: string, start: number, end = start + 1): string {
  // Columns count code points, not UTF-16 units, so the caret stays under astral characters.
  const column = [...pattern.slice(0, Math.max(0, start))].length;
  const width = Math.max(1, [...pattern.slice(Math.max(0, start), end)].length);
  return `  ${pattern}\n  ${' '.repeat(column)}${'^'.repeat(width)}`;
}
