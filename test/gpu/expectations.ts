// What the GPU tests accept, in one place, with the reasons (the README's backend table quotes them).

/**
 * ViT outputs against PyTorch, as max |a - ref| / max |ref|. The wasm/cpu backends meet 1e-5; a GPU
 * sums in other orders (tiled matmuls, tree reductions), and tfjs' WebGL/WebGPU kernels compute
 * exp, erf (GELU), rsqrt (LayerNorm) and softmax with their own float32 shader code, so 1e-4.
 */
export const GPU_REFERENCE_TOLERANCE = 1e-4;

/** Conformance case ids a backend is allowed to fail, each with its reason in the README. */
export const KNOWN_GPU_DIFFERENCES: Record<'webgl' | 'webgpu', Set<string>> = {
  webgl: new Set<string>(),
  webgpu: new Set<string>(),
};
