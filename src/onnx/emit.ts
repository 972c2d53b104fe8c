// IR -> ONNX ModelProto (opset 17, com.microsoft contrib ops where chosen). The symbolic batch is a
// named dynamic axis (`dim_param`); reshape targets write it as -1, expand targets that need its
// value read it from the graph input that defines it (Shape -> Mul). Weights are initializers.
import { writeFile } from 'node:fs/promises';
import { CheckpointError, CompileError } from '../errors.js';
import { dimEq, fmtDim, fmtShape, isConcrete, isSym, shapeEq, type Dim, type Shape } from '../ir/dims.js';
import type { Graph, Node } from '../ir/graph.js';
import type { Data, DType } from '../ir/kinds.js';
import type { PassOptions } from '../ir/passes.js';
import { encodeModel, ONNX_DTYPE, type ModelJson } from './proto.js';

/** Forms of the fusable patterns; measured on onnxruntime-node (see the README of src/onnx). */
export interface EmitOptions {
  /**
   * Attention: `'matmul'` (MatMul, Mul, Softmax, MatMul), `'mha'` (com.microsoft MultiHeadAttention
   * on [B, T, H*D] inputs) or `'fused'` (com.microsoft Attention, the q/k/v projection included, where
   * q, k and v are still slices of one packed projection, i.e. after `optimize(g, { sinkSlices: false })`;
   * otherwise `'mha'`).
   */
  readonly attention?: 'matmul' | 'mha' | 'fused';
  /**
   * LayerNorm: `'op'` (LayerNormalization, opset 17), `'decomposed'` (ReduceMean, Sub, ... ) or
   * `'skip'` (com.microsoft SkipLayerNormalization where the input is a residual sum, absorbing the
   * sum and a bias; LayerNormalization elsewhere). The statistics a backward reads (layerNormStat)
   * are outputs 1 and 2 of the LayerNormalization of the same x (in `'skip'`, that norm stays a
   * LayerNormalization), or, decomposed, the mean and variance the norm's own subgraph computes.
   */
  readonly layerNorm?: 'op' | 'decomposed' | 'skip';
  /** Exact GELU: `'erf'` (the Div-Erf-Add-Mul-Mul subgraph onnxruntime fuses) or `'contrib'` (com.microsoft Gelu). */
  readonly gelu?: 'erf' | 'contrib';
  /**
   * A linear layer `x @ W + b` (W a matrix, b its last axis): `'matmul'` (MatMul then a broadcast
   * Add) or `'gemm'` (x flattened to a matrix, one Gemm with the bias, reshaped back; not with
   * `layerNorm: 'skip'`, which absorbs the bias itself).
   */
  readonly linear?: 'matmul' | 'gemm';
  /** Written into the model's metadata (`einvit.*` keys), e.g. the model config. */
  readonly metadata?: Readonly<Record<string, string>>;
}

/**
 * The defaults: the fastest forms measured on onnxruntime-node 1.30 CPU (bench/onnx-forms.ts). After
 * the passes split the packed q/k/v product, onnxruntime's own fusions (FusedMatMul, BiasGelu) on
 * the standard ops matched or beat MultiHeadAttention and Attention; SkipLayerNormalization's CPU
 * kernel ran ~1.4x slower than LayerNormalization plus the Adds it replaces.
 */
export const DEFAULT_EMIT: Required<Omit<EmitOptions, 'metadata'>> = {
  attention: 'matmul',
  layerNorm: 'op',
  gelu: 'erf',
  linear: 'matmul',
};

/**
 * The graph passes that suit an emit form: attention nodes are decomposed where ONNX runs them as
 * plain ops anyway (`'matmul'`), so a gradient's recomputation of them is shared.
 *
 * @example
 * const g2 = optimize(graph, passesFor({ attention: 'mha' })); // attention nodes kept
 */
export function passesFor(options: EmitOptions): PassOptions {
  return { decomposeAttention: (options.attention ?? DEFAULT_EMIT.attention) === 'matmul' };
}

export const OPSET = 17;
/** Metadata key marking a model einvit wrote. */
export const PRODUCER = 'einvit';

interface OnnxNode {
  opType: string;
  domain?: string;
  input: string[];
  output: string[];
  name?: string;
  attribute?: unknown[];
}

type Attr = number | number[] | string;

function attr(name: string, value: Attr): unknown {
  if (typeof value === 'string') return { name, type: 3, s: new TextEncoder().encode(value) };
  if (Array.isArray(value)) return { name, type: 7, ints: value };
  if (
    Number.isInteger(value) &&
    !Object.is(value, -0) &&
    name !== 'epsilon' &&
    name !== 'scale' &&
    name !== 'alpha'
  ) {
    return { name, type: 2, i: value };
  }
  return { name, type: 1, f: value };
}

function tensorProto(
  name: string,
  dtype: DType | 'int64',
  dims: readonly number[],
  values: ArrayLike<number>,
): { name: string } {
  let raw: Uint8Array;
  if (dtype === 'float32') raw = new Uint8Array(Float32Array.from(values).buffer);
  else if (dtype === 'int32') raw = new Uint8Array(Int32Array.from(values).buffer);
  else if (dtype === 'int64')
    raw = new Uint8Array(BigInt64Array.from(Array.from(values, (v) => BigInt(v))).buffer);
  else raw = Uint8Array.from(values, (v) => (v ? 1 : 0));
  const proto = { name, dataType: ONNX_DTYPE[dtype], dims: [...dims], rawData: raw };
  return proto;
}

