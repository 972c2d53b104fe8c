// The node kinds of the IR, in one table: each kind's attributes (its `Op` variant) and its shape
// rule. Their vector-Jacobian rules are one table typed over these kinds in grad.ts, written with
// the builder's own ops: gradients are just more graph.
import { CompileError } from '../errors.js';
import { dimEq, dimMul, fmtShape, isSym, numel, type Dim, type Shape } from './dims.js';

export type DType = 'float32' | 'int32' | 'bool';
/** The static type of a value: its shape (maybe with a symbolic batch) and element type. */
export interface TensorType {
  readonly shape: Shape;
  readonly dtype: DType;
}
/** Constant or parameter data; bool as 0/1 bytes. */
export type Data = Float32Array | Int32Array | Uint8Array;

export const UNARY = [
  'neg',
  'exp',
  'log',
  'sqrt',
  'rsqrt',
  'reciprocal',
  'tanh',
  'erf',
  'relu',
  'sigmoid',
  'abs',
  'sign',
  'sin',
  'cos',
  'not',
] as const;
export const BINARY = ['add', 'sub', 'mul', 'div', 'pow', 'maximum', 'minimum'] as const;
export const COMPARE = ['equal', 'less', 'greater', 'and', 'or'] as const;
export const REDUCE = ['sum', 'mean', 'max', 'min', 'prod', 'any', 'all'] as const;
export type UnaryKind = (typeof UNARY)[number];
export type BinaryKind = (typeof BINARY)[number];
export type CompareKind = (typeof COMPARE)[number];
export type ReduceOp = (typeof REDUCE)[number];

/** Every node kind with its attributes. Inputs are node ids, kept on the node, not here. */
export type Op =
  | { readonly kind: 'input'; readonly name: string; readonly type: TensorType }
  | { readonly kind: 'param'; readonly name: string; readonly type: TensorType; readonly data: Data }
  | { readonly kind: 'const'; readonly type: TensorType; readonly data: Data }
  | { readonly kind: 'reshape'; readonly shape: Shape }
  | { readonly kind: 'transpose'; readonly perm: readonly number[] }
  | {
      readonly kind: 'reduce';
      readonly op: ReduceOp;
      readonly axes: readonly number[];
      readonly keepDims: boolean;
    }
  | { readonly kind: 'tile'; readonly reps: readonly number[] }
  /** Broadcast to `shape` (numpy rules): a length-1 dim grows, others stay. */
  | { readonly kind: 'expand'; readonly shape: Shape }
  | { readonly kind: 'concat'; readonly axis: number }
  /** `x[start:end]` along one axis (concrete bounds, 0 <= start <= end <= length). */
  | { readonly kind: 'slice'; readonly axis: number; readonly start: number; readonly end: number }
  /** numpy `matmul` for rank >= 2: `[..., m, k] @ [..., k, n]`, leading dims broadcast. */
  | { readonly kind: 'matMul' }
  | { readonly kind: UnaryKind }
  | { readonly kind: BinaryKind }
  | { readonly kind: CompareKind }
  /** `where(cond, a, b)`, all three broadcast. */
  | { readonly kind: 'where' }
  | { readonly kind: 'softmax'; readonly axis: number }
  | { readonly kind: 'logSoftmax'; readonly axis: number }
  /** LayerNorm over the last axis: inputs x, gamma, beta (gamma and beta of the last axis' length). */
  | { readonly kind: 'layerNorm'; readonly eps: number }
  /**
   * A LayerNorm statistic of x over the last axis, kept as a length-1 axis: the mean, or
   * `1/sqrt(var + eps)` (population variance). Outputs 1 and 2 of ONNX LayerNormalization, so the
   * backward of a LayerNorm reads them instead of recomputing them.
   */
  | { readonly kind: 'layerNormStat'; readonly which: 'mean' | 'invStdDev'; readonly eps: number }
  | { readonly kind: 'gelu'; readonly approximate: 'none' | 'tanh' }
  | { readonly kind: 'cast'; readonly to: DType }
  /** Index of the largest value along `axis` (first on ties), axis removed; int32. */
  | { readonly kind: 'argMax'; readonly axis: number }
  /**
   * Scaled dot-product attention `softmax(q kᵀ * scale) v` over the last two axes: q `[..., t, d]`,
   * k `[..., s, d]`, v `[..., s, e]` -> `[..., t, e]`. The emitter picks the ONNX form.
   */
  | { readonly kind: 'attention'; readonly scale: number };

