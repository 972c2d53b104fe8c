// Reverse-mode autodiff over the IR, after tinygrad's gradient.py: one table maps every node kind to
// its vector-Jacobian rule, written with the builder's own ops, and one walk in reverse topological
// order sums the gradients that meet. Gradients are just more graph: they print, optimise, evaluate
// and export like the forward pass.
import { CompileError } from '../errors.js';
import { dimEq, dimMul, fmtShape, isSym, type Dim, type Shape } from './dims.js';
import { GraphBuilder, rebuild, Sym } from './builder.js';
import type { Graph, Node } from './graph.js';
import type { Kind, OpOf } from './kinds.js';

/** What a rule sees of one node: its op, its inputs and output as symbolic tensors, and `dy`. */
export interface VjpArgs<K extends Kind> {
  readonly op: OpOf<K>;
  readonly inputs: readonly Sym[];
  /** The node's own value (reused by rules like exp, tanh, softmax). */
  readonly out: Sym;
  /** The gradient of the loss with respect to `out`, shaped like it. */
  readonly dy: Sym;
  readonly g: GraphBuilder;
}

/**
 * A vector-Jacobian rule: per input, a thunk building the gradient of the loss with respect to that
 * input (shaped like the input), or `null` where no gradient flows (a condition, an index). Thunks
 * keep unneeded gradients out of the graph: only inputs on a path from a `wrt` tensor are built.
 */
export type VjpRule<K extends Kind> = (args: VjpArgs<K>) => ReadonlyArray<(() => Sym) | null>;

/**
 * Marks a kind whose output carries no gradient: integer or bool results (argMax, compare), and
 * piecewise-constant ones (sign), whose derivative is zero wherever it exists.
 */
export const NO_GRADIENT = 'no gradient' as const;

type VjpTable = { readonly [K in Kind]: VjpRule<K> | typeof NO_GRADIENT };

/** `x` summed down to `shape`: undoes numpy broadcasting (leading axes, then stretched length-1 axes). */
export function sumTo(x: Sym, shape: Shape): Sym {
  const extra = x.rank - shape.length;
  if (extra < 0)
    throw new CompileError(`grad: cannot sum ${fmtShape(x.shape)} to ${fmtShape(shape)}`, { rule: 'grad' });
  let y = extra > 0 ? x.sum([...Array(extra).keys()]) : x;
  const stretched = shape.flatMap((d, i) => (d === 1 && !dimEq(y.shape[i], 1) ? [i] : []));
  if (stretched.length > 0) y = y.sum(stretched, true);
  return y;
}

/** Zeros of `shape` (symbolic dims allowed): one scalar, expanded. */
function zeros(g: GraphBuilder, shape: Shape): Sym {
  return shape.length === 0
    ? g.scalar(0)
    : g
        .scalar(0)
        .reshape(shape.map(() => 1))
        .expand(shape);
}

/** A bool tensor as 0/1 float32. */
function float(x: Sym): Sym {
  return x.cast('float32');
}

/**
 * The number of elements a reduction over `axes` of `x` averages, as a scalar: a constant, or
 * computed in the graph when a reduced axis is symbolic (the batch of a mean loss).
 */
function countOf(g: GraphBuilder, x: Sym, axes: readonly number[]): Sym {
  let known = 1;
  const symbolic: number[] = [];
  for (const a of axes) {
    const d = x.shape[a];
    if (isSym(d)) symbolic.push(a);
    else known *= d;
  }
  if (symbolic.length === 0) return g.scalar(known);
  // Ones over only the symbolic axes, summed: the batch length as a tensor, with no shape op.
  const onesShape = x.shape.map((d, i) => (symbolic.includes(i) ? d : 1));
  const n = g
    .scalar(1)
    .reshape(onesShape.map(() => 1))
    .expand(onesShape)
    .sum([...onesShape.keys()]);
  return known === 1 ? n : n.mul(known);
}

/** `dy` of a reduction with its reduced axes put back as length 1, then broadcast to `x`'s shape. */
function unreduce(dy: Sym, x: Sym, axes: readonly number[], keepDims: boolean): Sym {
  const kept = keepDims ? dy : dy.reshape(x.shape.map((d, i) => (axes.includes(i) ? 1 : d)));
  return kept.expand(x.shape);
}

