// Graph passes: each node is rewritten as it is copied into a fresh list (inputs already
// rewritten), then dead nodes are dropped. Rules: reshape of reshape -> one reshape; transpose of
// transpose -> composed perm; identities (same-shape reshape, identity perm, tile by ones, cast to
// the same dtype, expand to the same shape) vanish; nodes whose inputs are all constants are folded;
// equal nodes on equal inputs are shared (CSE). Then slices sink towards the inputs (see sinkSlices):
// what only feeds a slice is computed only for the slice. Last, a transposed product is written as
// the product of the transposed factors (see transposeProducts).
import { tf } from '../tf.js';
import { dimEq, shapeEq, type Dim, type Shape } from './dims.js';
import { NodeList, type Graph, type Node } from './graph.js';
import { evaluate } from './evaluate.js';
import { BINARY, COMPARE, UNARY, type Data, type Op } from './kinds.js';
import { rebuild, type Sym } from './builder.js';

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
  /** Push slices through the ops that feed only them (see {@link sinkSlices}). */
  readonly sinkSlices?: boolean;
  /** Move a concat before the transposes or reshapes that feed it alone (see {@link concatsFirst}). */
  readonly concatsFirst?: boolean;
  /** Rewrite `(a @ b)ᵀ` as `bᵀ @ aᵀ` (see {@link transposeProducts}). */
  readonly transposeProducts?: boolean;
  /**
   * Write attention nodes as MatMul/Softmax ops first (see {@link decomposeAttention}); off by
   * default, as ONNX's fused attention forms need the node. The compiler turns it on for the
   * `'matmul'` form.
   */
  readonly decomposeAttention?: boolean;
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
  let out = rewrite(options.decomposeAttention ? decomposeAttention(g) : g, options);
  // Each round moves every sinkable slice one op up; rounds end when none moves (bounded: a slice
  // only ever moves towards the inputs).
  for (let round = 0; options.sinkSlices !== false && round < g.nodes.length; round++) {
    const sunk = sinkOnce(out);
    if (!sunk) break;
    out = rewrite(sunk, options);
  }
  for (let round = 0; options.concatsFirst !== false && round < g.nodes.length; round++) {
    const moved = concatsFirst(out);
    if (!moved) break;
    out = rewrite(moved, options);
  }
  if (options.transposeProducts !== false) {
    const swapped = transposeProducts(out);
    if (swapped) out = rewrite(swapped, options);
  }
  return out;
}

/**
 * Every attention node written as `softmax((q·scale) @ kᵀ) @ v` with plain ops (GraphBuilder's
 * `attentionProbs`, the ops the ONNX `'matmul'` form emits anyway). In a training step the
 * gradient recomputes the same probabilities with the same ops, so CSE then keeps one softmax and
 * one score product per head instead of two.
 *
 * @example
 * const g2 = optimize(stepGraph, { decomposeAttention: true });
 */
export function decomposeAttention(g: Graph): Graph {
  if (!g.nodes.some((n) => n.op.kind === 'attention')) return g;
  const { g: b, syms } = rebuild(g, undefined, (node, [q, k, v], builder) =>
    node.op.kind === 'attention' ? builder.attentionProbs(q, k, node.op.scale).matMul(v) : undefined,
  );
  const outputs: Record<string, Sym> = {};
  for (const o of g.outputs) outputs[o.name] = syms[o.id];
  return b.build(outputs);
}

/**
 * One round of moving concats towards the inputs: a concat whose inputs are all transposes by one
 * permutation, or all reshapes merging the same inner axes into the concat axis, and feed nothing
 * else, becomes the transpose (or reshape) of a concat of their inputs. A gradient that lays
 * per-head dq, dk, dv back into the packed q/k/v layout then costs one concat and one transpose
 * instead of three transposes and a concat. Returns undefined when nothing moved.
 *
 * @example
 * // concat([reshape(transpose(a, [0, 2, 1, 3]), [N, T, 96]), ...], 2)
 * //   -> reshape(transpose(concat([a, ...], 1), [0, 2, 1, 3]), [N, T, 288])
 */
