#!/usr/bin/env node
// Runs the bundled command line (dist/cli, built by `npm install` through the prepare script, or by
// `npm run build:cli`).
import fs from 'node:fs';

const bundle = new URL('../dist/cli/quire.mjs', import.meta.url);
if (!fs.existsSync(bundle)) {
  process.stderr.write('quire: the command line is not built yet: run "npm run build:cli" in the Quire folder\n');
  process.exit(2);
}
await import(bundle.href);
