// Einsum's recipe: the labels of each operand and of the output, from the pattern alone (einops' rules:
// no unit axes, no composition, no numbers, output labels must appear in some input).
import { EinopsError } from '../errors.js';
import type { Expression } from '../dsl/ast.js';
import { parseEinsum } from '../dsl/index.js';

const LETTERS_LIMIT = 52; // einops maps names to single letters a-zA-Z for the backend

/** Labels of an einsum pattern: one list per operand and one for the output (`'...'` for an ellipsis). */
export interface EinsumLabels {
  readonly operands: readonly (readonly string[])[];
  readonly output: readonly string[];
}

/**
 * Parses an einsum pattern and checks einops' label rules.
 *
 * @example
 * einsumLabels('b h q d, b h k d -> b h q k').output; // ['b', 'h', 'q', 'k']
 */
export function einsumLabels(source: string): EinsumLabels {
  const parsed = parseEinsum(source);
  const seen = new Set<string>();
  const names = (e: Expression, isOutput: boolean): string[] =>
    e.dims.map((d) => {
      if (!d.grouped && d.axes.length === 1 && d.axes[0].kind === 'ellipsis') return '...';
      if (d.axes.length === 0) {
        throw new EinopsError(`Unit axes '()' and '1' are not supported in einsum: "${source}"`, {
          rule: 'einsum-unitary-axis',
        });
      }
      if (d.axes.length > 1) {
        throw new EinopsError(`Axis composition is not supported in einsum: "${source}"`, {
          rule: 'einsum-composition',
        });
      }
      const axis = d.axes[0];
      if (axis.kind === 'anonymous') {
        throw new EinopsError(`Anonymous (numeric) axes are not supported in einsum: "${source}"`, {
          rule: 'einsum-anonymous-axis',
        });
      }
      const name = axis.kind === 'named' ? axis.name : '…';
      if (isOutput) {
        if (!seen.has(name)) {
          throw new EinopsError(`Unknown axis '${name}' on the right side of einsum "${source}"`, {
            rule: 'einsum-unknown-output-axis',
          });
        }
      } else if (!seen.has(name)) {
        if (seen.size >= LETTERS_LIMIT) {
          throw new EinopsError(`Too many axes in einsum (at most ${LETTERS_LIMIT}): "${source}"`, {
            rule: 'einsum-too-many-axes',
          });
        }
        seen.add(name);
      }
      return name;
    });
  const operands = parsed.inputs.map((e) => names(e, false));
  return { operands, output: names(parsed.output, true) };
}