/** The last two axes swapped. */
function mT(x: Sym): Sym {
  const r = x.rank;
  return x.transpose([...Array(r - 2).keys(), r - 1, r - 2]);
}

/** Sums over every axis but the last (the gradient of a per-feature vector such as LayerNorm's gamma). */
function sumLeading(x: Sym): Sym {
  return x.rank > 1 ? x.sum([...Array(x.rank - 1).keys()]) : x;
}

/**
 * The gradient of `a @ b` with respect to `b` when `b` is one `[k, n]` matrix broadcast over `a`'s
 * batch: the batch folds into the rows, `aᵀ @ dy` as one 2-D product instead of a batched product
 * followed by a sum.
 */
function matMulGradShared(a: Sym, dy: Sym): Sym {
  const rows = a.shape.slice(0, -1).reduce<Dim>((p, d) => dimMul(p, d, 'grad matMul'), 1);
  const k = a.shape[a.rank - 1];
  const n = dy.shape[dy.rank - 1];
  return a
    .reshape([rows, k])
    .transpose([1, 0])
    .matMul(dy.reshape([rows, n]));
}

const sqrt2OverPi = Math.sqrt(2 / Math.PI);

/**
 * Every node kind's vector-Jacobian rule. Typed over all kinds: a new kind without a rule (or an
 * explicit {@link NO_GRADIENT}) does not type-check.
 */
