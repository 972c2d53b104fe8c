/**
 * einvit: einops-style shape patterns compiled to TensorFlow.js, and a Vision Transformer written
 * with them. Everything public is exported here (the package's only entry point; ESM only).
 *
 * @example
 * import { rearrange, ready, tf, ViT, PRESETS } from 'einvit';
 * await ready();
 * const y = rearrange(tf.zeros([2, 3, 4, 4]), 'b c h w -> b h w c');
 * const model = ViT.create(PRESETS.tiny);
 */

// The shape DSL: operations and layers.
export { rearrange, reduce, repeat, einsum, pack, unpack, parseShape } from './ops.js';
export type { Reduction, AxesLengths, Tensor } from './ops.js';
export { Rearrange, Reduce, EinMix } from './layers/index.js';
export type { RearrangeArgs, ReduceArgs, EinMixArgs } from './layers/index.js';

// Backends and the tfjs namespace einvit uses (use this `tf`, not another copy of tfjs).
export { ready, BACKENDS } from './backends/index.js';
export type { BackendName } from './backends/index.js';
export { tf } from './tf.js';

// Errors: catch EinvitError for all of them.
export {
  EinvitError,
  EinopsError,
  CheckpointError,
  DataError,
  UsageError,
  CompileError,
  RuntimeFailure,
} from './errors.js';

// The compiler of whole programs: trace a function of einvit's ops on symbolic tensors into the graph
// IR, optimise it, emit ONNX and run it on onnxruntime (src/ir, src/onnx).
export { compileProgram, compileGraph, trace, CompiledProgram } from './onnx/program.js';
export type { InputSpec, TraceResult, CompileOptions } from './onnx/program.js';
export { toOnnx, exportOnnx } from './onnx/emit.js';
export type { EmitOptions } from './onnx/emit.js';
export { OnnxSession, loadOnnxruntime } from './onnx/runtime.js';
export { sym } from './ir/dims.js';
export type { Dim, Shape } from './ir/dims.js';
export { GraphBuilder, Sym } from './ir/builder.js';
export type { Graph } from './ir/graph.js';
export { printGraph } from './ir/print.js';
export { optimize } from './ir/passes.js';
export { evaluate } from './ir/evaluate.js';
export { grad, gradGraph } from './ir/grad.js';

// The Vision Transformer.
export { ViT } from './vit/model.js';
export type {
  ForwardOptions,
  ForwardOutput,
  Prediction,
  PretrainedOptions,
  PatchEmbedding,
} from './vit/model.js';
export { PRESETS, parseConfig, numPatches, gridSize, numTokens, headDim } from './vit/config.js';
export type { ViTConfig, HiddenAct } from './vit/config.js';
export { classTokenAttention, attentionRollout, rolloutMatrix } from './vit/attention.js';
export type { HeadFusion } from './vit/attention.js';

// Checkpoints: ViT.fromPretrained / ViT.save for folders; these for parameters and raw files.
export { readCheckpoint, loadCheckpoint, detectNaming } from './vit/weights.js';
export type { Naming } from './vit/weights.js';
export { openSafetensors, writeSafetensors } from './vit/safetensors.js';
export type { SafetensorsFile, TensorInfo, TensorData, SafetensorsDtype } from './vit/safetensors.js';

// Images and preprocessing.
export { preprocessingFor } from './vit/preprocessor.js';
export {
  preprocess,
  HF_VIT_PREPROCESSING,
  IMAGENET_PREPROCESSING,
  IMAGENET_DEFAULT_MEAN,
  IMAGENET_DEFAULT_STD,
} from './image/preprocess.js';
export type { PreprocessConfig, PreprocessedImage } from './image/preprocess.js';
export { loadImage, decodeImage } from './image/decode.js';
export type { RgbImage, DecodeOptions } from './image/decode.js';
export { resizeShortSide, centerCrop } from './image/resize.js';
