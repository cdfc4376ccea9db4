// Bundles the `quire` command line with esbuild (as build-electron.mjs does for the app): one ES
// module entry, one chunk per subcommand (loaded on demand, as in electron/cli/main.ts), the
// engine worker `quire serve` starts and the parse process the indexer forks. npm packages stay external (native ones must load from disk),
// so the CLI needs no TypeScript loader at run time and tsx stays a development tool.
import fs from 'node:fs';
import { build } from 'esbuild';

// chunk names change with their content: start from an empty folder so old ones do not pile up
fs.rmSync('dist/cli', { recursive: true, force: true });

await build({
  entryPoints: {
    quire: 'electron/cli/main.ts',
    'engine-worker': 'electron/engine-host/worker.ts',
    // the child process files are parsed in (electron/indexing/parse-process.ts finds it next to its chunk)
    'parse-worker': 'electron/indexing/parse-worker.ts',
  },
  outdir: 'dist/cli',
  outExtension: { '.js': '.mjs' },
  // flat: every chunk sits next to quire.mjs, so import.meta.url-relative paths agree across chunks
  chunkNames: '[name]-[hash]',
  bundle: true,
  splitting: true,
  format: 'esm',
  platform: 'node',
  target: 'node22',
  packages: 'external',
  sourcemap: true,
  logLevel: process.argv.includes('--quiet') ? 'warning' : 'info',
  // some dependencies are CommonJS and expect require in scope
  banner: { js: "import { createRequire as __quireRequire } from 'node:module'; const require = __quireRequire(import.meta.url);" },
});