export const VJP: VjpTable = {
  input: () => [],
  param: () => [],
  const: () => [],
  reshape: ({ inputs: [x], dy }) => [() => dy.reshape(x.shape)],
  transpose: ({ op, dy }) => {
    const inverse: number[] = [];
    op.perm.forEach((p, i) => (inverse[p] = i));
    return [() => dy.transpose(inverse)];
  },
  reduce: ({ op, inputs: [x], out, dy, g }) => {
    const { axes, keepDims } = op;
    switch (op.op) {
      case 'sum':
        return [() => unreduce(dy, x, axes, keepDims)];
      case 'mean':
        return [() => unreduce(dy, x, axes, keepDims).div(countOf(g, x, axes))];
      case 'max':
      case 'min': {
        // Ties share the gradient evenly (PyTorch's amax/amin), a valid subgradient.
        return [
          () => {
            const hit = float(x.equal(unreduce(out, x, axes, keepDims)));
            const share = hit.div(hit.sum(axes, true));
            return share.mul(unreduce(dy, x, axes, keepDims));
          },
        ];
      }
      case 'prod':
        // d(prod)/dx_i = prod / x_i: exact wherever no factor is zero.
        return [() => unreduce(dy.mul(out), x, axes, keepDims).div(x)];
      case 'any':
      case 'all':
        return [null];
    }
  },
  tile: ({ op, inputs: [x], dy }) => [
    () => {
      // [r0*d0, r1*d1, ...] -> [r0, d0, r1, d1, ...], summed over the repeat axes.
      const split = x.shape.flatMap((d, i) => [op.reps[i], d]);
      return dy.reshape(split).sum(op.reps.map((_, i) => 2 * i));
    },
  ],
  expand: ({ inputs: [x], dy }) => [() => sumTo(dy, x.shape)],
  concat: ({ op, inputs, dy }) => {
    let start = 0;
    return inputs.map((x) => {
      const len = x.shape[op.axis];
      if (isSym(len))
        throw new CompileError(`grad: concat along the symbolic axis of ${fmtShape(x.shape)}`, {
          rule: 'grad',
        });
      const from = start;
      start += len;
      return () => dy.slice(op.axis, from, from + len);
    });
  },
  // Zeros before and after the slice (the IR has no pad; a concat is what ONNX runs). The walk in
  // `grad` lays all slices of one tensor into one such concat (sumPartials) rather than calling this.
  slice: ({ op, inputs: [x], dy, g }) => [
    () =>
      placePieces(
        g,
        [{ axis: op.axis < 0 ? op.axis + x.rank : op.axis, start: op.start, end: op.end, dy }],
        x.shape,
      ),
  ],
  matMul: ({ inputs: [a, b], dy }) => [
    () =>
      a.rank === 2 && b.rank > 2 ? mT(matMulGradShared(mT(b), mT(dy))) : sumTo(dy.matMul(mT(b)), a.shape),
    () => (b.rank === 2 && a.rank > 2 ? matMulGradShared(a, dy) : sumTo(mT(a).matMul(dy), b.shape)),
  ],

  neg: ({ dy }) => [() => dy.neg()],
  exp: ({ out, dy }) => [() => dy.mul(out)],
  log: ({ inputs: [x], dy }) => [() => dy.div(x)],
  sqrt: ({ out, dy }) => [() => dy.mul(0.5).div(out)],
  rsqrt: ({ out, dy }) => [() => dy.mul(out.mul(out).mul(out).mul(-0.5))],
  reciprocal: ({ out, dy }) => [() => dy.mul(out.mul(out)).neg()],
  tanh: ({ out, dy }) => [() => dy.mul(out.mul(out).rsub(1))],
  erf: ({ inputs: [x], dy }) => [
    () =>
      dy.mul(
        x
          .mul(x)
          .neg()
          .exp()
          .mul(2 / Math.sqrt(Math.PI)),
      ),
  ],
  relu: ({ inputs: [x], dy, g }) => [() => g.where(x.greater(0), dy, 0)],
  sigmoid: ({ out, dy }) => [() => dy.mul(out.mul(out.rsub(1)))],
  abs: ({ inputs: [x], dy, g }) => [() => dy.mul(g.node({ kind: 'sign' }, [x]))],
  sign: NO_GRADIENT,
  sin: ({ inputs: [x], dy, g }) => [() => dy.mul(g.node({ kind: 'cos' }, [x]))],
  cos: ({ inputs: [x], dy, g }) => [() => dy.mul(g.node({ kind: 'sin' }, [x])).neg()],
  not: NO_GRADIENT,

  add: ({ inputs: [a, b], dy }) => [() => sumTo(dy, a.shape), () => sumTo(dy, b.shape)],
  sub: ({ inputs: [a, b], dy }) => [() => sumTo(dy, a.shape), () => sumTo(dy.neg(), b.shape)],
  mul: ({ inputs: [a, b], dy }) => [() => sumTo(dy.mul(b), a.shape), () => sumTo(dy.mul(a), b.shape)],
  div: ({ inputs: [a, b], out, dy }) => [
    () => sumTo(dy.div(b), a.shape),
    () => sumTo(dy.mul(out).div(b).neg(), b.shape),
  ],
  pow: ({ inputs: [a, b], out, dy }) => [
    () => sumTo(dy.mul(b).mul(a.pow(b.sub(1))), a.shape),
    () => sumTo(dy.mul(out).mul(a.log()), b.shape),
  ],
  // Ties split the gradient in half (PyTorch's rule for maximum/minimum).
  maximum: ({ inputs: [a, b], dy }) => minMax(a, b, dy, (p, q) => p.greater(q)),
  minimum: ({ inputs: [a, b], dy }) => minMax(a, b, dy, (p, q) => p.less(q)),

  equal: NO_GRADIENT,
  less: NO_GRADIENT,
  greater: NO_GRADIENT,
  and: NO_GRADIENT,
  or: NO_GRADIENT,
  where: ({ inputs: [c, a, b], dy, g }) => [
    null,
    () => sumTo(g.where(c, dy, 0), a.shape),
    () => sumTo(g.where(c, 0, dy), b.shape),
  ],
  softmax: ({ op, out, dy }) => [() => out.mul(dy.sub(dy.mul(out).sum([op.axis], true)))],
  logSoftmax: ({ op, out, dy }) => [() => dy.sub(out.exp().mul(dy.sum([op.axis], true)))],
  layerNorm: ({ op, inputs: [x, gamma], dy }) => {
    // The statistics are the forward's own (outputs 1 and 2 of ONNX LayerNormalization), not
    // recomputed: the emitter hands them out of the same node.
    let cached: { xhat: Sym; rstd: Sym } | undefined;
    const stats = () => {
      if (cached) return cached;
      const rstd = x.layerNormStat('invStdDev', op.eps);
      return (cached = { xhat: x.sub(x.layerNormStat('mean', op.eps)).mul(rstd), rstd });
    };
    return [
      () => {
        const { xhat: h, rstd } = stats();
        const dh = dy.mul(gamma);
        return dh
          .sub(dh.mean([-1], true))
          .sub(h.mul(dh.mul(h).mean([-1], true)))
          .mul(rstd);
      },
      () => sumLeading(dy.mul(stats().xhat)),
      () => sumLeading(dy),
    ];
  },
  layerNormStat: ({ op, inputs: [x], out, dy, g }) => [
    () => {
      const n = countOf(g, x, [x.rank - 1]);
      if (op.which === 'mean') return dy.expand(x.shape).div(n);
      // r = (var + eps)^-1/2 with var = mean((x - m)²): dr/dx = -r³ (x - m) / n (m's term sums to 0).
      const r3 = out.mul(out).mul(out);
      return dy
        .mul(r3)
        .mul(x.sub(x.layerNormStat('mean', op.eps)))
        .div(n)
        .neg();
    },
  ],
  gelu: ({ op, inputs: [x], dy }) => [
    () => {
      if (op.approximate === 'tanh') {
        // d/dx 0.5x(1 + tanh(u)), u = √(2/π)(x + 0.044715x³)
        const x2 = x.mul(x);
        const t = x.add(x2.mul(x).mul(0.044715)).mul(sqrt2OverPi).tanh();
        const du = x2
          .mul(3 * 0.044715)
          .add(1)
          .mul(sqrt2OverPi);
        return dy.mul(
          t
            .add(1)
            .mul(0.5)
            .add(x.mul(0.5).mul(t.mul(t).rsub(1)).mul(du)),
        );
      }
      // Φ(x) + x·φ(x)
      const cdf = x.mul(Math.SQRT1_2).erf().add(1).mul(0.5);
      const pdf = x
        .mul(x)
        .mul(-0.5)
        .exp()
        .mul(1 / Math.sqrt(2 * Math.PI));
      return dy.mul(cdf.add(x.mul(pdf)));
    },
  ],
  cast: ({ op, inputs: [x], dy }) => [op.to === 'float32' && x.dtype === 'float32' ? () => dy : null],
  argMax: NO_GRADIENT,
  attention: ({ op, inputs: [q, k, v], dy, g }) => {
    // The probabilities are recomputed with the ops the `'matmul'` ONNX form runs: where the forward
    // node is decomposed into those ops (passes: decomposeAttention), CSE makes them one.
    let cached: { p: Sym; ds: Sym } | undefined;
    const both = () => {
      if (cached) return cached;
      const p = g.attentionProbs(q, k, op.scale);
      const dp = dy.matMul(mT(v));
      const ds = p.mul(dp.sub(dp.mul(p).sum([-1], true))).mul(op.scale);
      return (cached = { p, ds });
    };
    return [() => both().ds.matMul(k), () => mT(both().ds).matMul(q), () => mT(both().p).matMul(dy)];
  },
};

