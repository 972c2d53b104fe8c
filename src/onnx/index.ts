/**
 * The ONNX target: emit a graph as an ONNX model, run it on onnxruntime-node, compile traced
 * programs end to end.
 *
 * @example
 * import { compileProgram } from './onnx/index.js';
 * const p = await compileProgram((x) => rearrange(x, 'b c h w -> b h w c'), { x: { shape: [sym('N'), 3, 4, 4] } });
 */
export { toOnnx, exportOnnx, DEFAULT_EMIT, OPSET } from './emit.js';
export type { EmitOptions } from './emit.js';
export {
  OnnxSession,
  loadOnnxruntime,
  onnxruntimeUnavailable,
  inspectModel,
  setOnnxruntimeImporter,
} from './runtime.js';
export type { Feed, IoSpec, SessionOptions } from './runtime.js';
export { compileProgram, compileGraph, trace, CompiledProgram } from './program.js';
export type { InputSpec, TraceResult, CompileOptions } from './program.js';
