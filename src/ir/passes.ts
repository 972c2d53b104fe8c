// Graph passes: each node is rewritten as it is copied into a fresh list (inputs already
// rewritten), then dead nodes are dropped. Rules: reshape of reshape -> one reshape; transpose of
// transpose -> composed perm; identities (same-shape reshape, identity perm, tile by ones, cast to
// the same dtype, expand to the same shape) vanish; nodes whose inputs are all constants are folded;
// equal nodes on equal inputs are shared (CSE).
import { tf } from '../tf.js';
import { shapeEq } from './dims.js';
import { NodeList, type Graph, type Node } from './graph.js';
import { evaluate } from './evaluate.js';
import type { Data, Op } from './kinds.js';

/** Largest constant (elements) that folding may create: folding must not bloat the model. */
const FOLD_LIMIT = 1 << 16;
/** Constants up to this size take part in CSE (hashing their data). */
const CSE_DATA_LIMIT = 256;

/** Which rewrites to run; all on by default. */
export interface PassOptions {
  readonly mergeReshapes?: boolean;
  readonly mergeTransposes?: boolean;
  readonly dropIdentities?: boolean;
  readonly foldConstants?: boolean;
  readonly cse?: boolean;
}

function key(op: Op, inputs: readonly number[]): string | undefined {
  if (op.kind === 'input' || op.kind === 'param') return undefined;
  if (op.kind === 'const') {
    if (op.data.length > CSE_DATA_LIMIT) return undefined;
    return `const|${op.type.dtype}|${op.type.shape.join(',')}|${Array.from(op.data).join(',')}`;
  }
  return `${JSON.stringify(op)}|${inputs.join(',')}`;
}

function fold(node: { op: Op; type: Node['type'] }, inputs: readonly Node[]): Op | undefined {
  const size = node.type.shape.reduce<number>((p, d) => p * (typeof d === 'number' ? d : Infinity), 1);
  if (!(size <= FOLD_LIMIT)) return undefined;
  const nodes: Node[] = inputs.map((n, i) => ({ ...n, id: i, inputs: [] }));
  nodes.push({ id: nodes.length, op: node.op, inputs: inputs.map((_, i) => i), type: node.type });
  const { y } = evaluate({ nodes, outputs: [{ name: 'y', id: nodes.length - 1 }] }, {});
  const values = y.dataSync();
  y.dispose();
  const dtype = node.type.dtype;
  const data: Data =
    dtype === 'float32'
      ? Float32Array.from(values)
      : dtype === 'int32'
        ? Int32Array.from(values)
        : Uint8Array.from(values, (v) => (v ? 1 : 0));
  return { kind: 'const', type: node.type, data };
}

/**
 * Optimises a graph (see the module comment); returns a new graph computing the same outputs.
 *
 * @example
 * const g2 = optimize(graph);
 * console.log(printGraph(g2));
 */
export function optimize(g: Graph, options: PassOptions = {}): Graph {
  const o = {
    mergeReshapes: true,
    mergeTransposes: true,
    dropIdentities: true,
    foldConstants: true,
    cse: true,
    ...options,
  };
  const list = new NodeList();
  const map: number[] = []; // old id -> new id
  const seen = new Map<string, number>();
  const add = (op: Op, inputs: readonly number[]): number => {
    const k = o.cse ? key(op, inputs) : undefined;
    if (k !== undefined) {
      const hit = seen.get(k);
      if (hit !== undefined) return hit;
    }
    const id = list.add(op, inputs);
    if (k !== undefined) seen.set(k, id);
    return id;
  };
  const rewrite = (op: Op, inputs: number[], type: Node['type']): number => {
    const first = list.nodes[inputs[0]];
    if (o.dropIdentities && first) {
      const same = shapeEq(first.type.shape, type.shape) && first.type.dtype === type.dtype;
      if (same && (op.kind === 'reshape' || op.kind === 'expand' || op.kind === 'cast')) return inputs[0];
      if (op.kind === 'transpose' && op.perm.every((p, i) => p === i)) return inputs[0];
      if (op.kind === 'tile' && op.reps.every((r) => r === 1)) return inputs[0];
      if (op.kind === 'reduce' && op.axes.length === 0 && same) return inputs[0];
    }
    if (o.mergeReshapes && op.kind === 'reshape' && first?.op.kind === 'reshape') {
      return rewrite(op, [first.inputs[0]], type);
    }
    if (o.mergeTransposes && op.kind === 'transpose' && first?.op.kind === 'transpose') {
      const inner = first.op.perm;
      return rewrite({ kind: 'transpose', perm: op.perm.map((p) => inner[p]) }, [first.inputs[0]], type);
    }
    if (
      o.foldConstants &&
      inputs.length > 0 &&
      op.kind !== 'const' &&
      inputs.every((i) => list.nodes[i].op.kind === 'const')
    ) {
      const folded = fold(
        { op, type },
        inputs.map((i) => list.nodes[i]),
      );
      if (folded) return add(folded, []);
    }
    return add(op, inputs);
  };
  tf.tidy(() => {
    for (const n of g.nodes)
      map[n.id] = rewrite(
        n.op,
        n.inputs.map((i) => map[i]),
        n.type,
      );
  });
  return prune({ nodes: list.nodes, outputs: g.outputs.map((out) => ({ name: out.name, id: map[out.id] })) });
}

/**
 * Dead-node elimination: keeps the nodes the outputs need (and every graph input, so the
 * program's signature stays), renumbered in order.
 *
 * @example
 * const live = prune(graph);
 */
export function prune(g: Graph): Graph {
  const live = new Set<number>();
  const stack = g.outputs.map((o) => o.id);
  for (const n of g.nodes) if (n.op.kind === 'input') stack.push(n.id);
  while (stack.length) {
    const id = stack.pop()!;
    if (live.has(id)) continue;
    live.add(id);
    stack.push(...g.nodes[id].inputs);
  }
  const renum: number[] = [];
  const nodes: Node[] = [];
  for (const n of g.nodes) {
    if (!live.has(n.id)) continue;
    renum[n.id] = nodes.length;
    nodes.push({ ...n, id: nodes.length, inputs: n.inputs.map((i) => renum[i]) });
  }
  return { nodes, outputs: g.outputs.map((out) => ({ name: out.name, id: renum[out.id] })) };
}