export type Kind = Op['kind'];
export type OpOf<K extends Kind> = Extract<Op, { kind: K }>;

/** What the table knows of one kind. */
export interface KindRule<K extends Kind> {
  /** Number of inputs, or 'variadic' (concat: one or more). */
  readonly arity: number | 'variadic';
  /** The output type, or a CompileError naming the kind and the shapes that do not fit. */
  readonly infer: (op: OpOf<K>, inputs: readonly TensorType[]) => TensorType;
}

function fail(kind: string, message: string): never {
  throw new CompileError(`${kind}: ${message}`, { rule: 'shape' });
}

function normAxis(kind: string, axis: number, rank: number): number {
  const a = axis < 0 ? axis + rank : axis;
  if (!Number.isInteger(a) || a < 0 || a >= rank) fail(kind, `axis ${axis} is out of range for rank ${rank}`);
  return a;
}

/** numpy broadcasting of shapes, from the right; a length-1 (concrete) dim stretches. */
export function broadcastShapes(kind: string, shapes: readonly Shape[]): Dim[] {
  const rank = Math.max(...shapes.map((s) => s.length));
  const out: Dim[] = [];
  for (let i = 0; i < rank; i++) {
    let d: Dim = 1;
    for (const s of shapes) {
      const e = s[s.length - rank + i] ?? 1;
      if (e === 1) continue;
      if (d === 1) d = e;
      else if (!dimEq(d, e)) fail(kind, `shapes ${shapes.map(fmtShape).join(' and ')} do not broadcast`);
    }
    out.push(d);
  }
  return out;
}

function sameDtype(kind: string, ins: readonly TensorType[]): void {
  if (ins.some((t) => t.dtype !== ins[0].dtype)) {
    fail(kind, `dtypes differ (${ins.map((t) => t.dtype).join(', ')}); cast first`);
  }
}

function float(kind: string, t: TensorType): void {
  if (t.dtype !== 'float32') fail(kind, `needs a float32 tensor, got ${t.dtype}`);
}

const leaf = { arity: 0, infer: (op: { type: TensorType }) => op.type };

const unary = (kind: UnaryKind): KindRule<UnaryKind> => ({
  arity: 1,
  infer: (_op, [x]) => {
    if (kind === 'not') {
      if (x.dtype !== 'bool') fail(kind, `needs a bool tensor, got ${x.dtype}`);
    } else if (!['neg', 'abs', 'relu', 'sign'].includes(kind)) float(kind, x);
    return x;
  },
});

const binary = (kind: BinaryKind): KindRule<BinaryKind> => ({
  arity: 2,
  infer: (_op, ins) => {
    sameDtype(kind, ins);
    if (ins[0].dtype === 'bool') fail(kind, 'needs numbers, got bool');
    return {
      shape: broadcastShapes(
        kind,
        ins.map((t) => t.shape),
      ),
      dtype: ins[0].dtype,
    };
  },
});

const compare = (kind: CompareKind): KindRule<CompareKind> => ({
  arity: 2,
  infer: (_op, ins) => {
    sameDtype(kind, ins);
    if ((kind === 'and' || kind === 'or') && ins[0].dtype !== 'bool')
      fail(kind, `needs bool, got ${ins[0].dtype}`);
    return {
      shape: broadcastShapes(
        kind,
        ins.map((t) => t.shape),
      ),
      dtype: 'bool',
    };
  },
});

const softmaxLike = <K extends 'softmax' | 'logSoftmax'>(kind: K): KindRule<K> => ({
  arity: 1,
  infer: (op, [x]) => {
    float(kind, x);
    normAxis(kind, (op as { axis: number }).axis, x.shape.length);
    return x;
  },
});

type Table = { readonly [K in Kind]: KindRule<K> };

