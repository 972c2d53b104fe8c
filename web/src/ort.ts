// onnxruntime-web as a second runtime of the ViT demo. The page traces the loaded model with einvit's
// own tracer (src/vit/trace.ts), runs the IR passes and emits ONNX with src/onnx/emit.ts, all in the
// browser, so any checkpoint the page loads (the shipped one or a folder from disk) runs here too and
// no .onnx file has to be kept in step with the shipped weights. onnxruntime-web (~1 MB of script,
// ~28 MB of wasm) loads only when this runtime is first picked.
import type * as OrtModule from 'onnxruntime-web';
import { CompileError, RuntimeFailure } from '../../src/errors.js';
import { optimize } from '../../src/ir/passes.js';
import { toOnnx } from '../../src/onnx/emit.js';
import { mapParams } from '../../src/vit/params.js';
import { PIXEL_INPUT, traceViT } from '../../src/vit/trace.js';
import type { ViT } from '../../src/vit/model.js';

/** The onnxruntime-web execution providers the page offers. */
export type OrtProvider = 'wasm' | 'webgpu';

type Ort = typeof OrtModule;

let ortPromise: Promise<Ort> | undefined;

/**
 * Loads onnxruntime-web once. The default bundle holds the wasm and WebGPU (JSEP) providers in one
 * binary; Vite fingerprints it, so its URL is handed to ORT instead of ORT guessing it from its own.
 */
function loadOrt(): Promise<Ort> {
  ortPromise ??= (async () => {
    const [ort, wasmUrl] = await Promise.all([
      import('onnxruntime-web'),
      import('onnxruntime-web/ort-wasm-simd-threaded.jsep.wasm?url').then((m) => m.default as string),
    ]);
    ort.env.wasm.wasmPaths = { wasm: new URL(wasmUrl, location.href).href };
    // Threads need cross-origin isolation (SharedArrayBuffer), which a plain static host does not give.
    if (!globalThis.crossOriginIsolated) ort.env.wasm.numThreads = 1;
    ort.env.logLevel = 'error';
    return ort;
  })().catch((e: unknown) => {
    ortPromise = undefined;
    throw new RuntimeFailure(`onnxruntime-web could not be loaded: ${(e as Error).message}`, {
      rule: 'onnxruntime-web-load',
      cause: e,
    });
  });
  return ortPromise;
}

/** A model compiled for onnxruntime-web: one session, batch 1, outputs logits and attentions. */
export interface OrtModel {
  provider: OrtProvider;
  session: OrtModule.InferenceSession;
  ort: Ort;
  /** The ONNX model's size in bytes and the milliseconds tracing + passes + emitting took. */
  onnxBytes: number;
  compileMs: number;
  /** GPU kernels the WebGPU provider ran in the last `run` (empty on wasm). */
  gpuKernels: Set<string>;
}

/** Kernels reported by the WebGPU provider's profiler while a run is in flight. */
let kernelSink: Set<string> | undefined;

/**
 * Traces `model` (batch 1, with attention maps), optimises and emits ONNX, and opens an
 * onnxruntime-web session on `provider`. CompileError if the model cannot be traced; RuntimeFailure
 * if onnxruntime-web or the provider cannot start.
 *
 * @example
 * const m = await compileForOrt(loaded.model, 'wasm');
 * const out = await runOrt(m, pixels, [1, 1, 28, 28]);
 */
export async function compileForOrt(model: ViT, provider: OrtProvider): Promise<OrtModel> {
  const ort = await loadOrt();
  const t0 = performance.now();
  // Read the weights asynchronously: a GPU tfjs backend has no cheap synchronous read.
  const values = new Map(
    await Promise.all(
      [...model.parameters().values()].map(async (v) => [v, (await v.data()) as Float32Array] as const),
    ),
  );
  const params = mapParams(model.config, model.params, (v) => ({
    shape: [...v.shape],
    data: values.get(v)!,
  }));
  let bytes: Uint8Array;
  try {
    const graph = optimize(traceViT(model.config, params, { batch: 1, outputAttentions: true }));
    bytes = toOnnx(graph, { metadata: { config: JSON.stringify(model.config) } });
  } catch (e) {
    if (e instanceof CompileError) throw e;
    throw new CompileError(`tracing the model for onnxruntime-web failed: ${(e as Error).message}`, {
      rule: 'untraceable',
      cause: e,
    });
  }
  const compileMs = performance.now() - t0;
  if (provider === 'webgpu') {
    ort.env.webgpu.profiling = {
      mode: 'default',
      ondata: (d) => kernelSink?.add(d.kernelType),
    };
  }
  let session: OrtModule.InferenceSession;
  try {
    session = await ort.InferenceSession.create(bytes, {
      executionProviders: [provider],
      graphOptimizationLevel: 'all',
    });
  } catch (e) {
    throw new RuntimeFailure(
      `onnxruntime-web cannot start the ${provider} provider: ${(e as Error).message.split('\n')[0]}`,
      { rule: 'onnxruntime-web-provider', cause: e },
    );
  }
  return { provider, session, ort, onnxBytes: bytes.length, compileMs, gpuKernels: new Set() };
}

/** What one run gives: class logits and every layer's attention probabilities `[1, heads, T, T]`. */
export interface OrtOutput {
  logits: Float32Array;
  attentions: { data: Float32Array; dims: number[] }[];
}

/**
 * Runs the compiled model on one image's pixels (NCHW, batch 1).
 *
 * @example
 * const { logits, attentions } = await runOrt(m, x.data, [1, 1, 28, 28]);
 */
export async function runOrt(m: OrtModel, pixels: Float32Array, dims: number[]): Promise<OrtOutput> {
  const feeds = { [PIXEL_INPUT]: new m.ort.Tensor('float32', pixels, dims) };
  kernelSink = m.provider === 'webgpu' ? new Set() : undefined;
  let out: OrtModule.InferenceSession.OnnxValueMapType;
  try {
    out = await m.session.run(feeds);
  } catch (e) {
    throw new RuntimeFailure(
      `onnxruntime-web failed running the model: ${(e as Error).message.split('\n')[0]}`,
      {
        rule: 'onnxruntime-web-run',
        cause: e,
      },
    );
  } finally {
    if (kernelSink) m.gpuKernels = kernelSink;
    kernelSink = undefined;
  }
  const L = m.session.outputNames.filter((n) => n.startsWith('attentions.')).length;
  const result: OrtOutput = {
    logits: Float32Array.from(out.logits.data as Float32Array),
    attentions: Array.from({ length: L }, (_, i) => {
      const t = out[`attentions.${i}`];
      return { data: Float32Array.from(t.data as Float32Array), dims: t.dims.map(Number) };
    }),
  };
  for (const t of Object.values(out)) t.dispose();
  return result;
}

/** Releases a session. */
export async function releaseOrt(m: OrtModel | undefined): Promise<void> {
  await m?.session.release();
}
