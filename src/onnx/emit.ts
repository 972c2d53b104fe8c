// IR -> ONNX ModelProto (opset 17, com.microsoft contrib ops where chosen). The symbolic batch is a
// named dynamic axis (`dim_param`); reshape targets write it as -1, expand targets that need its
// value read it from the graph input that defines it (Shape -> Mul). Weights are initializers.
import { writeFile } from 'node:fs/promises';
import { CheckpointError, CompileError } from '../errors.js';
import { fmtDim, fmtShape, isSym, type Dim, type Shape } from '../ir/dims.js';
import type { Graph, Node } from '../ir/graph.js';
import type { DType } from '../ir/kinds.js';
import { encodeModel, ONNX_DTYPE, type ModelJson } from './proto.js';

/** Forms of the fusable patterns; measured on onnxruntime-node (see the README of src/onnx). */
export interface EmitOptions {
  /** Attention: `'matmul'` (MatMul, Mul, Softmax, MatMul) or `'mha'` (com.microsoft MultiHeadAttention). */
  readonly attention?: 'matmul' | 'mha';
  /** LayerNorm: `'op'` (LayerNormalization, opset 17) or `'decomposed'` (ReduceMean, Sub, ... ). */
  readonly layerNorm?: 'op' | 'decomposed';
  /** Exact GELU: `'erf'` (the Div-Erf-Add-Mul-Mul subgraph onnxruntime fuses) or `'contrib'` (com.microsoft Gelu). */
  readonly gelu?: 'erf' | 'contrib';
  /** Written into the model's metadata (`einvit.*` keys), e.g. the model config. */
  readonly metadata?: Readonly<Record<string, string>>;
}

/** The defaults: the fastest forms measured on onnxruntime-node 1.30 CPU. */
export const DEFAULT_EMIT: Required<Omit<EmitOptions, 'metadata'>> = {
  attention: 'matmul',
  layerNorm: 'op',
  gelu: 'erf',
};

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
): unknown {
  let raw: Uint8Array;
  if (dtype === 'float32') raw = new Uint8Array(Float32Array.from(values).buffer);
  else if (dtype === 'int32') raw = new Uint8Array(Int32Array.from(values).buffer);
  else if (dtype === 'int64')
    raw = new Uint8Array(BigInt64Array.from(Array.from(values, (v) => BigInt(v))).buffer);
  else raw = Uint8Array.from(values, (v) => (v ? 1 : 0));
  return { name, dataType: ONNX_DTYPE[dtype], dims: [...dims], rawData: raw };
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

/** Emits ONNX nodes for one graph; one instance per export. */
class Emitter {
  readonly nodes: OnnxNode[] = [];
  readonly initializers: unknown[] = [];
  private readonly names: string[] = [];
  private counter = 0;
  private readonly constCache = new Map<string, string>();
  contrib = false;

  constructor(
    private readonly g: Graph,
    private readonly options: Required<Omit<EmitOptions, 'metadata'>>,
  ) {}

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
    if (domain) {
      node.domain = domain;
      this.contrib = true;
    }
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
    for (const n of this.g.nodes) {
      if (n.op.kind !== 'input') continue;
      const i = n.type.shape.findIndex((d) => isSym(d) && d.sym === s);
      if (i < 0) continue;
      const d = n.type.shape[i] as Exclude<Dim, number>;
      const v = this.add('Shape', [n.op.name], { start: i, end: i + 1 });
      if (d.coeff === 1) return v;
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

  emit(n: Node, outName: string): void {
    const op = n.op;
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
        const syms = op.shape.filter(isSym).length;
        const target =
          syms <= 1
            ? this.constant(
                'int64',
                [op.shape.length],
                op.shape.map((d) => (isSym(d) ? -1 : d)),
              )
            : this.shapeTensor(op.shape, where);
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
        if (this.options.layerNorm === 'op') put('LayerNormalization', x, { axis: -1, epsilon: op.eps });
        else {
          const axes = [-1];
          const mean = this.add('ReduceMean', [x[0]], { axes, keepdims: 1 });
          const d = this.add('Sub', [x[0], mean]);
          const v = this.add('ReduceMean', [this.add('Pow', [d, this.constant('float32', [], [2])])], {
            axes,
            keepdims: 1,
          });
          const std = this.add('Sqrt', [this.add('Add', [v, this.constant('float32', [], [op.eps])])]);
          put('Add', [this.add('Mul', [this.add('Div', [d, std]), x[1]]), x[2]]);
        }
        break;
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

  private attention(n: Node, [q, k, v]: string[], out: string): void {
    const op = n.op as Extract<Node['op'], { kind: 'attention' }>;
    const qs = this.g.nodes[n.inputs[0]].type.shape;
    const r = qs.length;
    if (this.options.attention === 'mha' && r === 4) {
      // MultiHeadAttention takes [B, T, H*D]: move heads next to the features and back afterwards.
      const h = qs[1] as number;
      const toBTF = (x: string) =>
        this.add('Reshape', [
          this.add('Transpose', [x], { perm: [0, 2, 1, 3] }),
          this.constant('int64', [3], [0, 0, -1]),
        ]);
      const y = this.add(
        'MultiHeadAttention',
        [toBTF(q), toBTF(k), toBTF(v)],
        { num_heads: h, scale: op.scale },
        undefined,
        'com.microsoft',
      );
      const y4 = this.add('Reshape', [y, this.constant('int64', [4], [0, 0, h, -1])]);
      this.add('Transpose', [y4], { perm: [0, 2, 1, 3] }, out);
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
  const e = new Emitter(g, opts);
  // An output gets its node's name; a graph input or a value used twice as an output gets an Identity.
  const outNameOf = new Map<number, string>();
  for (const o of g.outputs) {
    const k = g.nodes[o.id].op.kind;
    if (!outNameOf.has(o.id) && k !== 'input' && k !== 'param' && k !== 'const') outNameOf.set(o.id, o.name);
  }
  for (const n of g.nodes) e.emit(n, outNameOf.get(n.id) ?? `v${n.id}`);
  for (const o of g.outputs)
    if (outNameOf.get(o.id) !== o.name) e.add('Identity', [e.name(o.id)], {}, o.name);
  const inputs = g.nodes.filter((n) => n.op.kind === 'input');
  const model: ModelJson = {
    irVersion: 8,
    producerName: PRODUCER,
    producerVersion: '0.1',
    opsetImport: [
      { domain: '', version: OPSET },
      ...(e.contrib ? [{ domain: 'com.microsoft', version: 1 }] : []),
    ],
    graph: {
      name: 'einvit',
      node: e.nodes,
      initializer: e.initializers,
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
