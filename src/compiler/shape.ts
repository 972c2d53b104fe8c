// parse_shape: einops' rules for reading named lengths off a shape.
import { EinopsError } from '../errors.js';
import type { Expression } from '../dsl/ast.js';

/**
 * The lengths a parse_shape pattern names in `shape` (`_` skipped, `...` any number of dimensions).
 *
 * @example
 * readShape(parseShapePattern('b _ h w'), 'b _ h w', [2, 3, 4, 4]); // { b: 2, h: 4, w: 4 }
 */
export function readShape(
  exp: Expression,
  pattern: string,
  shape: readonly number[],
): Record<string, number> {
  const where = `in pattern "${pattern}" for shape [${shape.join(', ')}]`;
  if (exp.dims.some((d) => d.axes.length > 1)) {
    throw new EinopsError(`Can't parse shape with composite axes ${where}`, {
      rule: 'parse-shape-composite-axis',
    });
  }
  const ellipsisAt = exp.dims.findIndex((d) => d.axes.length === 1 && d.axes[0].kind === 'ellipsis');
  if (shape.length !== exp.dims.length) {
    if (ellipsisAt >= 0) {
      if (shape.length < exp.dims.length - 1) {
        throw new EinopsError(`Can't parse shape with this number of dimensions ${where}`, {
          rule: 'parse-shape-rank-too-small',
        });
      }
    } else {
      throw new EinopsError(`Can't parse shape with a different number of dimensions ${where}`, {
        rule: 'parse-shape-rank-mismatch',
      });
    }
  }
  const dims = [...exp.dims];
  const result: Record<string, number> = {};
  let s = 0;
  for (let i = 0; i < dims.length; i++) {
    const d = dims[i];
    if (i === ellipsisAt) {
      s += shape.length - (dims.length - 1);
      continue;
    }
    const length = shape[s++];
    if (d.axes.length === 0) {
      if (length !== 1)
        throw new EinopsError(`Length of axis ${i} is ${length}, not 1, ${where}`, {
          rule: 'parse-shape-unitary-mismatch',
        });
      continue;
    }
    const axis = d.axes[0];
    if (axis.kind === 'named') {
      if (axis.name !== '_') result[axis.name] = length;
    } else if (axis.kind === 'anonymous') {
      if (axis.value !== length) {
        throw new EinopsError(`Length of anonymous axis ${axis.value} does not match ${length} ${where}`, {
          rule: 'parse-shape-anonymous-mismatch',
        });
      }
    } else {
      throw new EinopsError(`Ellipsis inside parentheses is not allowed ${where}`, {
        rule: 'parse-shape-composite-axis',
      });
    }
  }
  return result;
}
