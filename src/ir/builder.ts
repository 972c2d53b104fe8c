// Builds a graph by recording ops on symbolic tensors (`Sym`). Shapes are checked as each op is
// recorded, so a program that does not fit fails at trace time with an error naming the op.
import { CompileError } from '../errors.js';
import { fmtShape, isConcrete, numel, type Dim, type Shape } from './dims.js';
import { dataFor, NodeList, type Graph, type Node, type Output } from './graph.js';
import type { BinaryKind, CompareKind, Data, DType, Op, ReduceOp, UnaryKind } from './kinds.js';

/** A number operand is a scalar constant of the other operand's dtype. */
export type SymLike = Sym | number;

/**
 * Records a program as IR.
 *
 * @example
 * const g = new GraphBuilder();
 * const x = g.input('x', [sym('N'), 4]);
 * const w = g.param('w', new Float32Array(12), [4, 3]);
 * const graph = g.build({ y: x.matMul(w).relu() });   // y: [N, 3]
 */
export class GraphBuilder {
  private readonly list = new NodeList();
  private readonly names = new Set<string>();

  /** Appends a node of any kind (the shape rule checks it) and returns its symbolic tensor. */
  node(op: Op, inputs: readonly Sym[] = []): Sym {
    for (const s of inputs) {
      if (s.builder !== this)
        throw new CompileError(`${op.kind}: an input belongs to another graph`, { rule: 'graph' });
    }
    const id = this.list.add(
      op,
      inputs.map((s) => s.id),
    );
    return new Sym(this, id);
  }

  /** The type of node `id` (used by `Sym`). */
  typeOf(id: number) {
    return this.list.type(id);
  }

  private unique(kind: string, name: string): void {
    if (this.names.has(name))
      throw new CompileError(`${kind}: the name '${name}' is used twice`, { rule: 'graph' });
    this.names.add(name);
  }

  /**
   * A graph input. Symbolic dims (`sym('N')`) stay symbolic through the program (a dynamic axis).
   *
   * @example
   * const pixels = g.input('pixels', [sym('N'), 3, 224, 224]);
   */
  input(name: string, shape: Shape, dtype: DType = 'float32'): Sym {
    this.unique('input', name);
    return this.node({ kind: 'input', name, type: { shape: [...shape], dtype } });
  }

  /**
   * A named parameter (an ONNX initializer): weights the program reads but does not compute.
   *
   * @example
   * const w = g.param('blocks.0.attn.qkv.weight', data, [1152, 384]);
   */
  param(name: string, data: Data, shape: readonly number[], dtype: DType = dtypeOf(data)): Sym {
    this.unique('param', name);
    checkData('param', name, data, shape);
    return this.node({ kind: 'param', name, type: { shape: [...shape], dtype }, data });
  }

  /**
   * A constant (folded by passes, an initializer in ONNX).
   *
   * @example
   * const half = g.constant([0.5]);         // shape [] when `shape` is omitted and one value
   */
  constant(values: Data | readonly number[], shape?: readonly number[], dtype?: DType): Sym {
    const dt = dtype ?? (ArrayBuffer.isView(values) ? dtypeOf(values as Data) : 'float32');
    const data =
      ArrayBuffer.isView(values) && dtypeOf(values as Data) === dt ? (values as Data) : dataFor(dt, values);
    const s = shape ?? (data.length === 1 ? [] : [data.length]);
    checkData('const', 'constant', data, s);
    return this.node({ kind: 'const', type: { shape: [...s], dtype: dt }, data });
  }

  /** A scalar constant. */
  scalar(value: number, dtype: DType = 'float32'): Sym {
    return this.constant([value], [], dtype);
  }

  /** `concat(xs, axis)` */
  concat(xs: readonly Sym[], axis: number): Sym {
    return this.node({ kind: 'concat', axis }, xs);
  }

  /** `where(cond, a, b)`, broadcasting. */
  where(cond: Sym, a: SymLike, b: SymLike): Sym {
    const ref = typeof a === 'number' ? (b as Sym) : a;
    return this.node({ kind: 'where' }, [cond, this.lift(a, ref), this.lift(b, ref)]);
  }

  /** Scaled dot-product attention node (see the `attention` kind). */
  attention(q: Sym, k: Sym, v: Sym, scale: number): Sym {
    return this.node({ kind: 'attention', scale }, [q, k, v]);
  }

  /**
   * The attention probabilities `softmax((q·scale) @ kᵀ)` written with plain ops, as the ONNX
   * emitter's `'matmul'` form computes them. Shared by the attention gradient and the pass that
   * decomposes attention nodes, so the backward's recomputed probabilities are the forward's nodes
   * (merged by CSE) rather than a second softmax.
   *
   * @example
   * const p = g.attentionProbs(q, k, 1 / Math.sqrt(24)); // [N, H, T, T]
   */
  attentionProbs(q: Sym, k: Sym, scale: number): Sym {
    const r = k.rank;
    return q
      .mul(scale)
      .matMul(k.transpose([...Array(r - 2).keys(), r - 1, r - 2]))
      .softmax(-1);
  }

