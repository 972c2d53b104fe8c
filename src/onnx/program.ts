// compileProgram: trace a function written with einvit's ops on symbolic tensors, optimise the
// graph, emit ONNX, open an onnxruntime session. `.run` gives what running the function eagerly gives.
//
// Traceable (record IR when given a symbolic tensor `Sym`):
// - einvit's `rearrange`, `reduce` (named reductions; not a custom function), `repeat`, `einsum`,
//   `pack`, `unpack`. A symbolic batch axis may be composed with others (`(b n) d`) but not
//   decomposed into a known length (`(b 2)`), nor be the `*` axis of pack/unpack, nor be sliced.
// - the methods of `Sym`: reshape, transpose, sum/mean/max/reduce, tile, expand, slice, matMul,
//   add/sub/rsub/mul/div/pow/maximum/minimum, equal/less/greater/and/or/not, neg/exp/log/sqrt/
//   rsqrt/reciprocal/tanh/erf/relu/sigmoid/abs, softmax/logSoftmax, layerNorm,
//   layerNormStat, gelu, cast, argMax;
//   and GraphBuilder's concat, where, attention, constant, param.
// Anything else (tf.* ops on a Sym, data-dependent shapes) fails at trace time with a CompileError.
import { tf } from '../tf.js';
import { CompileError, EinvitError } from '../errors.js';
import { GraphBuilder, Sym } from '../ir/builder.js';
import type { Shape } from '../ir/dims.js';
import type { Graph } from '../ir/graph.js';
import type { DType } from '../ir/kinds.js';
import { optimize } from '../ir/passes.js';
import { passesFor, toOnnx, type EmitOptions } from './emit.js';
import { OnnxSession, type Feed, type SessionOptions } from './runtime.js';

/** One input of a program: a shape (symbolic dims allowed, e.g. `sym('N')`) and a dtype. */
export interface InputSpec {
  readonly shape: Shape;
  readonly dtype?: DType;
}

/** What a traced function may return: one tensor, a list, or named tensors. */
export type TraceResult = Sym | readonly Sym[] | Readonly<Record<string, Sym>>;

/**
 * Records `fn` on symbolic inputs named as in `inputs`; returns the graph (not yet optimised).
 *
 * @example
 * const graph = trace((x) => rearrange(x, 'b c h w -> b h w c'), { x: { shape: [sym('N'), 3, 8, 8] } });
 */
export function trace(
  fn: (...xs: Sym[]) => TraceResult,
  inputs: Readonly<Record<string, InputSpec>>,
  builder = new GraphBuilder(),
): Graph {
  const xs = Object.entries(inputs).map(([name, s]) => builder.input(name, s.shape, s.dtype ?? 'float32'));
  let result: TraceResult;
  try {
    result = fn(...xs);
  } catch (e) {
    if (!(e instanceof EinvitError)) {
      // An eager-only op met a symbolic tensor (e.g. tf.add(sym, ...)): say so instead of tfjs' raw error.
      throw new CompileError(`the program called an op that cannot be traced: ${(e as Error).message}`, {
        rule: 'untraceable',
        cause: e,
      });
    }
    throw e;
  }
  if (result instanceof Sym) return builder.build({ output: result });
  if (Array.isArray(result)) return builder.build(result as Sym[]);
  if (result && typeof result === 'object' && Object.values(result).every((v) => v instanceof Sym)) {
    return builder.build(result as Record<string, Sym>);
  }
  throw new CompileError(
    `the traced program returned ${String(result)}, not symbolic tensors (was a tf.Tensor computed eagerly?)`,
    {
      rule: 'untraceable',
    },
  );
}

/** Options of {@link compileProgram}. */
export interface CompileOptions extends EmitOptions, SessionOptions {
  /** Skip the graph passes (for debugging). */
  readonly optimize?: boolean;
}

/**
 * A traced, optimised program running on onnxruntime.
 *
 * @example
 * const p = await compileProgram((x) => reduce(x, 'b c h w -> b c', 'mean'), { x: { shape: [sym('N'), 3, 8, 8] } });
 * const { output } = await p.run({ x: tf.ones([2, 3, 8, 8]) });   // [2, 3]
 * await p.dispose();
 */
export class CompiledProgram {
  constructor(
    /** The graph as traced. */
    readonly traced: Graph,
    /** The graph after the passes: what runs. */
    readonly graph: Graph,
    /** The ONNX model bytes. */
    readonly onnx: Uint8Array,
    private readonly session: OnnxSession,
  ) {}

  /** Runs on named inputs (tfjs tensors or typed arrays with shapes); returns tfjs tensors by output name. */
  run(inputs: Record<string, Feed>): Promise<Record<string, tf.Tensor>> {
    return this.session.run(inputs);
  }

  /** As {@link run}, returning onnxruntime's tensors (typed arrays in `.data`, shapes in `.dims`). */
  runRaw(inputs: Record<string, Feed>) {
    return this.session.runRaw(inputs);
  }

  dispose(): Promise<void> {
    return this.session.dispose();
  }
}

/**
 * Traces `fn` (einvit's ops and the methods of symbolic tensors), optimises the graph, emits ONNX
 * and opens an onnxruntime session. Throws RuntimeFailure if onnxruntime cannot load (check
 * `loadOnnxruntime()` first to fall back to tfjs), CompileError if `fn` cannot be traced.
 *
 * @example
 * const p = await compileProgram((x, w) => einsum('b n i, o i -> b n o', x, w).gelu(),
 *   { x: { shape: [sym('N'), 17, 96] }, w: { shape: [192, 96] } });
 */
export async function compileProgram(
  fn: (...xs: Sym[]) => TraceResult,
  inputs: Readonly<Record<string, InputSpec>>,
  options: CompileOptions = {},
): Promise<CompiledProgram> {
  return compileGraph(trace(fn, inputs), options);
}

/**
 * As {@link compileProgram} for a graph already built (e.g. by `ViT.compile`).
 *
 * @example
 * const p = await compileGraph(builder.build({ logits }));
 */
export async function compileGraph(traced: Graph, options: CompileOptions = {}): Promise<CompiledProgram> {
  const graph = options.optimize === false ? traced : optimize(traced, passesFor(options));
  const onnx = toOnnx(graph, options);
  const session = await OnnxSession.create(onnx, { source: 'the compiled program', ...options });
  return new CompiledProgram(traced, graph, onnx, session);
}
