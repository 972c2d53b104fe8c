import { tf } from '../tf.js';
import { EinopsError } from '../errors.js';

/** Backends einvit knows how to start, best first. `tensorflow` is tfjs-node(-gpu). */
export const BACKENDS = ['tensorflow', 'webgpu', 'webgl', 'wasm', 'cpu'] as const;
export type BackendName = (typeof BACKENDS)[number];

const isNode = typeof process !== 'undefined' && process.versions?.node !== undefined;

async function tryImport(name: string): Promise<boolean> {
  try {
    await import(/* @vite-ignore */ name);
    return true;
  } catch {
    return false;
  }
}

/** Loads the package that provides `name` (optional peers are imported only when asked for). */
async function provide(name: BackendName): Promise<boolean> {
  switch (name) {
    case 'tensorflow':
      return (await tryImport('@tensorflow/tfjs-node-gpu')) || (await tryImport('@tensorflow/tfjs-node'));
    case 'webgpu':
      return !isNode && (await tryImport('@tensorflow/tfjs-backend-webgpu'));
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

let current: Promise<string> | undefined;
let currentWanted: string | undefined;

/**
 * Picks and initialises the best available tfjs backend and returns its name. Order: the `backend`
 * argument, else `EINVIT_BACKEND`, else tfjs-node-gpu / tfjs-node when installed, browser GPU
 * backends, then the embedded WebAssembly backend, then plain JS (`cpu`).
 *
 * @example
 * const name = await ready();        // 'wasm' on a machine without tfjs-node
 * await ready('cpu');                 // force a backend
 */
export async function ready(backend?: string): Promise<string> {
  const wanted = backend ?? (isNode ? process.env.EINVIT_BACKEND : undefined) ?? 'auto';
  if (current && currentWanted === wanted) return current;
  currentWanted = wanted;
  current = (async () => {
    if (wanted !== 'auto') {
      if (!(BACKENDS as readonly string[]).includes(wanted)) {
        throw new EinopsError(`Unknown backend "${wanted}". Expected one of: ${BACKENDS.join(', ')}, auto.`);
      }
      if (!(await start(wanted as BackendName))) {
        const hint =
          wanted === 'tensorflow'
            ? ' Install @tensorflow/tfjs-node-gpu or @tensorflow/tfjs-node (4.22.0).'
            : '';
        throw new EinopsError(`Backend "${wanted}" is not available here.${hint}`);
      }
    } else {
      let ok = false;
      for (const name of BACKENDS) {
        if (await start(name)) {
          ok = true;
          break;
        }
      }
      if (!ok) throw new EinopsError('No tfjs backend could be started.');
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