function valueInfo(name: string, dtype: DType, shape: Shape): { name: string; type: unknown } {
  const dim = shape.map((d) => (isSym(d) ? { dimParam: fmtDim(d) } : { dimValue: d }));
  return { name, type: { tensorType: { elemType: ONNX_DTYPE[dtype], shape: { dim } } } };
}

const UNARY_OPS: Record<string, string> = {
  neg: 'Neg',
  exp: 'Exp',
  log: 'Log',
  sqrt: 'Sqrt',
  reciprocal: 'Reciprocal',
  tanh: 'Tanh',
  erf: 'Erf',
  sigmoid: 'Sigmoid',
  abs: 'Abs',
  sign: 'Sign',
  sin: 'Sin',
  cos: 'Cos',
  not: 'Not',
};
const BINARY_OPS: Record<string, string> = {
  add: 'Add',
  sub: 'Sub',
  mul: 'Mul',
  div: 'Div',
  pow: 'Pow',
  maximum: 'Max',
  minimum: 'Min',
  equal: 'Equal',
  less: 'Less',
  greater: 'Greater',
  and: 'And',
  or: 'Or',
};

/** `data` of `shape` permuted by `perm` (a parameter's transpose, done once at export). */
function transposeData(data: Data, shape: readonly number[], perm: readonly number[]): Data {
  const r = shape.length;
  const out = new (data.constructor as new (n: number) => Data)(data.length);
  const outShape = perm.map((p) => shape[p]);
  const strides = new Array<number>(r);
  for (let i = r - 1, s = 1; i >= 0; s *= shape[i], i--) strides[i] = s;
  const step = perm.map((p) => strides[p]);
  const idx = new Array<number>(r).fill(0);
  let src = 0;
  for (let o = 0; o < data.length; o++) {
    out[o] = data[src];
    for (let i = r - 1; i >= 0; i--) {
      src += step[i];
      if (++idx[i] < outShape[i]) break;
      src -= step[i] * outShape[i];
      idx[i] = 0;
    }
  }
  return out;
}

/** `data` of `shape` sliced to `[start, end)` along `axis`. */
function sliceData(data: Data, shape: readonly number[], axis: number, start: number, end: number): Data {
  const inner = shape.slice(axis + 1).reduce((p, d) => p * d, 1);
  const outer = shape.slice(0, axis).reduce((p, d) => p * d, 1);
  const out = new (data.constructor as new (n: number) => Data)(outer * (end - start) * inner);
  for (let o = 0; o < outer; o++) {
    const from = (o * shape[axis] + start) * inner;
    out.set(data.subarray(from, from + (end - start) * inner), o * (end - start) * inner);
  }
  return out;
}

/**
 * The LayerNorm statistics of one x (one eps) that one ONNX LayerNormalization hands out as its
 * outputs 1 (Mean) and 2 (InvStdDev): the layerNorm node of x whose Y it also computes, if there is
 * one, else a LayerNormalization of its own (gamma ones, beta zeros) whose Y nothing reads.
 */
interface StatGroup {
  readonly x: number;
  readonly eps: number;
  readonly mean: number[];
  readonly inv: number[];
  ln?: number;
}

/** The parts of a decomposed LayerNorm of one x, built once and shared by the norm and its statistics. */
interface Decomposed {
  readonly mean: string;
  readonly centred: string;
  readonly std: Map<number, string>;
  readonly inv: Map<number, string>;
}

/** Emits ONNX nodes for one graph; one instance per export. */
class Emitter {
  readonly nodes: OnnxNode[] = [];
  readonly initializers: Array<{ name: string }> = [];
  private readonly names: string[] = [];
  private counter = 0;
  private readonly constCache = new Map<string, string>();
  private readonly symbols = new Map<string, string>();
  /** Data of the parameter transposes and reshapes written as initializers. */
  private readonly folded = new Map<number, { data: Data; base: string }>();
  /** Consumers of each node; a graph output counts as consumer -1. */
  private readonly consumers: number[][];
  /** Nodes a fused ONNX node already computed: their ONNX name ('' when nothing reads them). */
  private readonly preset = new Map<number, string>();
  /** Linear layers emitted as one Gemm: the bias add's id -> its matMul, x, weight and bias ids. */
  private readonly gemms = new Map<number, { mm: number; x: number; w: number; bias: number }>();
  /** Each member (layerNorm or layerNormStat node) of a LayerNormalization with statistics -> its group. */
  private readonly statGroups = new Map<number, StatGroup>();
  /** Decomposed LayerNorm parts by the ONNX name of x. */
  private readonly decomposed = new Map<string, Decomposed>();

  constructor(
    private readonly g: Graph,
    private readonly options: Required<Omit<EmitOptions, 'metadata'>>,
    private readonly outNames: ReadonlyMap<number, string>,
  ) {
    this.consumers = g.nodes.map(() => []);
    for (const n of g.nodes) for (const i of new Set(n.inputs)) this.consumers[i].push(n.id);
    for (const o of g.outputs) this.consumers[o.id].push(-1);
    // Inputs and parameters have their names from the start (a fused node may read a later one).
    for (const n of g.nodes) if (n.op.kind === 'input' || n.op.kind === 'param') this.names[n.id] = n.op.name;
    for (const n of g.nodes) {
      const l = this.linear(n);
      if (l) {
        this.gemms.set(n.id, l);
        this.preset.set(l.mm, '');
      }
    }
    if (options.layerNorm !== 'decomposed') this.planStats();
  }

