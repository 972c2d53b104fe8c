// Parsers for the CLI's numeric flags. Errors name the flag as the user typed it (`--batch-size`),
// so they are checked here rather than left to the library, which names its own options.
import { UsageError } from '../errors.js';

/** Bounds of a numeric flag. */
export interface NumberRule {
  /** Only whole numbers (safe integers). */
  integer?: boolean;
  /** Smallest allowed value (inclusive). */
  min?: number;
  /** Values must be strictly greater than this. */
  above?: number;
  /** Values must be strictly less than this. */
  below?: number;
}

function describeRule(rule: NumberRule): string {
  const kind = rule.integer ? 'an integer' : 'a number';
  const parts: string[] = [];
  if (rule.min !== undefined) parts.push(rule.min === 0 ? '>= 0' : `>= ${rule.min}`);
  if (rule.above !== undefined) parts.push(`> ${rule.above}`);
  if (rule.below !== undefined) parts.push(`< ${rule.below}`);
  if (rule.integer && rule.min === 1 && parts.length === 1) return 'a positive integer';
  return parts.length === 0 ? kind : `${kind} ${parts.join(' and ')}`;
}

/**
 * A commander argument parser for the flag `--<flag>`: the value must be a number within `rule`,
 * else a UsageError naming the flag.
 *
 * @example
 * program.option('--batch-size <n>', 'batch size', numberFlag('batch-size', { integer: true, min: 1 }));
 * numberFlag('top', { integer: true, min: 1 })('0'); // throws "--top must be a positive integer, got '0'"
 */
export function numberFlag(flag: string, rule: NumberRule = {}): (value: string) => number {
  return (value: string): number => {
    const n = value.trim() === '' ? NaN : Number(value);
    const ok =
      Number.isFinite(n) &&
      (!rule.integer || Number.isSafeInteger(n)) &&
      (rule.min === undefined || n >= rule.min) &&
      (rule.above === undefined || n > rule.above) &&
      (rule.below === undefined || n < rule.below);
    if (!ok) {
      throw new UsageError(`--${flag} must be ${describeRule(rule)}, got '${value}'`, { rule: 'cli-flag' });
    }
    return n;
  };
}
