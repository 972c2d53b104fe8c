// Backend selection on the page: the library's ready(), plus what the page must set up for tfjs in
// a browser (where the wasm binaries are) and a description of the device that actually runs.
import { setWasmPaths } from '@tensorflow/tfjs-backend-wasm';
import wasmPlain from '@tensorflow/tfjs-backend-wasm/dist/tfjs-backend-wasm.wasm?url';
import wasmSimd from '@tensorflow/tfjs-backend-wasm/dist/tfjs-backend-wasm-simd.wasm?url';
import wasmThreaded from '@tensorflow/tfjs-backend-wasm/dist/tfjs-backend-wasm-threaded-simd.wasm?url';
import { ready } from '../../src/backends/index.js';
import { tf } from '../../src/tf.js';

// Vite fingerprints the binaries; tell tfjs their URLs (by default it looks next to the script).
setWasmPaths({
  'tfjs-backend-wasm.wasm': wasmPlain,
  'tfjs-backend-wasm-simd.wasm': wasmSimd,
  'tfjs-backend-wasm-threaded-simd.wasm': wasmThreaded,
});

/** The backend that runs, and on what. */
export interface ActiveBackend {
  name: string;
  device: string;
}

interface WebGLBackendLike {
  gpgpu?: { gl?: WebGL2RenderingContext };
}
interface WebGPUBackendLike {
  adapterInfo?: { vendor?: string; architecture?: string; description?: string };
}

/** Names the device under the active backend: the GL renderer, the WebGPU adapter, or the CPU. */
export function describeDevice(): string {
  const name = tf.getBackend();
  const backend = tf.backend() as unknown;
  if (name === 'webgl') {
    const gl = (backend as WebGLBackendLike).gpgpu?.gl;
    if (!gl) return 'WebGL';
    const ext = gl.getExtension('WEBGL_debug_renderer_info');
    return `WebGL2: ${gl.getParameter(ext ? ext.UNMASKED_RENDERER_WEBGL : gl.RENDERER)}`;
  }
  if (name === 'webgpu') {
    const info = (backend as WebGPUBackendLike).adapterInfo;
    const parts = [info?.vendor, info?.architecture, info?.description].filter((s) => s);
    return `WebGPU: ${parts.join(' ') || 'adapter'}`;
  }
  if (name === 'wasm') return 'WebAssembly on the CPU';
  return 'plain JavaScript on the CPU';
}

/**
 * Starts `wanted` (or the best one for `auto`) and reports what runs.
 *
 * @example
 * const { name, device } = await switchBackend('webgl');
 */
export async function switchBackend(wanted: string): Promise<ActiveBackend> {
  const name = await ready(wanted === 'auto' ? undefined : wanted);
  return { name, device: describeDevice() };
}
