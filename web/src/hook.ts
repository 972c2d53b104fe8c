// The page's test hook, `window.einvit`: what the end-to-end test drives directly.
import type { tf } from '../../src/tf.js';
import type { LastRun } from './demo.js';
import type { checkReference, GPU_TOLERANCE, parseCases, runConformance } from './checks.js';

/** Set by main.ts once the page script runs. */
export interface EinvitHook {
  tf: typeof tf;
  /** Resolves when the backend is up and the shipped model is loaded. */
  started: Promise<void>;
  selectBackend(name: string): Promise<void>;
  /** Picks the demo's runtime: 'tfjs', 'ort-wasm' or 'ort-webgpu'; resolves when the last image re-ran. */
  selectRuntime(name: string): Promise<void>;
  /** What ran the last classification (and, on onnxruntime-web's WebGPU provider, its GPU kernels). */
  lastRun(): LastRun;
  /** Resolves when the classification in flight (if any) is done. */
  idle(): Promise<void>;
  runConformance: typeof runConformance;
  checkReference: typeof checkReference;
  parseCases: typeof parseCases;
  GPU_TOLERANCE: typeof GPU_TOLERANCE;
  runCheck(): Promise<string>;
}

declare global {
  interface Window {
    einvit: EinvitHook;
  }
}
