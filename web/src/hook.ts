// The page's test hook, `window.einvit`: what the end-to-end test drives directly.
import type { tf } from '../../src/tf.js';
import type { checkReference, GPU_TOLERANCE, parseCases, runConformance } from './checks.js';

/** Set by main.ts once the page script runs. */
export interface EinvitHook {
  tf: typeof tf;
  /** Resolves when the backend is up and the shipped model is loaded. */
  started: Promise<void>;
  selectBackend(name: string): Promise<void>;
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
