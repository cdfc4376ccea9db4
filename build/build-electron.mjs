// Bundles the Electron side with esbuild (installed with Vite): the main process and the engine
// worker as ES modules (npm packages stay external: electron-builder ships node_modules, and the
// native ones, better-sqlite3 and onnxruntime-node, must load from disk), and the preload as one
// CommonJS file with everything but `electron` inlined (a sandboxed preload cannot require packages).
import { build } from 'esbuild';

const common = { bundle: true, platform: 'node', target: 'node22', sourcemap: true, logLevel: 'info' };

await build({
  ...common,
  entryPoints: {
    main: 'electron/main.ts',
    'engine-worker': 'electron/engine-host/worker.ts',
    // the child process files are parsed in, forked by the engine worker (Electron runs it as Node)
    'parse-worker': 'electron/indexing/parse-worker.ts',
  },
  outdir: 'dist/electron',
  outExtension: { '.js': '.mjs' },
  format: 'esm',
  packages: 'external',
  // some dependencies are CommonJS and expect require in scope
  banner: { js: "import { createRequire as __quireRequire } from 'node:module'; const require = __quireRequire(import.meta.url);" },
});

await build({
  ...common,
  entryPoints: { preload: 'electron/preload.ts' },
  outdir: 'dist/electron',
  outExtension: { '.js': '.cjs' },
  format: 'cjs',
  external: ['electron'],
});