/** The table of node kinds: arity and shape rule of each (VJP rules: grad.ts). */
export const KINDS: Table = {
  input: leaf,
  param: leaf,
  const: leaf,
  reshape: {
    arity: 1,
    infer: (op, [x]) => {
      const from = numel(x.shape, 'reshape');
      const to = numel(op.shape, 'reshape');
      if (!dimEq(from, to))
        fail('reshape', `cannot reshape ${fmtShape(x.shape)} to ${fmtShape(op.shape)} (sizes differ)`);
      return { shape: op.shape, dtype: x.dtype };
    },
  },
  transpose: {
    arity: 1,
    infer: (op, [x]) => {
      const n = x.shape.length;
      const seen = new Set(op.perm);
      if (op.perm.length !== n || seen.size !== n || op.perm.some((p) => !(p >= 0 && p < n))) {
        fail(
          'transpose',
          `[${op.perm.join(', ')}] is not a permutation of the ${n} axes of ${fmtShape(x.shape)}`,
        );
      }
      return { shape: op.perm.map((p) => x.shape[p]), dtype: x.dtype };
    },
  },
  reduce: {
    arity: 1,
    infer: (op, [x]) => {
      const axes = op.axes.map((a) => normAxis('reduce', a, x.shape.length));
      if (new Set(axes).size !== axes.length) fail('reduce', `repeated axis in [${op.axes.join(', ')}]`);
      if (op.op === 'mean') float('reduce mean', x);
      const shape = op.keepDims
        ? x.shape.map((d, i) => (axes.includes(i) ? 1 : d))
        : x.shape.filter((_, i) => !axes.includes(i));
      const dtype = (op.op === 'sum' || op.op === 'prod') && x.dtype === 'bool' ? 'int32' : x.dtype;
      return { shape, dtype: op.op === 'any' || op.op === 'all' ? 'bool' : dtype };
    },
  },
  tile: {
    arity: 1,
    infer: (op, [x]) => {
      if (op.reps.length !== x.shape.length || op.reps.some((r) => !Number.isInteger(r) || r < 0)) {
        fail('tile', `reps [${op.reps.join(', ')}] do not fit ${fmtShape(x.shape)}`);
      }
      return { shape: x.shape.map((d, i) => dimMul(d, op.reps[i], 'tile')), dtype: x.dtype };
    },
  },
  expand: {
    arity: 1,
    infer: (op, [x]) => {
      if (op.shape.length < x.shape.length)
        fail('expand', `cannot expand ${fmtShape(x.shape)} to lower rank ${fmtShape(op.shape)}`);
      const out = broadcastShapes('expand', [x.shape, op.shape]);
      if (!out.every((d, i) => dimEq(d, op.shape[i])))
        fail('expand', `cannot expand ${fmtShape(x.shape)} to ${fmtShape(op.shape)}`);
      return { shape: op.shape, dtype: x.dtype };
    },
  },
  concat: {
    arity: 'variadic',
    infer: (op, ins) => {
      sameDtype('concat', ins);
      const rank = ins[0].shape.length;
      const axis = normAxis('concat', op.axis, rank);
      let total: Dim = 0;
      for (const t of ins) {
        const s = t.shape;
        if (s.length !== rank || s.some((d, i) => i !== axis && !dimEq(d, ins[0].shape[i]))) {
          fail('concat', `shapes ${ins.map((u) => fmtShape(u.shape)).join(', ')} differ off axis ${axis}`);
        }
        const d = s[axis];
        if (isSym(d) || isSym(total)) {
          if (total === 0) total = d;
          else if (d !== 0) fail('concat', `cannot concatenate along a symbolic axis (${fmtShape(s)})`);
        } else total += d;
      }
      return { shape: ins[0].shape.map((d, i) => (i === axis ? total : d)), dtype: ins[0].dtype };
    },
  },
  slice: {
    arity: 1,
    infer: (op, [x]) => {
      const axis = normAxis('slice', op.axis, x.shape.length);
      const n = x.shape[axis];
      if (isSym(n)) fail('slice', `cannot slice the symbolic axis ${axis} of ${fmtShape(x.shape)}`);
      if (!(0 <= op.start && op.start <= op.end && op.end <= n)) {
        fail('slice', `[${op.start}, ${op.end}) is outside axis ${axis} of ${fmtShape(x.shape)}`);
      }
      return { shape: x.shape.map((d, i) => (i === axis ? op.end - op.start : d)), dtype: x.dtype };
    },
  },
  matMul: {
    arity: 2,
    infer: (_op, [a, b]) => {
      sameDtype('matMul', [a, b]);
      if (a.dtype === 'bool') fail('matMul', 'needs numbers, got bool');
      if (a.shape.length < 2 || b.shape.length < 2) {
        fail('matMul', `needs rank >= 2 operands, got ${fmtShape(a.shape)} and ${fmtShape(b.shape)}`);
      }
      const [m, k] = a.shape.slice(-2);
      const [k2, n] = b.shape.slice(-2);
      if (!dimEq(k, k2)) fail('matMul', `inner dims differ: ${fmtShape(a.shape)} @ ${fmtShape(b.shape)}`);
      const batch = broadcastShapes('matMul', [a.shape.slice(0, -2), b.shape.slice(0, -2)]);
      return { shape: [...batch, m, n], dtype: a.dtype };
    },
  },
  ...(Object.fromEntries(UNARY.map((k) => [k, unary(k)])) as { [K in UnaryKind]: KindRule<K> }),
  ...(Object.fromEntries(BINARY.map((k) => [k, binary(k)])) as { [K in BinaryKind]: KindRule<K> }),
  ...(Object.fromEntries(COMPARE.map((k) => [k, compare(k)])) as { [K in CompareKind]: KindRule<K> }),
  where: {
    arity: 3,
    infer: (_op, [c, a, b]) => {
      if (c.dtype !== 'bool') fail('where', `the condition must be bool, got ${c.dtype}`);
      sameDtype('where', [a, b]);
      return { shape: broadcastShapes('where', [c.shape, a.shape, b.shape]), dtype: a.dtype };
    },
  },
  softmax: softmaxLike('softmax'),
  logSoftmax: softmaxLike('logSoftmax'),
  layerNorm: {
    arity: 3,
    infer: (_op, [x, g, b]) => {
      float('layerNorm', x);
      const d = x.shape[x.shape.length - 1];
      for (const [what, t] of [
        ['gamma', g],
        ['beta', b],
      ] as const) {
        if (t.shape.length !== 1 || !dimEq(t.shape[0], d)) {
          fail(
            'layerNorm',
            `${what} ${fmtShape(t.shape)} does not fit the last axis of ${fmtShape(x.shape)}`,
          );
        }
      }
      return x;
    },
  },
  layerNormStat: {
    arity: 1,
    infer: (_op, [x]) => {
      float('layerNormStat', x);
      if (x.shape.length === 0) fail('layerNormStat', 'needs a tensor of rank >= 1, got a scalar');
      return { shape: [...x.shape.slice(0, -1), 1], dtype: x.dtype };
    },
  },
  gelu: { arity: 1, infer: (_op, [x]) => (float('gelu', x), x) },
  cast: { arity: 1, infer: (op, [x]) => ({ shape: x.shape, dtype: op.to }) },
  argMax: {
    arity: 1,
    infer: (op, [x]) => {
      const axis = normAxis('argMax', op.axis, x.shape.length);
      return { shape: x.shape.filter((_, i) => i !== axis), dtype: 'int32' };
    },
  },
  attention: {
    arity: 3,
    infer: (_op, [q, k, v]) => {
      for (const t of [q, k, v]) float('attention', t);
      const r = q.shape.length;
      const bad = () =>
        fail(
          'attention',
          `q ${fmtShape(q.shape)}, k ${fmtShape(k.shape)}, v ${fmtShape(v.shape)} do not fit`,
        );
      if (r < 2 || k.shape.length !== r || v.shape.length !== r) bad();
      if (!dimEq(q.shape[r - 1], k.shape[r - 1]) || !dimEq(k.shape[r - 2], v.shape[r - 2])) bad();
      for (let i = 0; i < r - 2; i++)
        if (!dimEq(q.shape[i], k.shape[i]) || !dimEq(q.shape[i], v.shape[i])) bad();
      return { shape: [...q.shape.slice(0, -1), v.shape[r - 1]], dtype: q.dtype };
    },
  },
};

/** Runs the shape rule of `op` on input types (arity checked): the single entry the builder uses. */
export function inferType(op: Op, inputs: readonly TensorType[]): TensorType {
  const rule = KINDS[op.kind] as KindRule<Kind>;
  if (rule.arity === 'variadic' ? inputs.length === 0 : inputs.length !== rule.arity) {
    fail(
      op.kind,
      `takes ${rule.arity === 'variadic' ? 'one or more' : rule.arity} input(s), got ${inputs.length}`,
    );
  }
  return rule.infer(op as never, inputs);
}