  /**
   * Groups the layerNormStat nodes by x and eps, each group with the layerNorm node of the same x
   * and eps where there is one whose gamma and beta exist by the time the group's first member is
   * emitted (the one ONNX node is written there).
   */
  private planStats(): void {
    const groups = new Map<string, StatGroup>();
    for (const n of this.g.nodes) {
      if (n.op.kind !== 'layerNormStat') continue;
      const key = `${n.inputs[0]}|${n.op.eps}`;
      let grp = groups.get(key);
      if (!grp) groups.set(key, (grp = { x: n.inputs[0], eps: n.op.eps, mean: [], inv: [] }));
      (n.op.which === 'mean' ? grp.mean : grp.inv).push(n.id);
    }
    for (const grp of groups.values()) {
      const members = [...grp.mean, ...grp.inv];
      const ln = this.consumers[grp.x]
        .map((c) => (c >= 0 ? this.node(c) : undefined))
        .find((c) => c?.op.kind === 'layerNorm' && c.inputs[0] === grp.x && c.op.eps === grp.eps);
      if (ln) {
        const first = Math.min(ln.id, ...members);
        const ready = (i: number) => i < first || ['input', 'param'].includes(this.node(i).op.kind);
        if (ln.inputs.every(ready)) {
          grp.ln = ln.id;
          members.push(ln.id);
        }
      }
      for (const m of members) this.statGroups.set(m, grp);
    }
  }

  /** `matMul(x, W) + b` where only the add reads the product, W is a matrix and b its last axis. */
  private linear(n: Node): { mm: number; x: number; w: number; bias: number } | undefined {
    if (this.options.linear !== 'gemm' || this.options.layerNorm === 'skip') return undefined;
    if (n.type.dtype !== 'float32') return undefined;
    const split = this.biasAdd(n);
    if (!split) return undefined;
    const mm = this.node(split.main);
    if (mm.op.kind !== 'matMul' || this.soleConsumer(mm.id)?.id !== n.id) return undefined;
    const [x, w] = mm.inputs.map((i) => this.node(i));
    const k = x.type.shape[x.type.shape.length - 1];
    if (w.type.shape.length !== 2 || x.type.shape.length < 2 || typeof k !== 'number') return undefined;
    return { mm: mm.id, x: x.id, w: w.id, bias: split.bias };
  }

  /** The second input of a Reshape to `shape`: a constant with -1 for one symbolic dim, else computed. */
  private reshapeTarget(shape: Shape, where: string): string {
    return shape.filter(isSym).length <= 1
      ? this.constant(
          'int64',
          [shape.length],
          shape.map((d) => (isSym(d) ? -1 : d)),
        )
      : this.shapeTensor(shape, where);
  }

  /** The ONNX name node `id` gets when emitted. */
  nameFor(id: number): string {
    return this.outNames.get(id) ?? `v${id}`;
  }

  private node(id: number): Node {
    return this.g.nodes[id];
  }

  /** The only consumer of `id`, if it has exactly one (a graph output is not a node). */
  private soleConsumer(id: number): Node | undefined {
    const c = this.consumers[id];
    return c.length === 1 && c[0] >= 0 ? this.g.nodes[c[0]] : undefined;
  }

  fresh(hint: string): string {
    return `${hint}_${this.counter++}`;
  }

  add(
    opType: string,
    input: string[],
    attrs: Record<string, Attr> = {},
    output?: string,
    domain?: string,
  ): string {
    const out = output ?? this.fresh(opType.toLowerCase());
    const node: OnnxNode = { opType, input, output: [out], name: out };
    const a = Object.entries(attrs).map(([k, v]) => attr(k, v));
    if (a.length) node.attribute = a;
    if (domain) node.domain = domain;
    this.nodes.push(node);
    return out;
  }

  /** An int64 or typed constant initializer (deduplicated). */
  constant(dtype: DType | 'int64', dims: readonly number[], values: readonly number[]): string {
    const key = `${dtype}|${dims.join(',')}|${values.join(',')}`;
    const hit = this.constCache.get(key);
    if (hit) return hit;
    const name = this.fresh('const');
    this.initializers.push(tensorProto(name, dtype, dims, values));
    this.constCache.set(key, name);
    return name;
  }

  /** The value of symbol `s` at run time, as an int64 [1] tensor, read from the input that defines it. */
  private symbolValue(s: string, where: string): string {
    const hit = this.symbols.get(s);
    if (hit) return hit;
    for (const n of this.g.nodes) {
      if (n.op.kind !== 'input') continue;
      const i = n.type.shape.findIndex((d) => isSym(d) && d.sym === s);
      if (i < 0) continue;
      const d = n.type.shape[i] as Exclude<Dim, number>;
      if (d.coeff === 1) {
        const v = this.add('Shape', [n.op.name], { start: i, end: i + 1 });
        this.symbols.set(s, v);
        return v;
      }
      if (d.coeff > 1)
        throw new CompileError(`${where}: symbol ${s} only appears as ${fmtDim(d)}`, { rule: 'onnx' });
    }
    throw new CompileError(`${where}: no graph input defines the symbolic dim ${s}`, { rule: 'onnx' });
  }

  /** A 1-D int64 tensor holding `shape` at run time. */
  shapeTensor(shape: Shape, where: string): string {
    if (shape.every((d) => !isSym(d))) return this.constant('int64', [shape.length], shape as number[]);
    const parts = shape.map((d) => {
      if (!isSym(d)) return this.constant('int64', [1], [d]);
      const v = this.symbolValue(d.sym, where);
      return d.coeff === 1 ? v : this.add('Mul', [v, this.constant('int64', [1], [d.coeff])]);
    });
    return this.add('Concat', parts, { axis: 0 });
  }

