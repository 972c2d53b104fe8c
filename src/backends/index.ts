import { tf } from '../tf.js';
import { RuntimeFailure, UsageError } from '../errors.js';

/** Backends einvit knows how to start, best first. `tensorflow` is tfjs-node(-gpu). */
export const BACKENDS = ['tensorflow', 'webgpu', 'webgl', 'wasm', 'cpu'] as const;
export type BackendName = (typeof BACKENDS)[number];

const isNode = typeof process !== 'undefined' && process.versions?.node !== undefined;

/** What `ready('tensorflow')` says when neither tfjs-node package is installed. */
export const TFJS_NODE_HINT =
  'Install @tensorflow/tfjs-node-gpu 4.22.0 (Linux x64, NVIDIA CUDA 11.2 + cuDNN 8.1) or ' +
  '@tensorflow/tfjs-node 4.22.0 (CPU); both download libtensorflow 2.9.1 when installed. ' +
  "For other GPUs use ready('webgpu') with the npm package `webgpu` (Dawn).";

async function tryImport(name: string): Promise<boolean> {
  try {
    // Optional peers: the name is a variable so bundlers leave it alone.
    await import(/* @vite-ignore */ name);
    return true;
  } catch {
    return false;
  }
}

// Minimal view of the npm `webgpu` package (Dawn for Node), an optional peer.
interface DawnModule {
  create(flags: string[]): GpuLike;
  globals: Record<string, unknown>;
}
interface GpuLike {
  requestAdapter(opts?: Record<string, unknown>): Promise<unknown>;
}

/**
 * Puts a Dawn `navigator.gpu` on globalThis (Node only). A hardware adapter is tried first; when
 * there is none (no Vulkan/Metal/D3D12 driver Dawn accepts), Dawn's OpenGL ES backend in WebGPU
 * compatibility mode, which runs on Mesa's llvmpipe (EGL surfaceless, no display needed).
 */
async function installDawn(): Promise<boolean> {
  const g = globalThis as { navigator?: { gpu?: unknown } };
  if (g.navigator?.gpu) return true;
  // Mesa reads this when EGL starts; set before Dawn loads so no X/Wayland display is looked for.
  process.env.EGL_PLATFORM ??= 'surfaceless';
  let dawn: DawnModule;
  try {
    dawn = (await import(/* @vite-ignore */ 'webgpu' as string)) as DawnModule;
  } catch {
    return false;
  }
  let gpu: GpuLike | undefined;
  try {
    const native = dawn.create([]);
    if (await native.requestAdapter()) gpu = native;
  } catch {
    // no hardware adapter: fall through to OpenGL ES
  }
  if (!gpu) {
    const gl = dawn.create(['backend=opengles']);
    const request = gl.requestAdapter.bind(gl);
    const compat: GpuLike = {
      requestAdapter: (opts = {}) => request({ ...opts, featureLevel: 'compatibility' }),
    };
    try {
      if (!(await compat.requestAdapter())) return false;
    } catch {
      return false;
    }
    gpu = Object.assign(gl, compat);
  }
  Object.assign(globalThis, dawn.globals);
  if (g.navigator) {
    Object.defineProperty(g.navigator, 'gpu', { value: gpu, configurable: true });
  } else {
    Object.defineProperty(globalThis, 'navigator', { value: { gpu }, configurable: true, writable: true });
  }
  return true;
}

/** Loads the package that provides `name` (optional peers are imported only when asked for). */
async function provide(name: BackendName): Promise<boolean> {
  switch (name) {
    case 'tensorflow':
      return (
        isNode &&
        ((await tryImport('@tensorflow/tfjs-node-gpu')) || (await tryImport('@tensorflow/tfjs-node')))
      );
    case 'webgpu':
      // The backend registers itself only if navigator.gpu exists when it is first imported.
      if (
        isNode ? !(await installDawn()) : !(globalThis as { navigator?: { gpu?: unknown } }).navigator?.gpu
      ) {
        return false;
      }
      try {
        await import('@tensorflow/tfjs-backend-webgpu');
        return true;
      } catch {
        return false;
      }
    case 'webgl':
      return !isNode; // registered by the umbrella package; needs a browser
    case 'wasm':
    case 'cpu':
      return true;
  }
}

async function start(name: BackendName): Promise<boolean> {
  if (!(await provide(name))) return false;
  try {
    return await tf.setBackend(name);
  } catch {
    return false;
  }
}

// What `auto` tries. In Node a WebGPU adapter is usually a software one (10-60x slower than wasm),
// so Node takes webgpu only when asked for by name.
const AUTO: readonly BackendName[] = isNode
  ? ['tensorflow', 'wasm', 'cpu']
  : ['webgpu', 'webgl', 'wasm', 'cpu'];

let current: Promise<string> | undefined;
let currentWanted: string | undefined;

/**
 * Picks and initialises a tfjs backend and returns its name. Order: the `backend` argument, else
 * `EINVIT_BACKEND`, else automatic: in Node tfjs-node-gpu / tfjs-node when installed, then the
 * embedded WebAssembly backend, then plain JS (`cpu`); in a browser WebGPU, WebGL, wasm, cpu.
 * `ready('webgpu')` in Node runs tfjs' WebGPU backend on Dawn (the optional npm package `webgpu`).
 * Throws UsageError for an unknown name and RuntimeFailure for a backend that cannot start here.
 *
 * @example
 * const name = await ready();        // 'wasm' on a machine without tfjs-node
 * await ready('cpu');                 // force a backend
 * await ready('webgpu');              // Node: needs `npm install webgpu`
 */
export async function ready(backend?: string): Promise<string> {
  const wanted = backend ?? (isNode ? process.env.EINVIT_BACKEND : undefined) ?? 'auto';
  if (current && currentWanted === wanted) return current;
  currentWanted = wanted;
  current = (async () => {
    if (wanted !== 'auto') {
      if (!(BACKENDS as readonly string[]).includes(wanted)) {
        throw new UsageError(`Unknown backend "${wanted}". Expected one of: ${BACKENDS.join(', ')}, auto.`, {
          rule: 'backend-name',
        });
      }
      if (!(await start(wanted as BackendName))) {
        const hint =
          wanted === 'tensorflow'
            ? ` ${TFJS_NODE_HINT}`
            : wanted === 'webgpu' && isNode
              ? ' Install the npm package `webgpu` (Dawn); on Linux without a GPU driver it needs Mesa (libegl1 libegl-mesa0 libgles2 libgl1-mesa-dri).'
              : wanted === 'webgl' && isNode
                ? ' WebGL needs a browser.'
                : '';
        throw new RuntimeFailure(`Backend "${wanted}" is not available here.${hint}`, {
          rule: 'backend-unavailable',
        });
      }
    } else {
      let ok = false;
      for (const name of AUTO) {
        if (await start(name)) {
          ok = true;
          break;
        }
      }
      if (!ok) throw new RuntimeFailure('No tfjs backend could be started.', { rule: 'backend-unavailable' });
    }
    await tf.ready();
    return tf.getBackend();
  })();
  try {
    return await current;
  } catch (e) {
    current = undefined;
    throw e;
  }
}
