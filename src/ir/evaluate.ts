// A reference interpreter of the IR on tfjs: the numbers every pass and the ONNX emitter are
// checked against. Not a fast path (no fusion, one tfjs op per node).
import { tf } from '../tf.js';
import { CompileError } from '../errors.js';
import { fmtShape, isSym } from './dims.js';
import type { Graph, Node } from './graph.js';

function tensorOf(n: Node & { op: { data: ArrayLike<number> } }): tf.Tensor {
  const shape = n.type.shape as number[];
  if (n.type.dtype === 'bool')
    return tf.tensor(
      Array.from(n.op.data, (v) => v !== 0),
      shape,
      'bool',
    );
  return tf.tensor(n.op.data as Float32Array | Int32Array, shape, n.type.dtype);
}

/** Concrete shape of a node given the bound symbols. */
function concrete(n: Node, syms: Map<string, number>): number[] {
  return n.type.shape.map((d) => (isSym(d) ? d.coeff * syms.get(d.sym)! : d));
}

function run(n: Node, x: tf.Tensor[], syms: Map<string, number>): tf.Tensor {
  const op = n.op;
  const [a, b, c] = x;
  switch (op.kind) {
    case 'input':
    case 'param':
    case 'const':
      throw new Error('unreachable');
    case 'reshape':
      return tf.reshape(a, concrete(n, syms));
    case 'transpose':
      return tf.transpose(a, [...op.perm]);
    case 'reduce': {
      const axes = [...op.axes];
      const k = op.keepDims;
      const num = a.dtype === 'bool' ? tf.cast(a, 'int32') : a;
      switch (op.op) {
        case 'sum':
          return tf.sum(num, axes, k);
        case 'mean':
          return tf.mean(a, axes, k);
        case 'prod':
          return tf.prod(num, axes, k);
        case 'max':
          return a.dtype === 'bool' ? tf.cast(tf.max(num, axes, k), 'bool') : tf.max(a, axes, k);
        case 'min':
          return a.dtype === 'bool' ? tf.cast(tf.min(num, axes, k), 'bool') : tf.min(a, axes, k);
        case 'any':
          return tf.any(tf.cast(a, 'bool'), axes, k);
        case 'all':
          return tf.all(tf.cast(a, 'bool'), axes, k);
      }
      break;
    }
    case 'tile':
      return tf.tile(a, [...op.reps]);
    case 'expand':
      return tf.broadcastTo(a, concrete(n, syms));
    case 'concat':
      return tf.concat(x, op.axis);
    case 'slice':
      return tf.slice(
        a,
        a.shape.map((_, i) => (i === op.axis ? op.start : 0)),
        a.shape.map((d, i) => (i === op.axis ? op.end - op.start : d)),
      );
    case 'matMul': {
      const out = concrete(n, syms);
      const batch = out.slice(0, -2);
      const bcast = (t: tf.Tensor) => tf.broadcastTo(t, [...batch, ...t.shape.slice(-2)]);
      return tf.matMul(bcast(a), bcast(b));
    }
    case 'neg':
      return tf.neg(a);
    case 'exp':
      return tf.exp(a);
    case 'log':
      return tf.log(a);
    case 'sqrt':
      return tf.sqrt(a);
    case 'rsqrt':
      return tf.rsqrt(a);
    case 'reciprocal':
      return tf.reciprocal(a);
    case 'tanh':
      return tf.tanh(a);
    case 'erf':
      return tf.erf(a);
    case 'relu':
      return tf.relu(a);
    case 'sigmoid':
      return tf.sigmoid(a);
    case 'abs':
      return tf.abs(a);
    case 'sign':
      return tf.sign(a);
    case 'sin':
      return tf.sin(a);
    case 'cos':
      return tf.cos(a);
    case 'not':
      return tf.logicalNot(a);
    case 'add':
      return tf.add(a, b);
    case 'sub':
      return tf.sub(a, b);
    case 'mul':
      return tf.mul(a, b);
    case 'div':
      return a.dtype === 'int32' ? tf.floorDiv(a, b) : tf.div(a, b);
    case 'pow':
      return tf.pow(a, b);
    case 'maximum':
      return tf.maximum(a, b);
    case 'minimum':
      return tf.minimum(a, b);
    case 'equal':
      return tf.equal(a, b);
    case 'less':
      return tf.less(a, b);
    case 'greater':
      return tf.greater(a, b);
    case 'and':
      return tf.logicalAnd(a, b);
    case 'or':
      return tf.logicalOr(a, b);
    case 'where': {
      const shape = concrete(n, syms);
      return tf.where(tf.broadcastTo(a, shape), tf.broadcastTo(b, shape), tf.broadcastTo(c, shape));
    }
    case 'softmax':
      return op.axis === a.rank - 1 ? tf.softmax(a) : tf.exp(tf.sub(a, tf.logSumExp(a, op.axis, true)));
    case 'logSoftmax':
      return tf.sub(a, tf.logSumExp(a, op.axis, true));
    case 'layerNorm': {
      const { mean, variance } = tf.moments(a, -1, true);
      return tf.add(tf.mul(tf.div(tf.sub(a, mean), tf.sqrt(tf.add(variance, op.eps))), b), c);
    }
    case 'layerNormStat': {
      const { mean, variance } = tf.moments(a, -1, true);
      return op.which === 'mean' ? mean : tf.rsqrt(tf.add(variance, op.eps));
    }
    case 'gelu':
      if (op.approximate === 'tanh') {
        const inner = tf.mul(Math.sqrt(2 / Math.PI), tf.add(a, tf.mul(0.044715, tf.pow(a, 3))));
        return tf.mul(tf.mul(0.5, a), tf.add(1, tf.tanh(inner)));
      }
      return tf.mul(tf.mul(0.5, a), tf.add(1, tf.erf(tf.mul(a, Math.SQRT1_2))));
    case 'cast':
      return tf.cast(a, op.to);
    case 'argMax':
      return tf.argMax(a, op.axis);
    case 'attention': {
      const scores = tf.mul(tf.matMul(a, b, false, true), op.scale);
      return tf.matMul(tf.softmax(scores), c);
    }
  }
  throw new CompileError(`evaluate: no rule for node kind '${(op as { kind: string }).kind}'`, {
    rule: 'graph',
  });
}