function minMax(a: Sym, b: Sym, dy: Sym, wins: (p: Sym, q: Sym) => Sym): Array<() => Sym> {
  const share = (p: Sym, q: Sym) => float(wins(p, q)).add(float(p.equal(q)).mul(0.5));
  return [() => sumTo(dy.mul(share(a, b)), a.shape), () => sumTo(dy.mul(share(b, a)), b.shape)];
}

/** Options of {@link grad}. */
export interface GradOptions {
  /**
   * The gradient flowing into `loss` (shaped like it). Default: 1, which needs a scalar `loss`.
   */
  readonly seed?: Sym;
}

/**
 * Reverse-mode autodiff: the gradients of `loss` with respect to each tensor of `wrt`, recorded as
 * more nodes of the same graph (built with the builder's ops, so symbolic batch axes stay symbolic).
 * One walk in reverse topological order; gradients that meet at a node are summed. A `wrt` tensor
 * the loss does not depend on gets zeros.
 *
 * @example
 * const g = new GraphBuilder();
 * const x = g.input('x', [sym('N'), 4]);
 * const w = g.input('w', [4, 3]);
 * const loss = x.matMul(w).tanh().sum([0, 1]);
 * const [dw] = grad(loss, [w]);                  // [4, 3]
 * const graph = g.build({ loss, dw });
 */
