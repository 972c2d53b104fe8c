// Vite config of the demo page (`npm run web`, `npm run web:build` -> web/dist/).
import { fileURLToPath } from 'node:url';
import { defineConfig } from 'vite';

const here = (p: string): string => fileURLToPath(new URL(p, import.meta.url));

export default defineConfig({
  root: here('.'),
  // Relative asset URLs, so the static folder can be hosted under any path.
  base: './',
  resolve: {
    alias: [
      // The library's file-system helpers (ViT.fromPretrained, save, the safetensors file reader) are
      // never called by the page, which reads files from pickers; these stubs keep node: modules out
      // of the bundle and throw a clear error if one ever is called.
      { find: /^node:(fs|fs\/promises|path)$/, replacement: here('src/node-stub.ts') },
    ],
  },
  build: {
    outDir: here('dist'),
    emptyOutDir: true,
    target: 'es2022',
    chunkSizeWarningLimit: 4096,
  },
  // onnxruntime-web finds its wasm through import.meta.url; pre-bundling would move the module away
  // from it. The page passes the (fingerprinted) wasm URL explicitly anyway (src/ort.ts).
  optimizeDeps: { exclude: ['onnxruntime-web'] },
  server: { host: '127.0.0.1', port: 5173, strictPort: false },
  preview: { host: '127.0.0.1' },
});