/**
 * Runs a graph on tfjs with concrete inputs (by input name); returns the outputs by name. Symbolic
 * dims are bound from the inputs' shapes. Intermediate tensors are disposed.
 *
 * @example
 * const { y } = evaluate(graph, { x: tf.ones([2, 4]) });
 */
export function evaluate(g: Graph, inputs: Record<string, tf.Tensor>): Record<string, tf.Tensor> {
  const syms = new Map<string, number>();
  for (const n of g.nodes) {
    if (n.op.kind !== 'input') continue;
    const t = inputs[n.op.name];
    const want = n.type.shape;
    if (!t) throw new CompileError(`evaluate: input '${n.op.name}' is missing`, { rule: 'input-shape' });
    const ok =
      t.shape.length === want.length &&
      want.every((d, i) => {
        if (!isSym(d)) return d === t.shape[i];
        const v = t.shape[i] / d.coeff;
        const bound = syms.get(d.sym);
        if (!Number.isInteger(v) || (bound !== undefined && bound !== v)) return false;
        syms.set(d.sym, v);
        return true;
      });
    if (!ok) {
      throw new CompileError(
        `input '${n.op.name}' has shape [${t.shape.join(', ')}] but the graph takes ${fmtShape(want)}`,
        { rule: 'input-shape' },
      );
    }
  }
  return tf.tidy(() => {
    const values: tf.Tensor[] = [];
    for (const n of g.nodes) {
      const op = n.op;
      if (op.kind === 'input') values.push(inputs[op.name]);
      else if (op.kind === 'param' || op.kind === 'const') values.push(tensorOf(n as never));
      else
        values.push(
          run(
            n,
            n.inputs.map((i) => values[i]),
            syms,
          ),
        );
    }
    const out: Record<string, tf.Tensor> = {};
    for (const o of g.outputs) {
      const v = values[o.id];
      out[o.name] = g.nodes[o.id].op.kind === 'input' ? v.clone() : v;
    }
    return out;
  });
}