  name(id: number): string {
    return this.names[id];
  }

  emit(n: Node): void {
    const pre = this.preset.get(n.id);
    if (pre !== undefined) {
      this.names[n.id] = pre;
      return;
    }
    const group = this.statGroups.get(n.id);
    if (group) {
      this.statNode(group); // names every member, n included
      return;
    }
    const outName = this.nameFor(n.id);
    const op = n.op;
    if (op.kind === 'add' && this.options.layerNorm === 'skip' && this.skipLayerNorm(n)) return;
    if (
      (op.kind === 'transpose' || op.kind === 'reshape' || op.kind === 'slice') &&
      this.foldParam(n, outName)
    )
      return;
    const x = n.inputs.map((i) => this.names[i]);
    const inT = n.inputs.map((i) => this.g.nodes[i].type);
    const where = `${op.kind} (node %${n.id})`;
    const put = (opType: string, input: string[], attrs: Record<string, Attr> = {}, domain?: string) =>
      this.add(opType, input, attrs, outName, domain);
    switch (op.kind) {
      case 'input':
        this.names[n.id] = op.name;
        return;
      case 'param':
        this.names[n.id] = op.name;
        this.initializers.push(tensorProto(op.name, op.type.dtype, op.type.shape as number[], op.data));
        return;
      case 'const':
        this.names[n.id] = outName;
        this.initializers.push(tensorProto(outName, op.type.dtype, op.type.shape as number[], op.data));
        return;
      case 'reshape': {
        const target = this.reshapeTarget(op.shape, where);
        // allowzero stays 0: no target dim is 0 unless the tensor is empty, where 0 means "copy" harmlessly
        if (op.shape.some((d) => d === 0)) {
          put('Reshape', [x[0], this.constant('int64', [op.shape.length], op.shape as number[])], {
            allowzero: 1,
          });
        } else put('Reshape', [x[0], target]);
        break;
      }
      case 'transpose':
        put('Transpose', x, { perm: [...op.perm] });
        break;
      case 'reduce':
        this.reduce(n, x[0], inT[0].dtype, outName);
        break;
      case 'tile':
        put('Tile', [x[0], this.constant('int64', [op.reps.length], op.reps)]);
        break;
      case 'expand': {
        // Where the input already has the target's symbolic dim, 1 keeps it (Expand broadcasts).
        const inShape = inT[0].shape;
        const off = op.shape.length - inShape.length;
        const target = op.shape.map((d, i) => (isSym(d) && i >= off && inShape[i - off] !== 1 ? 1 : d));
        put('Expand', [x[0], this.shapeTensor(target, where)]);
        break;
      }
      case 'concat':
        put('Concat', x, { axis: op.axis });
        break;
      case 'slice':
        if (this.splitSlices(n)) return;
        put('Slice', [
          x[0],
          this.constant('int64', [1], [op.start]),
          this.constant('int64', [1], [op.end]),
          this.constant('int64', [1], [op.axis]),
        ]);
        break;
      case 'matMul':
        put('MatMul', x);
        break;
      case 'add': {
        const l = this.gemms.get(n.id);
        if (!l) {
          put('Add', x);
          break;
        }
        // Gemm takes matrices: flatten the leading axes of x and restore them after.
        const xs = this.node(l.x).type.shape;
        const [xn, wn, bn] = [l.x, l.w, l.bias].map((i) => this.names[i]);
        if (xs.length === 2) put('Gemm', [xn, wn, bn]);
        else {
          const k = xs[xs.length - 1] as number;
          const flat = this.add('Reshape', [xn, this.constant('int64', [2], [-1, k])]);
          put('Reshape', [this.add('Gemm', [flat, wn, bn]), this.reshapeTarget(n.type.shape, where)]);
        }
        break;
      }
      case 'rsqrt':
        put('Reciprocal', [this.add('Sqrt', x)]);
        break;
      case 'relu':
        if (n.type.dtype === 'float32') put('Relu', x);
        else put('Max', [x[0], this.constant(n.type.dtype, [], [0])]);
        break;
      case 'where':
        put('Where', x);
        break;
      case 'softmax':
        put('Softmax', x, { axis: op.axis });
        break;
      case 'logSoftmax':
        put('LogSoftmax', x, { axis: op.axis });
        break;
      case 'layerNorm':
        if (this.options.layerNorm !== 'decomposed')
          put('LayerNormalization', x, { axis: -1, epsilon: op.eps });
        else {
          const parts = this.decompose(x[0], op.eps);
          put('Add', [
            this.add('Mul', [this.add('Div', [parts.centred, parts.std.get(op.eps)!]), x[1]]),
            x[2],
          ]);
        }
        break;
      case 'layerNormStat': {
        // Only the decomposed form gets here (the others emit statistics as LayerNormalization outputs).
        const parts = this.decompose(x[0], op.eps);
        this.names[n.id] = op.which === 'mean' ? parts.mean : parts.inv.get(op.eps)!;
        return;
      }
      case 'gelu':
        if (op.approximate === 'tanh') {
          if (this.options.gelu === 'contrib') put('FastGelu', x, {}, 'com.microsoft');
          else {
            const c = (v: number) => this.constant('float32', [], [v]);
            const cube = this.add('Mul', [this.add('Mul', [x[0], x[0]]), x[0]]);
            const inner = this.add('Mul', [
              this.add('Add', [x[0], this.add('Mul', [cube, c(0.044715)])]),
              c(Math.sqrt(2 / Math.PI)),
            ]);
            put('Mul', [this.add('Mul', [x[0], c(0.5)]), this.add('Add', [this.add('Tanh', [inner]), c(1)])]);
          }
        } else if (this.options.gelu === 'contrib') put('Gelu', x, {}, 'com.microsoft');
        else {
          // The exact subgraph torch exports and onnxruntime's GeluFusion matches.
          const erf = this.add('Erf', [this.add('Div', [x[0], this.constant('float32', [], [Math.SQRT2])])]);
          const y = this.add('Mul', [x[0], this.add('Add', [erf, this.constant('float32', [], [1])])]);
          put('Mul', [y, this.constant('float32', [], [0.5])]);
        }
        break;
      case 'cast':
        put('Cast', x, { to: ONNX_DTYPE[op.to] });
        break;
      case 'argMax':
        put('Cast', [this.add('ArgMax', x, { axis: op.axis, keepdims: 0 })], { to: ONNX_DTYPE.int32 });
        break;
      case 'attention':
        this.attention(n, x, outName);
        break;
      default: {
        const t = UNARY_OPS[op.kind] ?? BINARY_OPS[op.kind];
        if (!t)
          throw new CompileError(`ONNX export: no lowering for node kind '${op.kind}'`, { rule: 'onnx' });
        put(t, x);
      }
    }
    this.names[n.id] = outName;
  }