export function grad(loss: Sym, wrt: readonly Sym[], options: GradOptions = {}): Sym[] {
  const g = loss.builder;
  for (const w of wrt) {
    if (w.builder !== g)
      throw new CompileError('grad: a wrt tensor belongs to another graph', { rule: 'grad' });
    if (w.dtype !== 'float32') throw new CompileError(`grad: wrt ${w} is not float32`, { rule: 'grad' });
  }
  if (loss.dtype !== 'float32')
    throw new CompileError(`grad: the loss ${loss} is not float32`, { rule: 'grad' });
  const seed = options.seed ?? (loss.rank === 0 ? g.scalar(1) : undefined);
  if (!seed) {
    throw new CompileError(`grad: the loss ${fmtShape(loss.shape)} is not a scalar; pass a seed gradient`, {
      rule: 'grad',
    });
  }
  if (seed.rank !== loss.rank || !seed.shape.every((d, i) => dimEq(d, loss.shape[i]))) {
    throw new CompileError(
      `grad: seed ${fmtShape(seed.shape)} does not fit the loss ${fmtShape(loss.shape)}`,
      {
        rule: 'grad',
      },
    );
  }
  // The nodes so far (a snapshot: gradient nodes appended below are not walked).
  const nodes = g.build([]).nodes;
  const needed = pathNodes(nodes, loss.id, new Set(wrt.map((w) => w.id)));
  const partials = new Map<number, Partial[]>([[loss.id, [seed]]]);
  const result = new Map<number, Sym>();
  const wanted = new Set(wrt.map((w) => w.id));
  const push = (i: number, p: Partial) => {
    const list = partials.get(i);
    if (list) list.push(p);
    else partials.set(i, [p]);
  };
  for (let id = loss.id; id >= 0; id--) {
    const parts = partials.get(id);
    if (!parts) continue;
    partials.delete(id);
    const dy = sumPartials(g, parts, nodes[id].type.shape);
    if (wanted.has(id)) result.set(id, dy);
    const node = nodes[id];
    const op = node.op;
    if (op.kind === 'slice') {
      // Kept as a piece, not padded here: the pieces of one tensor become one concat (see sumPartials).
      if (needed.has(node.inputs[0])) {
        const rank = nodes[node.inputs[0]].type.shape.length;
        const axis = op.axis < 0 ? op.axis + rank : op.axis;
        push(node.inputs[0], { axis, start: op.start, end: op.end, dy });
      }
      continue;
    }
    const rule = VJP[op.kind] as VjpRule<Kind> | typeof NO_GRADIENT;
    if (rule === NO_GRADIENT) continue;
    const inputs = node.inputs.map((i) => new Sym(g, i));
    const thunks = rule({ op, inputs, out: new Sym(g, id), dy, g });
    node.inputs.forEach((i, k) => {
      if (!needed.has(i)) return;
      const thunk = thunks[k];
      if (!thunk) return;
      const gi = thunk();
      checkGrad(node, k, gi, nodes[i]);
      push(i, gi);
    });
  }
  return wrt.map((w) => result.get(w.id) ?? zeros(g, w.shape));
}

/** The gradient of one slice of a tensor: `dy` belongs at `start:end` along `axis`. */
interface SlicePiece {
  readonly axis: number;
  readonly start: number;
  readonly end: number;
  readonly dy: Sym;
}

/** A gradient reaching a node: a whole tensor, or the piece of one slice of it. */
type Partial = Sym | SlicePiece;

/**
 * The sum of the gradients reaching a node of `shape`. Slice pieces along one axis that do not
 * overlap (q, k and v cut from one projection) become one concat with zeros in the gaps, instead of
 * one zero-padded tensor per slice added together: one copy instead of three plus two additions.
 */
function sumPartials(g: GraphBuilder, parts: readonly Partial[], shape: Shape): Sym {
  const whole = parts.filter((p): p is Sym => p instanceof Sym);
  const byAxis = new Map<number, SlicePiece[]>();
  for (const p of parts) {
    if (p instanceof Sym) continue;
    byAxis.set(p.axis, [...(byAxis.get(p.axis) ?? []), p]);
  }
  for (const pieces of byAxis.values()) {
    const sorted = [...pieces].sort((a, b) => a.start - b.start);
    const disjoint = sorted.every((p, i) => i === 0 || sorted[i - 1].end <= p.start);
    const groups = disjoint ? [sorted] : sorted.map((p) => [p]);
    for (const group of groups) whole.push(placePieces(g, group, shape));
  }
  return whole.reduce((s, p) => s.add(p));
}

