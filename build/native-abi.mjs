// better-sqlite3 is a native module built for ONE runtime ABI: Node (npm test, quire CLI) or
// Electron (npm start, packaged app). `node build/native-abi.mjs node|electron` makes the build in
// node_modules match the runtime about to start, so `npm start` and `npm test` work in either order.
import { execSync } from 'node:child_process';
import fs from 'node:fs';
import { createRequire } from 'node:module';

const target = process.argv[2];
const marker = new URL('../node_modules/.quire-native-abi', import.meta.url);
const current = fs.existsSync(marker) ? fs.readFileSync(marker, 'utf8').trim() : 'node';
const run = (cmd) => execSync(cmd, { stdio: 'inherit' });

function loadsUnderNode() {
  try {
    const Database = createRequire(import.meta.url)('better-sqlite3');
    new Database(':memory:').close();
    return true;
  } catch (e) {
    if (/NODE_MODULE_VERSION|was compiled against a different Node\.js version/.test(String(e.message))) return false;
    throw e;
  }
}

if (target === 'node') {
  if (!loadsUnderNode()) {
    console.log('better-sqlite3 is built for Electron; rebuilding it for Node…');
    run('npm rebuild better-sqlite3');
  }
  fs.writeFileSync(marker, 'node\n');
} else if (target === 'electron') {
  if (current !== 'electron') {
    console.log('rebuilding native modules for Electron (electron-builder install-app-deps)…');
    run('npx electron-builder install-app-deps');
    fs.writeFileSync(marker, 'electron\n');
  }
} else {
  console.error('usage: node build/native-abi.mjs node|electron');
  process.exit(2);
}