  /**
   * One LayerNormalization for a group of statistics (see {@link StatGroup}): Y is the group's
   * layerNorm node, or an unread output of a norm with gamma ones and beta zeros; Mean and InvStdDev
   * are outputs 1 and 2. Every member's name is preset. Where the last axis is symbolic (no ones
   * initializer of its length) and no layerNorm node is there, the statistics are decomposed.
   */
  private statNode(grp: StatGroup): void {
    const x = this.names[grp.x];
    const d = this.node(grp.x).type.shape.at(-1);
    const name = (ids: readonly number[], value: string) => {
      for (const id of ids) {
        this.preset.set(id, value);
        this.names[id] = value;
      }
    };
    if (grp.ln === undefined && typeof d !== 'number') {
      const parts = this.decompose(x, grp.eps);
      name(grp.mean, parts.mean);
      name(grp.inv, parts.inv.get(grp.eps)!);
      return;
    }
    const y = grp.ln !== undefined ? this.nameFor(grp.ln) : this.fresh('layernorm');
    const input =
      grp.ln !== undefined
        ? this.node(grp.ln).inputs.map((i) => this.names[i])
        : [
            x,
            this.constant('float32', [d as number], new Array<number>(d as number).fill(1)),
            this.constant('float32', [d as number], new Array<number>(d as number).fill(0)),
          ];
    const stats = [grp.mean, grp.inv].map((ids) => (ids.length > 0 ? this.nameFor(ids[0]) : ''));
    if (stats[1] === '') stats.pop();
    this.nodes.push({
      opType: 'LayerNormalization',
      input,
      output: [y, ...stats],
      name: y,
      attribute: [attr('axis', -1), attr('epsilon', grp.eps)],
    });
    if (grp.ln !== undefined) name([grp.ln], y);
    name(grp.mean, stats[0]);
    if (grp.inv.length > 0) name(grp.inv, stats[1]);
  }

  /**
   * The decomposed LayerNorm parts of `x`: mean, x - mean, and per eps sqrt(var + eps) and its
   * reciprocal, each emitted once however many norms and statistics read them.
   */
  private decompose(x: string, eps: number): Decomposed {
    let parts = this.decomposed.get(x);
    if (!parts) {
      const mean = this.add('ReduceMean', [x], { axes: [-1], keepdims: 1 });
      parts = { mean, centred: this.add('Sub', [x, mean]), std: new Map(), inv: new Map() };
      this.decomposed.set(x, parts);
    }
    if (!parts.std.has(eps)) {
      const sq = this.add('Pow', [parts.centred, this.constant('float32', [], [2])]);
      const v = this.add('ReduceMean', [sq], { axes: [-1], keepdims: 1 });
      const std = this.add('Sqrt', [this.add('Add', [v, this.constant('float32', [], [eps])])]);
      parts.std.set(eps, std);
      parts.inv.set(eps, this.add('Reciprocal', [std]));
    }
    return parts;
  }

  /**
   * A transpose or reshape of a parameter or constant becomes an initializer holding the result, so
   * MatMul reads its weight directly (no Transpose node for onnxruntime to fold at every load).
   */
  private foldParam(n: Node, out: string): boolean {
    const src = this.node(n.inputs[0]);
    const from =
      src.op.kind === 'param'
        ? { data: src.op.data, base: src.op.name }
        : src.op.kind === 'const'
          ? { data: src.op.data, base: out }
          : this.folded.get(src.id);
    if (!from || !isConcrete(n.type.shape)) return false;
    if (this.consumers[n.id].includes(-1)) return false; // a graph output stays a node's output
    const op = n.op as Extract<Node['op'], { kind: 'transpose' | 'reshape' | 'slice' }>;
    const shape = src.type.shape as number[];
    const data =
      op.kind === 'transpose'
        ? transposeData(from.data, shape, op.perm)
        : op.kind === 'slice'
          ? sliceData(from.data, shape, op.axis < 0 ? op.axis + shape.length : op.axis, op.start, op.end)
          : from.data;
    const name = this.fresh(`${from.base}.${op.kind}`);
    this.initializers.push(tensorProto(name, n.type.dtype, n.type.shape, data));
    this.folded.set(n.id, { data, base: from.base });
    this.names[n.id] = name;
    return true;
  }