  /** A number as a scalar constant of `like`'s dtype. */
  lift(x: SymLike, like: Sym): Sym {
    return typeof x === 'number' ? this.scalar(x, like.dtype) : x;
  }

  /**
   * The finished graph with named outputs (an array is named `output0`, `output1`, ...).
   *
   * @example
   * const graph = g.build({ logits });
   */
  build(outputs: Record<string, Sym> | readonly Sym[]): Graph {
    const entries = Array.isArray(outputs)
      ? (outputs as readonly Sym[]).map((s, i) => [`output${i}`, s] as const)
      : Object.entries(outputs as Record<string, Sym>);
    const outs: Output[] = entries.map(([name, s]) => {
      if (!(s instanceof Sym) || s.builder !== this) {
        throw new CompileError(`output '${name}' is not a symbolic tensor of this graph`, { rule: 'graph' });
      }
      return { name, id: s.id };
    });
    return { nodes: [...this.list.nodes], outputs: outs };
  }
}

function dtypeOf(data: Data): DType {
  if (data instanceof Float32Array) return 'float32';
  if (data instanceof Int32Array) return 'int32';
  return 'bool';
}

function checkData(kind: string, name: string, data: Data, shape: readonly number[]): void {
  const n = numel(shape);
  if (!isConcrete(shape) || n !== data.length) {
    throw new CompileError(`${kind} '${name}': ${data.length} values do not fill shape ${fmtShape(shape)}`, {
      rule: 'shape',
    });
  }
}

/**
 * A symbolic tensor: a node of a graph being built. Methods record ops and return new symbolic
 * tensors; shapes are checked at once.
 *
 * @example
 * const y = x.matMul(w).add(b).gelu();     // [N, 197, 3072]
 * const p = y.softmax(-1);
 */
export class Sym {
  constructor(
    readonly builder: GraphBuilder,
    readonly id: number,
  ) {}

  get shape(): Shape {
    return this.builder.typeOf(this.id).shape;
  }
  get dtype(): DType {
    return this.builder.typeOf(this.id).dtype;
  }
  get rank(): number {
    return this.shape.length;
  }

  toString(): string {
    return `Sym(%${this.id} ${fmtShape(this.shape)} ${this.dtype})`;
  }

  private un(kind: UnaryKind): Sym {
    return this.builder.node({ kind }, [this]);
  }
  private bin(kind: BinaryKind | CompareKind, other: SymLike, swap = false): Sym {
    const o = this.builder.lift(other, this);
    return this.builder.node({ kind }, swap ? [o, this] : [this, o]);
  }

  reshape(shape: readonly Dim[]): Sym {
    return this.builder.node({ kind: 'reshape', shape: [...shape] }, [this]);
  }
  transpose(perm?: readonly number[]): Sym {
    const p = perm ?? [...Array(this.rank).keys()].reverse();
    return this.builder.node({ kind: 'transpose', perm: [...p] }, [this]);
  }
  reduce(op: ReduceOp, axes: readonly number[], keepDims = false): Sym {
    const r = this.rank;
    return this.builder.node({ kind: 'reduce', op, axes: axes.map((a) => (a < 0 ? a + r : a)), keepDims }, [
      this,
    ]);
  }
  sum(axes: readonly number[], keepDims = false): Sym {
    return this.reduce('sum', axes, keepDims);
  }
  mean(axes: readonly number[], keepDims = false): Sym {
    return this.reduce('mean', axes, keepDims);
  }
  max(axes: readonly number[], keepDims = false): Sym {
    return this.reduce('max', axes, keepDims);
  }
  tile(reps: readonly number[]): Sym {
    return this.builder.node({ kind: 'tile', reps: [...reps] }, [this]);
  }
  expand(shape: readonly Dim[]): Sym {
    return this.builder.node({ kind: 'expand', shape: [...shape] }, [this]);
  }
  slice(axis: number, start: number, end: number): Sym {
    return this.builder.node({ kind: 'slice', axis: axis < 0 ? axis + this.rank : axis, start, end }, [this]);
  }
  matMul(other: Sym): Sym {
    return this.builder.node({ kind: 'matMul' }, [this, other]);
  }

