// Text form of a graph, one node a line, for `einvit explain --graph` and test failures.
import { fmtDim, fmtShape } from './dims.js';
import type { Graph, Node } from './graph.js';
import type { Op } from './kinds.js';

const SHORT: Record<string, string> = { float32: 'f32', int32: 'i32', bool: 'bool' };

function attrs(op: Op): string {
  switch (op.kind) {
    case 'input':
    case 'param':
      return `'${op.name}'`;
    case 'const': {
      const vals = [...op.data.slice(0, 4)].map((v) => +v.toPrecision(6));
      return `${vals.join(', ')}${op.data.length > 4 ? ', ...' : ''}`;
    }
    case 'reshape':
    case 'expand':
      return fmtShape(op.shape);
    case 'transpose':
      return `[${op.perm.join(', ')}]`;
    case 'reduce':
      return `${op.op}, axes [${op.axes.join(', ')}]${op.keepDims ? ', keepDims' : ''}`;
    case 'tile':
      return `[${op.reps.join(', ')}]`;
    case 'slice':
      return `axis ${op.axis}, ${op.start}:${op.end}`;
    case 'concat':
    case 'softmax':
    case 'logSoftmax':
    case 'argMax':
      return `axis ${op.axis}`;
    case 'layerNorm':
      return `eps ${op.eps}`;
    case 'layerNormStat':
      return `${op.which}, eps ${op.eps}`;
    case 'gelu':
      return op.approximate;
    case 'cast':
      return op.to;
    case 'attention':
      return `scale ${+op.scale.toPrecision(6)}`;
    default:
      return '';
  }
}

/** One line: `%7 = matMul(%5, %6)  [N, 197, 768] f32`. */
export function formatNode(n: Node): string {
  const a = attrs(n.op);
  const args = [...n.inputs.map((i) => `%${i}`), ...(a ? [a] : [])].join(', ');
  return `%${n.id} = ${n.op.kind}(${args})`.padEnd(48) + `${fmtShape(n.type.shape)} ${SHORT[n.type.dtype]}`;
}

/**
 * The whole graph as text: one node a line, then the outputs.
 *
 * @example
 * console.log(printGraph(graph));
 * // %0 = input('x')                                [N, 4] f32
 * // ...
 * // outputs: y = %3
 */
export function printGraph(g: Graph): string {
  const lines = g.nodes.map(formatNode);
  lines.push(`outputs: ${g.outputs.map((o) => `${o.name} = %${o.id}`).join(', ')}`);
  return lines.join('\n');
}

export { fmtDim, fmtShape };