export function concatsFirst(g: Graph): Graph | undefined {
  return replaceNodes(g, (n, list, map, uses) => {
    const ins = n.inputs.map((i) => g.nodes[i]);
    if (n.op.kind !== 'concat' || ins.length < 2 || !ins.every((x) => uses[x.id] === 1)) return undefined;
    const moved = concatThrough(n.op.axis, n.type.shape, ins, (x) => g.nodes[x.inputs[0]].type.shape);
    if (!moved) return undefined;
    const inner = list.add(
      { kind: 'concat', axis: moved.axis },
      ins.map((x) => map[x.inputs[0]]),
    );
    return list.add(moved.outer, [inner]);
  });
}

/**
 * Copies `g`'s nodes in order, letting `replace` add something else in place of a node (returning
 * the id that stands for it; `map` holds the new ids of earlier nodes, `uses` the old graph's
 * consumer counts, outputs included). The result after dead-node removal, or undefined when
 * `replace` changed nothing.
 */
function replaceNodes(
  g: Graph,
  replace: (n: Node, list: NodeList, map: readonly number[], uses: readonly number[]) => number | undefined,
): Graph | undefined {
  const uses = g.nodes.map(() => 0);
  for (const n of g.nodes) for (const i of n.inputs) uses[i]++;
  for (const o of g.outputs) uses[o.id]++;
  const list = new NodeList();
  const map: number[] = [];
  let changed = false;
  for (const n of g.nodes) {
    const id = replace(n, list, map, uses);
    if (id !== undefined) changed = true;
    map[n.id] =
      id ??
      list.add(
        n.op,
        n.inputs.map((i) => map[i]),
      );
  }
  return changed
    ? prune({ nodes: list.nodes, outputs: g.outputs.map((o) => ({ name: o.name, id: map[o.id] })) })
    : undefined;
}

/**
 * For a concat along `axis` (output shape `out`) of `ins`: the axis to concat their inputs along and
 * the op to apply after, when they are all transposes by one permutation, or all reshapes merging
 * axes `axis..axis+k` of their inputs (equal inner lengths) into `axis`; undefined otherwise.
 */
function concatThrough(
  axis: number,
  out: Shape,
  ins: readonly Node[],
  srcShape: (x: Node) => Shape,
): { axis: number; outer: Op } | undefined {
  const a = normAxis(axis, out.length);
  const first = ins[0].op;
  if (first.kind === 'transpose') {
    const perm = first.perm.join();
    if (!ins.every((x) => x.op.kind === 'transpose' && x.op.perm.join() === perm)) return undefined;
    return { axis: first.perm[a], outer: { kind: 'transpose', perm: [...first.perm] } };
  }
  if (first.kind !== 'reshape' || !ins.every((x) => x.op.kind === 'reshape')) return undefined;
  const s0 = srcShape(ins[0]);
  const k = s0.length - out.length;
  if (k < 1) return undefined;
  const fits = (x: Node) => {
    const src = srcShape(x);
    const o = x.type.shape;
    if (src.length !== s0.length) return false;
    const same = (p: number, q: number) => dimEq(src[p], o[q]);
    for (let i = 0; i < a; i++) if (!same(i, i)) return false;
    for (let i = a + 1; i < o.length; i++) if (!same(i + k, i)) return false;
    const group = src.slice(a, a + k + 1);
    if (!group.every((d): d is number => typeof d === 'number')) return false;
    // The inner lengths of the group match the first input's: only the outer one may differ.
    if (!group.slice(1).every((d, i) => d === s0[a + 1 + i])) return false;
    return o[a] === group.reduce((p, d) => p * d, 1);
  };
  if (!ins.every(fits)) return undefined;
  return { axis: a, outer: { kind: 'reshape', shape: [...out] } };
}