  /**
   * Several disjoint slices of one tensor along one axis (a training step's parameters cut from
   * one flat buffer, q/k/v cut from one projection) become one Split, emitted at the first of them;
   * gaps get outputs nothing reads. One kernel instead of one per slice. Returns false where `n` is
   * not among the most slices that do not overlap, or they are fewer than two, or the axis symbolic.
   */
  private splitSlices(n: Node): boolean {
    const src = this.node(n.inputs[0]);
    const rank = src.type.shape.length;
    const axisOf = (x: Node) => {
      const a = (x.op as Extract<Node['op'], { kind: 'slice' }>).axis;
      return a < 0 ? a + rank : a;
    };
    const axis = axisOf(n);
    const len = src.type.shape[axis];
    if (typeof len !== 'number') return false;
    const slices = this.consumers[src.id]
      .filter((c) => c >= 0)
      .map((c) => this.node(c))
      .filter((c) => c.op.kind === 'slice' && axisOf(c) === axis && !this.preset.has(c.id))
      .map((c) => ({ node: c, op: c.op as Extract<Node['op'], { kind: 'slice' }> }))
      .sort((a, b) => a.op.end - b.op.end || a.op.start - b.op.start);
    // The most slices that do not overlap (earliest end first); the others stay Slice nodes (a
    // step's decay reads a prefix of the buffer its parameters are cut from).
    const picked: typeof slices = [];
    for (const s of slices) if (s.op.start >= (picked.at(-1)?.op.end ?? 0)) picked.push(s);
    if (picked.length < 2 || !picked.some((s) => s.node.id === n.id)) return false;
    const sizes: number[] = [];
    const outputs: string[] = [];
    let at = 0;
    const gap = (to: number) => {
      if (to <= at) return;
      sizes.push(to - at);
      outputs.push(this.fresh('split_gap'));
    };
    for (const { node, op } of picked) {
      gap(op.start);
      sizes.push(op.end - op.start);
      const name = this.nameFor(node.id);
      outputs.push(name);
      this.preset.set(node.id, name); // n's too: a later Split must not take it again
      at = op.end;
    }
    gap(len);
    this.nodes.push({
      opType: 'Split',
      input: [this.names[src.id], this.constant('int64', [sizes.length], sizes)],
      output: outputs,
      name: this.fresh('split'),
      attribute: [attr('axis', axis)],
    });
    this.names[n.id] = this.nameFor(n.id);
    return true;
  }

  /** `x + bias` with `bias` of `x`'s last axis (either order): the full-shape operand and the bias. */
  private biasAdd(x: Node): { main: number; bias: number } | undefined {
    if (x.op.kind !== 'add') return undefined;
    const last = x.type.shape[x.type.shape.length - 1];
    for (const [m, b] of [x.inputs, [...x.inputs].reverse()]) {
      const bs = this.node(b).type.shape;
      if (bs.length === 1 && dimEq(bs[0], last) && shapeEq(this.node(m).type.shape, x.type.shape))
        return { main: m, bias: b };
    }
    return undefined;
  }

  /**
   * A residual sum `s = a + b` read by a LayerNorm becomes one SkipLayerNormalization computing the
   * norm and (as its 4th output, where anything else reads it) the sum; a bias added to `a` just
   * before joins as its 5th input. Returns false where the pattern does not fit.
   */
  private skipLayerNorm(n: Node): boolean {
    const shape = n.type.shape;
    if (n.type.dtype !== 'float32' || shape.length !== 3) return false;
    const lns = this.consumers[n.id].filter((c) => {
      const ln = c >= 0 ? this.node(c) : undefined;
      const ready = (i: number) => i <= n.id || ['input', 'param'].includes(this.node(i).op.kind);
      // A norm whose statistics are read stays a LayerNormalization (see statNode).
      return (
        ln?.op.kind === 'layerNorm' &&
        ln.inputs[0] === n.id &&
        ln.inputs.every(ready) &&
        !this.statGroups.has(ln.id)
      );
    });
    if (lns.length !== 1) return false;
    const ln = this.node(lns[0]);
    const [a, b] = n.inputs.map((i) => this.node(i));
    if (a.id === b.id || !shapeEq(a.type.shape, shape) || !shapeEq(b.type.shape, shape)) return false;
    let input = a.id;
    let skip = b.id;
    let bias: number | undefined;
    for (const [x, y] of [
      [a, b],
      [b, a],
    ]) {
      const split = this.soleConsumer(x.id) ? this.biasAdd(x) : undefined;
      if (split) {
        [input, skip, bias] = [split.main, y.id, split.bias];
        break;
      }
    }
    const sumRead = this.consumers[n.id].length > 1;
    const lnName = this.nameFor(ln.id);
    const sumName = sumRead ? this.nameFor(n.id) : '';
    const inputs = [input, skip, ln.inputs[1], ln.inputs[2], ...(bias === undefined ? [] : [bias])];
    this.nodes.push({
      opType: 'SkipLayerNormalization',
      domain: 'com.microsoft',
      input: inputs.map((i) => this.names[i]),
      output: sumRead ? [lnName, '', '', sumName] : [lnName],
      name: lnName,
      attribute: [attr('epsilon', (ln.op as { eps: number }).eps)],
    });
    this.names[n.id] = sumName;
    this.preset.set(ln.id, lnName);
    return true;
  }

