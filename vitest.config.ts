import { fileURLToPath } from 'node:url';
import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    testTimeout: 120_000,
    hookTimeout: 120_000,
    pool: 'forks',
    poolOptions: {
      forks: {
        // Silences tfjs' console banners in tests and in the worker threads they start.
        execArgv: ['--require', fileURLToPath(new URL('./test/setup/quiet-tfjs.cjs', import.meta.url))],
      },
    },
  },
});