/** Whether `perm` swaps the last two axes and keeps the others. */
function swapsLastTwo(perm: readonly number[]): boolean {
  const r = perm.length;
  return (
    r >= 2 && perm[r - 1] === r - 2 && perm[r - 2] === r - 1 && perm.slice(0, -2).every((p, i) => p === i)
  );
}

/**
 * `(a @ b)ᵀ` (last two axes swapped) becomes `bᵀ @ aᵀ` where the product feeds nothing else: the
 * factors' transposes then merge with transposes already there (a weight gradient `(xᵀ @ dy)ᵀ`
 * becomes `dyᵀ @ x`) or fold into onnxruntime's MatMul (its transpose fusion), and the copy of the
 * product goes. Returns undefined when nothing changed.
 *
 * @example
 * const g2 = transposeProducts(graph) ?? graph;
 */
export function transposeProducts(g: Graph): Graph | undefined {
  return replaceNodes(g, (n, list, map, uses) => {
    const p = n.op.kind === 'transpose' ? g.nodes[n.inputs[0]] : undefined;
    if (n.op.kind !== 'transpose' || p?.op.kind !== 'matMul' || uses[p.id] !== 1 || !swapsLastTwo(n.op.perm))
      return undefined;
    const t = (id: number) => {
      const r = g.nodes[id].type.shape.length;
      return list.add({ kind: 'transpose', perm: [...Array(r - 2).keys(), r - 1, r - 2] }, [map[id]]);
    };
    const [a, b] = p.inputs;
    return list.add({ kind: 'matMul' }, [t(b), t(a)]);
  });
}