/** Disjoint slice pieces along one axis, sorted by start, laid into zeros of `shape`: one concat. */
function placePieces(g: GraphBuilder, pieces: readonly SlicePiece[], shape: Shape): Sym {
  const axis = pieces[0].axis;
  const n = shape[axis];
  if (isSym(n))
    throw new CompileError(`grad: slice along the symbolic axis of ${fmtShape(shape)}`, { rule: 'grad' });
  const gap = (len: number) =>
    zeros(
      g,
      shape.map((d, i) => (i === axis ? len : d)),
    );
  const parts: Sym[] = [];
  let at = 0;
  for (const p of pieces) {
    if (p.start > at) parts.push(gap(p.start - at));
    parts.push(p.dy);
    at = p.end;
  }
  if (at < n) parts.push(gap(n - at));
  return parts.length === 1 ? parts[0] : g.concat(parts, axis);
}

/** Ids on a path from a `wrt` node to `loss` that carry float values: the nodes gradients flow through. */
function pathNodes(nodes: readonly Node[], loss: number, wrt: ReadonlySet<number>): Set<number> {
  const fromWrt = new Set<number>();
  for (let id = 0; id <= loss; id++) {
    const n = nodes[id];
    if (n.type.dtype !== 'float32') continue;
    if (wrt.has(id) || n.inputs.some((i) => fromWrt.has(i))) fromWrt.add(id);
  }
  const toLoss = new Set<number>([loss]);
  for (let id = loss; id >= 0; id--) {
    if (!toLoss.has(id)) continue;
    for (const i of nodes[id].inputs) toLoss.add(i);
  }
  return new Set([...fromWrt].filter((id) => toLoss.has(id)));
}

/** A rule's result must have its input's shape: a broken rule fails here, naming the kind. */
function checkGrad(node: Node, k: number, gi: Sym, input: Node): void {
  const want = input.type.shape;
  if (gi.rank !== want.length || !gi.shape.every((d, i) => dimEq(d, want[i]))) {
    throw new CompileError(
      `grad: the ${node.op.kind} rule gave ${fmtShape(gi.shape)} for input ${k} of shape ${fmtShape(want)}`,
      { rule: 'grad' },
    );
  }
}

/** Options of {@link gradGraph}. */
export interface GradGraphOptions {
  /** The name of the scalar output to differentiate. */
  readonly loss: string;
  /** Names of inputs or parameters to differentiate against. */
  readonly wrt: readonly string[];
}

/**
 * A graph's gradients as a new graph: the same inputs, parameters and outputs, plus one output
 * `grad.<name>` per `wrt` name (an input or a parameter).
 *
 * @example
 * const withGrads = gradGraph(graph, { loss: 'loss', wrt: ['w', 'b'] });
 * const { 'grad.w': dw } = evaluate(withGrads, { x });
 */
export function gradGraph(graph: Graph, options: GradGraphOptions): Graph {
  const { g, syms } = rebuild(graph);
  const named = new Map<string, Sym>();
  for (const n of graph.nodes) {
    if (n.op.kind === 'input' || n.op.kind === 'param') named.set(n.op.name, syms[n.id]);
  }
  const lossOut = graph.outputs.find((o) => o.name === options.loss);
  if (!lossOut) throw new CompileError(`gradGraph: no output named '${options.loss}'`, { rule: 'grad' });
  const wrt = options.wrt.map((name) => {
    const s = named.get(name);
    if (!s) throw new CompileError(`gradGraph: no input or parameter named '${name}'`, { rule: 'grad' });
    return s;
  });
  const grads = grad(syms[lossOut.id], wrt);
  const outputs: Record<string, Sym> = {};
  for (const o of graph.outputs) outputs[o.name] = syms[o.id];
  options.wrt.forEach((name, i) => (outputs[`grad.${name}`] = grads[i]));
  return g.build(outputs);
}