  add(o: SymLike): Sym {
    return this.bin('add', o);
  }
  sub(o: SymLike): Sym {
    return this.bin('sub', o);
  }
  /** `o - this` (for `1 - x`). */
  rsub(o: SymLike): Sym {
    return this.bin('sub', o, true);
  }
  mul(o: SymLike): Sym {
    return this.bin('mul', o);
  }
  div(o: SymLike): Sym {
    return this.bin('div', o);
  }
  pow(o: SymLike): Sym {
    return this.bin('pow', o);
  }
  maximum(o: SymLike): Sym {
    return this.bin('maximum', o);
  }
  minimum(o: SymLike): Sym {
    return this.bin('minimum', o);
  }
  equal(o: SymLike): Sym {
    return this.bin('equal', o);
  }
  less(o: SymLike): Sym {
    return this.bin('less', o);
  }
  greater(o: SymLike): Sym {
    return this.bin('greater', o);
  }

  and(o: Sym): Sym {
    return this.bin('and', o);
  }
  or(o: Sym): Sym {
    return this.bin('or', o);
  }
  not(): Sym {
    return this.un('not');
  }
  neg(): Sym {
    return this.un('neg');
  }
  exp(): Sym {
    return this.un('exp');
  }
  log(): Sym {
    return this.un('log');
  }
  sqrt(): Sym {
    return this.un('sqrt');
  }
  rsqrt(): Sym {
    return this.un('rsqrt');
  }
  reciprocal(): Sym {
    return this.un('reciprocal');
  }
  tanh(): Sym {
    return this.un('tanh');
  }
  erf(): Sym {
    return this.un('erf');
  }
  relu(): Sym {
    return this.un('relu');
  }
  sigmoid(): Sym {
    return this.un('sigmoid');
  }
  abs(): Sym {
    return this.un('abs');
  }

  softmax(axis = -1): Sym {
    return this.builder.node({ kind: 'softmax', axis: axis < 0 ? axis + this.rank : axis }, [this]);
  }
  logSoftmax(axis = -1): Sym {
    return this.builder.node({ kind: 'logSoftmax', axis: axis < 0 ? axis + this.rank : axis }, [this]);
  }
  /** LayerNorm over the last axis with scale `gamma` and shift `beta`. */
  layerNorm(gamma: Sym, beta: Sym, eps = 1e-6): Sym {
    return this.builder.node({ kind: 'layerNorm', eps }, [this, gamma, beta]);
  }
  /**
   * A LayerNorm statistic over the last axis, shaped like `this` with the last axis 1: `'mean'`, or
   * `'invStdDev'` = `1/sqrt(var + eps)` with the population variance (as LayerNorm uses).
   *
   * @example
   * const r = x.layerNormStat('invStdDev', 1e-6);           // x [N, 197, 192] -> [N, 197, 1]
   * const xhat = x.sub(x.layerNormStat('mean', 1e-6)).mul(r);
   */
  layerNormStat(which: 'mean' | 'invStdDev', eps = 1e-6): Sym {
    return this.builder.node({ kind: 'layerNormStat', which, eps }, [this]);
  }
  /** GELU: exact (erf) by default, `'tanh'` for the approximation. */
  gelu(approximate: 'none' | 'tanh' = 'none'): Sym {
    return this.builder.node({ kind: 'gelu', approximate }, [this]);
  }
  cast(to: DType): Sym {
    return to === this.dtype ? this : this.builder.node({ kind: 'cast', to }, [this]);
  }
  argMax(axis = -1): Sym {
    return this.builder.node({ kind: 'argMax', axis: axis < 0 ? axis + this.rank : axis }, [this]);
  }
}

/**
 * A graph's nodes recorded again into a fresh builder (so more can be added). `mapLeaf` may replace an
 * input or parameter node by another symbolic tensor of the new builder (e.g. a parameter by an input);
 * `mapNode` may replace any other node, given its inputs in the new builder.
 *
 * @example
 * const { g, syms } = rebuild(graph);
 * const y = syms[graph.outputs[0].id].mul(2);
 */
export function rebuild(
  graph: Graph,
  mapLeaf?: (node: Node, g: GraphBuilder) => Sym | undefined,
  mapNode?: (node: Node, inputs: readonly Sym[], g: GraphBuilder) => Sym | undefined,
): { g: GraphBuilder; syms: Sym[] } {
  const g = new GraphBuilder();
  const syms: Sym[] = [];
  for (const n of graph.nodes) {
    const op = n.op;
    const mapped =
      op.kind === 'input' || op.kind === 'param'
        ? mapLeaf?.(n, g)
        : mapNode?.(
            n,
            n.inputs.map((i) => syms[i]),
            g,
          );
    if (mapped) syms.push(mapped);
    else if (op.kind === 'input') syms.push(g.input(op.name, op.type.shape, op.type.dtype));
    else if (op.kind === 'param')
      syms.push(g.param(op.name, op.data, op.type.shape as number[], op.type.dtype));
    else
      syms.push(
        g.node(
          op,
          n.inputs.map((i) => syms[i]),
        ),
      );
  }
  return { g, syms };
}
