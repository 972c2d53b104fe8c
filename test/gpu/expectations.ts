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

/**
 * One eager training step on a GPU backend against wasm (web/src/gradients.ts: tiny ViT, batch 8,
 * dropout 0.1, label smoothing 0.1). Gradients: max |gpu - wasm| / max |wasm| per parameter. Measured
 * at most 1.6e-6 (WebGL on llvmpipe) and 1.4e-6 (WebGPU on SwiftShader): float32 everywhere, the
 * difference is summation order (GPU reductions and matMuls sum in tiles and trees, XNNPACK and the
 * wasm kernels in their own order), growing with the reduced length (136 token rows, 96-192 features)
 * as ~sqrt(n) * 6e-8. 1e-5 leaves ~6x margin and still catches a wrong kernel (errors of 1e-3 and up).
 */
export const GPU_GRADIENT_TOLERANCE = 1e-5;

/**
 * The parameters after one AdamW step, in units of the learning rate. AdamW's first step moves every
 * element by lr * g / (|g| + eps): ±lr where |g| >> eps = 1e-8, so rounding in g changes nothing
 * there; only elements whose gradient is itself ~1e-8 (float noise next to a max of ~1e-1) move by a
 * rounding-sensitive amount. Measured: 12-13 of ~300k elements differ by more than 1% of lr, by at
 * most 0.22 lr. Accepted: no element off by more than one step's size, at most 1e-4 of the elements
 * off by more than 1% of it.
 */
export const ADAMW_STEP_TOLERANCE = { maxInLr: 1, offFraction: 1e-4 };