function rewrite(g: Graph, options: PassOptions): Graph {
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

type SliceOp = Extract<Op, { kind: 'slice' }>;
/** How one input of a node is read when the node's output is sliced: as is, or sliced. */
type InputSlice = 'keep' | { axis: number; start: number; end: number };

const ELEMENTWISE = new Set<string>([...UNARY, ...BINARY, ...COMPARE, 'where', 'gelu', 'cast']);

/**
 * The slices of its inputs that compute `node[axis start:end]`, and the op to apply to them; undefined
 * where the op mixes positions along `axis` (a reduction or softmax over it, a reshape that merges it).
 */
function sliceThrough(
  node: Node,
  inputs: readonly Node[],
  axis: number,
  start: number,
  end: number,
): { op: Op; ins: InputSlice[] } | undefined {
  const op = node.op;
  const out = node.type.shape;
  const r = out.length;
  const len = end - start;
  const same = (): InputSlice => ({ axis, start, end });
  /** A broadcast input: sliced where it has the axis, kept where it is absent or of length 1. */
  const broadcast = (x: Node, outAxis: number): InputSlice => {
    const ax = outAxis - (r - x.type.shape.length);
    return ax < 0 || x.type.shape[ax] === 1 ? 'keep' : { axis: ax, start, end };
  };
  if (ELEMENTWISE.has(op.kind)) return { op, ins: inputs.map((x) => broadcast(x, axis)) };
  switch (op.kind) {
    case 'layerNorm':
      return axis === r - 1 ? undefined : { op, ins: [same(), 'keep', 'keep'] };
    case 'layerNormStat':
      return axis === r - 1 ? undefined : { op, ins: [same()] };
    case 'softmax':
    case 'logSoftmax':
      return axis === (op.axis < 0 ? op.axis + r : op.axis) ? undefined : { op, ins: [same()] };
    case 'transpose':
      return { op, ins: [{ axis: op.perm[axis], start, end }] };
    case 'reshape': {
      // Only where every axis up to the sliced one is unchanged (heads split or merged after it).
      const inShape = inputs[0].type.shape;
      if (axis >= inShape.length || !out.slice(0, axis + 1).every((d, i) => dimEq(d, inShape[i])))
        return undefined;
      return { op: { kind: 'reshape', shape: resized(out, axis, len) }, ins: [same()] };
    }
    case 'expand':
      return {
        op: { kind: 'expand', shape: resized(op.shape, axis, len) },
        ins: [broadcast(inputs[0], axis)],
      };
    case 'matMul': {
      if (axis === r - 1) return { op, ins: ['keep', { axis: inputs[1].type.shape.length - 1, start, end }] };
      if (axis === r - 2) return { op, ins: [{ axis: inputs[0].type.shape.length - 2, start, end }, 'keep'] };
      return { op, ins: inputs.map((x) => broadcast(x, axis)) };
    }
    case 'attention':
      // Rows of q are independent; columns of the output are columns of v.
      if (axis === r - 2) return { op, ins: [same(), 'keep', 'keep'] };
      if (axis === r - 1) return { op, ins: ['keep', 'keep', same()] };
      return { op, ins: [same(), same(), same()] };
    case 'slice': {
      const a = op.axis < 0 ? op.axis + r : op.axis;
      if (a !== axis) return undefined;
      return { op: { kind: 'slice', axis, start: op.start + start, end: op.start + end }, ins: ['keep'] };
    }
    default:
      return undefined;
  }
}

function resized(shape: readonly Dim[], axis: number, len: number): Dim[] {
  return shape.map((d, i) => (i === axis ? len : d));
}

/**
 * One round of slice sinking: a slice of a node that feeds nothing but slices along one axis (which
 * do not overlap, so no work is repeated) becomes the node applied to slices of its inputs. The class
 * token's path through the last block then runs on one token, and a packed q/k/v projection split by
 * three slices becomes three projections with no copy. Returns undefined when nothing moved.
 */
function sinkOnce(g: Graph): Graph | undefined {
  const consumers: number[][] = g.nodes.map(() => []);
  for (const n of g.nodes) for (const i of new Set(n.inputs)) consumers[i].push(n.id);
  for (const o of g.outputs) consumers[o.id].push(-1);
  const sinkable = (p: Node, axis: number): boolean => {
    const cs = consumers[p.id];
    if (cs.some((c) => c < 0)) return false;
    const slices = cs.map((c) => g.nodes[c].op);
    if (!slices.every((s) => s.kind === 'slice' && normAxis(s.axis, p.type.shape.length) === axis))
      return false;
    const ranges = (slices as SliceOp[]).map((s) => [s.start, s.end]).sort((a, b) => a[0] - b[0]);
    return ranges.every(([s], i) => i === 0 || s >= ranges[i - 1][1]);
  };
  const list = new NodeList();
  const map: number[] = [];
  let moved = false;
  for (const n of g.nodes) {
    const ins = n.inputs.map((i) => map[i]);
    if (n.op.kind === 'slice') {
      const p = g.nodes[n.inputs[0]];
      const axis = normAxis(n.op.axis, p.type.shape.length);
      const through =
        p.op.kind !== 'input' && sinkable(p, axis)
          ? sliceThrough(
              p,
              p.inputs.map((i) => g.nodes[i]),
              axis,
              n.op.start,
              n.op.end,
            )
          : undefined;
      if (through) {
        const { op, ins: how } = through;
        const sliced = p.inputs.map((i, k) => {
          const h = how[k];
          return h === 'keep' ? map[i] : list.add({ kind: 'slice', ...h }, [map[i]]);
        });
        // A slice of a slice composes into one slice of the inner input.
        map[n.id] = op.kind === 'slice' ? list.add(op, [map[p.inputs[0]]]) : list.add(op, sliced);
        moved = true;
        continue;
      }
    }
    map[n.id] = list.add(n.op, ins);
  }
  return moved
    ? prune({ nodes: list.nodes, outputs: g.outputs.map((o) => ({ name: o.name, id: map[o.id] })) })
    : undefined;
}

function normAxis(axis: number, rank: number): number {
  return axis < 0 ? axis + rank : axis;
}
