// Shared set-up of the browser tests: build the page, serve it, start Debian's chromium headless with
// the flags that give it WebGL2 (Mesa llvmpipe through ANGLE) and WebGPU (SwiftShader) on a machine
// without a GPU or network, and collect every console error.
import { existsSync, mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { BrowserContext, Page } from 'playwright-core';

export const ROOT = fileURLToPath(new URL('../../', import.meta.url));
/** Screenshots land here (gitignored), kept as CI artifacts. */
export const ARTIFACTS = join(ROOT, 'test', 'e2e', 'artifacts');

/** Where the browser is: EINVIT_CHROMIUM, else Debian's. */
export const CHROMIUM = process.env.EINVIT_CHROMIUM ?? '/usr/bin/chromium';

/** Without the background-networking flags chromium keeps dialling hosts the closed network refuses. */
export const CHROMIUM_ARGS = [
  '--no-sandbox',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
  '--use-gl=angle',
  '--use-angle=gl-egl',
  '--ignore-gpu-blocklist',
  '--enable-unsafe-webgpu',
];

/**
 * Whether the browser tests can run. In CI they must: `.ci/run` installs chromium, so a missing
 * browser there is a failure, not a skip.
 */
export function browserAvailable(): boolean {
  if (existsSync(CHROMIUM)) return true;
  const msg = `[test/e2e] ${CHROMIUM} is missing: install Debian's chromium (apt-get install chromium) or set EINVIT_CHROMIUM`;
  if (process.env.CI) throw new Error(`${msg}; CI must run the browser tests`);
  console.warn(`${msg}. Skipping the browser tests.`);
  return false;
}

/** A built page served on 127.0.0.1. */
export interface Served {
  url: string;
  close(): Promise<void>;
}

/** Builds web/ into a temporary folder and serves it with vite preview. */
export async function buildAndServe(): Promise<Served> {
  const { build, preview } = await import('vite');
  const config = join(ROOT, 'web', 'vite.config.ts');
  const outDir = mkdtempSync(join(tmpdir(), 'einvit-web-'));
  await build({ configFile: config, logLevel: 'warn', build: { outDir, emptyOutDir: true } });
  const server = await preview({
    configFile: config,
    logLevel: 'warn',
    build: { outDir },
    preview: { host: '127.0.0.1', port: 0, strictPort: false },
  });
  const url = server.resolvedUrls?.local[0];
  if (!url) throw new Error('vite preview did not report a URL');
  return {
    url,
    close: async () => {
      await server.close();
      rmSync(outDir, { recursive: true, force: true });
    },
  };
}

/** A browser with a fresh profile; `errors` collects console errors and uncaught exceptions. */
export interface Browser {
  context: BrowserContext;
  page: Page;
  errors: string[];
  close(): Promise<void>;
}

export async function launch(): Promise<Browser> {
  const { chromium } = await import('playwright-core');
  const profile = mkdtempSync(join(tmpdir(), 'einvit-chromium-'));
  const context = await chromium.launchPersistentContext(profile, {
    executablePath: CHROMIUM,
    headless: true,
    args: CHROMIUM_ARGS,
    viewport: { width: 1100, height: 1400 },
  });
  const page = context.pages()[0] ?? (await context.newPage());
  const errors: string[] = [];
  page.on('console', (m) => {
    if (m.type() === 'error') errors.push(`console.error: ${m.text()}`);
  });
  page.on('pageerror', (e) => errors.push(`uncaught: ${e.message}`));
  mkdirSync(ARTIFACTS, { recursive: true });
  return {
    context,
    page,
    errors,
    close: async () => {
      await context.close();
      rmSync(profile, { recursive: true, force: true });
    },
  };
}
