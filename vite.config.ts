// The renderer's build: Vite + React from renderer/ into dist/renderer (loaded by Electron from
// disk and served by `quire serve`). Relative asset paths so file:// loading works.
import react from '@vitejs/plugin-react';
import { defineConfig } from 'vite';

export default defineConfig({
  root: 'renderer',
  base: './',
  plugins: [react()],
  build: { outDir: '../dist/renderer', emptyOutDir: true, sourcemap: false },
});