  private reduce(n: Node, x: string, dtype: DType, out: string): void {
    const op = n.op as Extract<Node['op'], { kind: 'reduce' }>;
    const keepdims = op.keepDims ? 1 : 0;
    if (op.axes.length === 0) {
      this.add(
        dtype === 'bool' && op.op !== 'any' && op.op !== 'all' ? 'Cast' : 'Identity',
        [x],
        dtype === 'bool' && op.op !== 'any' && op.op !== 'all' ? { to: ONNX_DTYPE[n.type.dtype] } : {},
        out,
      );
      return;
    }
    const axes = [...op.axes];
    const asInt = dtype === 'bool' ? this.add('Cast', [x], { to: ONNX_DTYPE.int32 }) : x;
    switch (op.op) {
      case 'sum':
        this.add('ReduceSum', [asInt, this.constant('int64', [axes.length], axes)], { keepdims }, out);
        return;
      case 'mean':
        this.add('ReduceMean', [x], { axes, keepdims }, out);
        return;
      case 'prod':
        this.add('ReduceProd', [asInt], { axes, keepdims }, out);
        return;
      case 'any':
      case 'all': {
        // any = sum of ones > 0 (ReduceMax of an empty axis gives INT_MIN); all = min (empty: INT_MAX, true)
        const ints =
          dtype === 'bool'
            ? asInt
            : this.add('Cast', [this.add('Cast', [x], { to: ONNX_DTYPE.bool })], { to: ONNX_DTYPE.int32 });
        const r =
          op.op === 'any'
            ? this.add('ReduceSum', [ints, this.constant('int64', [axes.length], axes)], { keepdims })
            : this.add('ReduceMin', [ints], { axes, keepdims });
        this.add('Cast', [r], { to: ONNX_DTYPE.bool }, out);
        return;
      }
      case 'max':
      case 'min': {
        const t = op.op === 'max' ? 'ReduceMax' : 'ReduceMin';
        if (dtype === 'bool')
          this.add('Cast', [this.add(t, [asInt], { axes, keepdims })], { to: ONNX_DTYPE.bool }, out);
        else this.add(t, [x], { axes, keepdims }, out);
        return;
      }
    }
  }

  /**
   * `[B, T, H*D]` source of a `[B, H, T, D]` attention operand made by reshape + transpose (the way
   * heads are split), if it is one.
   */
  private headsSource(id: number): number | undefined {
    const t = this.node(id);
    if (t.op.kind !== 'transpose' || t.op.perm.join() !== '0,2,1,3' || !this.soleConsumer(t.id))
      return undefined;
    const r = this.node(t.inputs[0]);
    if (r.op.kind !== 'reshape' || !this.soleConsumer(r.id)) return undefined;
    const src = this.node(r.inputs[0]);
    const [b, tt, h, d] = r.type.shape;
    const ss = src.type.shape;
    if (
      ss.length !== 3 ||
      !dimEq(ss[0], b) ||
      !dimEq(ss[1], tt) ||
      typeof h !== 'number' ||
      typeof d !== 'number'
    )
      return undefined;
    return ss[2] === h * d ? src.id : undefined;
  }

  /** The `[B, T, H*D]` node that merges the heads of attention output `n` back, if that is all that reads it. */
  private mergedOutput(n: Node): Node | undefined {
    const t = this.soleConsumer(n.id);
    if (t?.op.kind !== 'transpose' || t.op.perm.join() !== '0,2,1,3') return undefined;
    const r = this.soleConsumer(t.id);
    if (r?.op.kind !== 'reshape' || r.type.shape.length !== 3) return undefined;
    return r;
  }

  /** q, k, v as slices 0:D, D:2D, 2D:3D of one `x @ w + b` with x `[B, T, C]`: x, w, b. */
  private packedProjection(srcs: readonly number[]): [number, number, number] | undefined {
    const sl = srcs.map((i) => this.node(i));
    if (sl.some((t) => t.op.kind !== 'slice' || t.inputs[0] !== sl[0].inputs[0])) return undefined;
    const p = this.node(sl[0].inputs[0]);
    const width = p.type.shape[2];
    if (typeof width !== 'number' || width % 3 !== 0) return undefined;
    const d = width / 3;
    const ok = sl.every((t, i) => {
      const op = t.op as { axis: number; start: number; end: number };
      return (op.axis === 2 || op.axis === -1) && op.start === i * d && op.end === (i + 1) * d;
    });
    if (!ok || this.consumers[p.id].length !== 3) return undefined;
    const split = this.biasAdd(p);
    const mm = split && this.node(split.main);
    if (mm?.op.kind !== 'matMul' || !this.soleConsumer(mm.id)) return undefined;
    const [x, w] = mm.inputs.map((i) => this.node(i));
    if (x.type.shape.length !== 3 || w.type.shape.length !== 2) return undefined;
    return [x.id, w.id, split!.bias];
  }

