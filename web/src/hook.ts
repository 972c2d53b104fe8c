// The page's test hook, `window.einvit`: what the end-to-end test drives directly.
import type { tf } from '../../src/tf.js';
import type { GradientReport } from './gradients.js';
import type { checkReference, GPU_TOLERANCE, parseCases, runConformance } from './checks.js';

/** Which runtime runs the ViT: tfjs (on the selected backend) or onnxruntime-web with a provider. */
export type Runtime = 'tfjs' | 'ort-wasm' | 'ort-webgpu';

/** What ran the last classification, and what it gave (the e2e test compares runtimes with it). */
export interface LastRun {
  runtime: Runtime;
  label: string;
  gpuKernels: string[];
  top: { label: string; prob: number }[];
  /** The class-token map drawn over the image, row-major. */
  attention: number[];
}

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
  /** One eager training step on `backend` against `reference` (default wasm): see gradients.ts. */
  gradientCheck(backend: string, reference?: string): Promise<GradientReport>;
}

declare global {
  interface Window {
    einvit: EinvitHook;
  }
}
