// What the GPU tests accept, in one place, with the reasons (the README's backend table quotes them).

/**
 * ViT outputs against PyTorch, as max |a - ref| / max |ref|: the same 1e-5 as the wasm/cpu tests.
 * Measured on the software GPUs here: at most 2.2e-6 (WebGPU: Dawn on llvmpipe in Node, SwiftShader
 * in chromium; WebGL: llvmpipe through ANGLE). tfjs computes float32 throughout on these (WebGL
 * float32 textures); a GPU that only renders to half-float textures would need ~1e-3 and is not
 * what these tests target.
 */
export const GPU_REFERENCE_TOLERANCE = 1e-5;

const INT_TRANSPOSE =
  'tfjs-backend-webgpu 4.22: TransposeProgram (rank >= 3) and Tile on int32/bool emit WGSL with an ' +
  'f32/i32 type mismatch; the pipeline is invalid and the op returns zeros or stale memory without throwing';
const BOOL_REDUCE =
  'tfjs-backend-webgpu 4.22: Any/All (bool) and int32 reductions read back zeros (same invalid-WGSL family)';

/**
 * Conformance cases a backend gets wrong, with the reason (the README's backend table lists them).
 * They are not run on that backend: an invalid WebGPU pipeline can leave stale buffers behind that
 * spoil the cases after it. float32, the ViT's only dtype, is unaffected.
 */
export const KNOWN_GPU_DIFFERENCES: Record<'webgl' | 'webgpu', Map<string, string>> = {
  webgl: new Map(),
  webgpu: new Map([
    ['einsum-0015', INT_TRANSPOSE],
    ['rearrange-0049', INT_TRANSPOSE],
    ['rearrange-0050', INT_TRANSPOSE],
    ['repeat-0043', INT_TRANSPOSE],
    ['reduce-0027', BOOL_REDUCE],
    ['reduce-0029', BOOL_REDUCE],
    ['reduce-0030', BOOL_REDUCE],
    ['reduce-0034', BOOL_REDUCE],
    ['reduce-0082', BOOL_REDUCE],
  ]),
};