  private attention(n: Node, [q, k, v]: string[], out: string): void {
    const op = n.op as Extract<Node['op'], { kind: 'attention' }>;
    const qs = this.g.nodes[n.inputs[0]].type.shape;
    const r = qs.length;
    const mode = this.options.attention;
    if (mode !== 'matmul' && r === 4) {
      const h = qs[1] as number;
      const srcs = n.inputs.map((i) => this.headsSource(i));
      const merged = this.mergedOutput(n);
      const outName = merged ? this.nameFor(merged.id) : this.fresh('attention');
      const packed =
        mode === 'fused' && srcs.every((s) => s !== undefined) ? this.packedProjection(srcs) : undefined;
      if (packed) {
        // One contrib Attention: the q/k/v product, the heads and the merge in one kernel.
        this.add(
          'Attention',
          packed.map((i) => this.names[i]),
          { num_heads: h, scale: op.scale },
          outName,
          'com.microsoft',
        );
      } else {
        // MultiHeadAttention takes [B, T, H*D]: where heads were split by reshape + transpose, read
        // the source; otherwise move heads next to the features.
        const toBTF = (x: string, i: number) =>
          srcs[i] !== undefined
            ? this.names[srcs[i]!]
            : this.add('Reshape', [
                this.add('Transpose', [x], { perm: [0, 2, 1, 3] }),
                this.constant('int64', [3], [0, 0, -1]),
              ]);
        this.add(
          'MultiHeadAttention',
          [toBTF(q, 0), toBTF(k, 1), toBTF(v, 2)],
          { num_heads: h, scale: op.scale },
          outName,
          'com.microsoft',
        );
      }
      if (merged) {
        this.preset.set(merged.id, outName);
        this.preset.set(this.soleConsumer(n.id)!.id, '');
        this.names[n.id] = '';
      } else {
        const y4 = this.add('Reshape', [outName, this.constant('int64', [4], [0, 0, h, -1])]);
        this.add('Transpose', [y4], { perm: [0, 2, 1, 3] }, out);
      }
      return;
    }
    const perm = [...Array(r).keys()];
    [perm[r - 2], perm[r - 1]] = [perm[r - 1], perm[r - 2]];
    const scores = this.add('MatMul', [
      this.add('Mul', [q, this.constant('float32', [], [op.scale])]),
      this.add('Transpose', [k], { perm }),
    ]);
    this.add('MatMul', [this.add('Softmax', [scores], { axis: -1 }), v], {}, out);
  }
}

/** Drops nodes whose outputs nothing reads (patterns a fused node replaced) and unused initializers. */
function deadCode(
  nodes: OnnxNode[],
  initializers: Array<{ name: string }>,
  outputs: readonly string[],
): [OnnxNode[], Array<{ name: string }>] {
  const live = new Set(outputs);
  const keep: OnnxNode[] = [];
  for (let i = nodes.length - 1; i >= 0; i--) {
    const n = nodes[i];
    if (!n.output.some((o) => o !== '' && live.has(o))) continue;
    keep.push(n);
    for (const x of n.input) live.add(x);
  }
  return [keep.reverse(), initializers.filter((t) => live.has(t.name))];
}

/**
 * Encodes a graph as an ONNX ModelProto (opset 17; com.microsoft contrib ops only where `options`
 * ask for them). Inputs keep their names; symbolic dims become named dynamic axes.
 *
 * @example
 * const bytes = toOnnx(graph);                      // Uint8Array, loads in any onnxruntime
 * const fused = toOnnx(graph, { gelu: 'contrib' });
 */
export function toOnnx(g: Graph, options: EmitOptions = {}): Uint8Array {
  const opts = { ...DEFAULT_EMIT, ...options };
  // An output gets its node's name; a graph input or a value used twice as an output gets an Identity.
  const outNameOf = new Map<number, string>();
  for (const o of g.outputs) {
    const k = g.nodes[o.id].op.kind;
    if (!outNameOf.has(o.id) && k !== 'input' && k !== 'param' && k !== 'const') outNameOf.set(o.id, o.name);
  }
  const e = new Emitter(g, opts, outNameOf);
  for (const n of g.nodes) e.emit(n);
  for (const o of g.outputs) if (e.name(o.id) !== o.name) e.add('Identity', [e.name(o.id)], {}, o.name);
  const [nodes, initializers] = deadCode(
    e.nodes,
    e.initializers,
    g.outputs.map((o) => o.name),
  );
  const inputs = g.nodes.filter((n) => n.op.kind === 'input');
  const model: ModelJson = {
    irVersion: 8,
    producerName: PRODUCER,
    producerVersion: '0.1',
    opsetImport: [
      { domain: '', version: OPSET },
      ...(nodes.some((n) => n.domain === 'com.microsoft') ? [{ domain: 'com.microsoft', version: 1 }] : []),
    ],
    graph: {
      name: 'einvit',
      node: nodes,
      initializer: initializers,
      input: inputs.map((n) => valueInfo((n.op as { name: string }).name, n.type.dtype, n.type.shape)),
      output: g.outputs.map((o) => valueInfo(o.name, g.nodes[o.id].type.dtype, g.nodes[o.id].type.shape)),
    },
    metadataProps: [
      { key: 'einvit.format', value: '1' },
      ...Object.entries(options.metadata ?? {}).map(([k, v]) => ({ key: `einvit.${k}`, value: v })),
    ],
  };
  return encodeModel(model);
}

/**
 * Writes a graph as an `.onnx` file (see {@link toOnnx}).
 *
 * @example
 * await exportOnnx(graph, 'model.onnx');
 */
export async function exportOnnx(g: Graph, path: string, options: EmitOptions = {}): Promise<void> {
  const bytes = toOnnx(g, options);
  try {
    await writeFile(path, bytes);
  } catch (e) {
    throw new CheckpointError(`Cannot write ONNX file ${path}: ${(e as Error).message}`, {
      rule: 'onnx-file',
      cause: e,
    });
  }
}

export { fmtShape };
