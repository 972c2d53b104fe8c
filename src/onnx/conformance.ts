// The einops conformance vectors through the ONNX target: each success case is traced with its
// input shapes (first axis symbolic when the case allows it), compiled to a small ONNX graph, run
// on onnxruntime and compared with einops' expected output.
import { tf } from '../tf.js';
import { CompileError } from '../errors.js';
import { compareTensor, makeTensor, type CaseResult, type ConformanceCase } from '../conformance/einops.js';
import { einsum, pack, rearrange, reduce, repeat, unpack } from '../ops.js';
import type { Sym } from '../ir/builder.js';
import { sym, type Dim } from '../ir/dims.js';
import type { DType } from '../ir/kinds.js';
import { compileProgram, type InputSpec } from './program.js';

/** Ops the ONNX target runs (parse_shape computes no tensor; error cases are the eager path's). */
export function onnxApplicable(c: ConformanceCase): boolean {
  return !c.expect.error && c.op !== 'parse_shape';
}

function traced(c: ConformanceCase) {
  return (...xs: Sym[]): Sym[] => {
    const x = c.input_is_list ? xs : xs[0];
    switch (c.op) {
      case 'rearrange':
        return [rearrange(x as Sym, c.pattern, c.axes_lengths)];
      case 'reduce':
        return [reduce(x as Sym, c.pattern, c.reduction as 'sum', c.axes_lengths)];
      case 'repeat':
        return [repeat(x as Sym, c.pattern, c.axes_lengths)];
      case 'einsum':
        return [einsum(c.pattern, ...xs)];
      case 'pack':
        return [pack(xs, c.pattern)[0]];
      case 'unpack':
        return unpack(xs[0], c.packed_shapes ?? [], c.pattern);
      default:
        throw new CompileError(`${c.op} has no ONNX form`, { rule: 'untraceable' });
    }
  };
}

function specs(c: ConformanceCase, symbolic: boolean): Record<string, InputSpec> {
  return Object.fromEntries(
    c.inputs.map((t, i) => {
      const shape: Dim[] = [...t.shape];
      if (symbolic && t.shape.length > 0 && t.shape[0] > 1) shape[0] = sym('N');
      const dtype = (t.dtype === 'bool' ? 'bool' : t.dtype === 'int32' ? 'int32' : 'float32') as DType;
      return [`x${i}`, { shape, dtype }];
    }),
  );
}

/**
 * Runs one success case on onnxruntime; never throws. With `symbolic`, the first axis of every
 * input is a symbolic batch (falling back to concrete shapes when the pattern is not batch-polymorphic).
 *
 * @example
 * const r = await runCaseOnnx(c);   // { id, passed, detail? }
 */
export async function runCaseOnnx(c: ConformanceCase, symbolic = false): Promise<CaseResult> {
  const base = { id: c.id, pattern: c.pattern, backendDefined: (c.tags ?? []).includes('backend-defined') };
  const inputs = c.inputs.map(makeTensor);
  const fn = traced(c);
  let outs: tf.Tensor[] = [];
  try {
    let program;
    try {
      program = await compileProgram(fn, specs(c, symbolic), { threads: 1 });
    } catch (e) {
      if (!symbolic || !(e instanceof CompileError)) throw e;
      program = await compileProgram(fn, specs(c, false), { threads: 1 });
    }
    try {
      const got = await program.run(Object.fromEntries(inputs.map((t, i) => [`x${i}`, t])));
      outs = program.graph.outputs.map((o) => got[o.name]);
    } finally {
      await program.dispose();
    }
    const want = c.op === 'unpack' || c.op === 'pack' ? (c.expect.outputs ?? []) : [c.expect as never];
    let detail: string | undefined;
    if (outs.length !== want.length) detail = `${outs.length} outputs != expected ${want.length}`;
    for (let i = 0; !detail && i < outs.length; i++)
      detail = compareTensor(c, outs[i], want[i], `output ${i}`);
    return { ...base, passed: detail === undefined, detail };
  } catch (e) {
    return { ...base, passed: false, detail: `threw ${(e as Error)?.name}: ${(e as Error)?.message}` };
  } finally {
    tf.dispose([...inputs, ...outs]);
  }
}
