// `npm start`'s first step: is Electron's binary there? Its package downloads the binary in its
// install script, which an offline install (or ELECTRON_SKIP_BINARY_DOWNLOAD) skips; `electron .`
// then ends in a stack trace. This says what is missing and how to get it, in one message, before
// the native rebuild and the bundle builds spend a minute for nothing.
import fs from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

/** The command that downloads the binary (what the package's install script runs). */
export const FETCH_COMMAND = 'node node_modules/electron/install.js';

/**
 * Why Electron cannot start from `electronDir` (the electron package folder), or null when its binary
 * is in place. Follows the package's own lookup (index.js): path.txt names the binary under dist/,
 * or under ELECTRON_OVERRIDE_DIST_PATH when that is set.
 */
export function electronBinaryProblem(electronDir, env = process.env) {
  if (!electronDir || !fs.existsSync(path.join(electronDir, 'package.json'))) {
    return 'the electron package is not installed (run npm install)';
  }
  const pathFile = path.join(electronDir, 'path.txt');
  const name = fs.existsSync(pathFile) ? fs.readFileSync(pathFile, 'utf8').trim() : null;
  const distDir = env.ELECTRON_OVERRIDE_DIST_PATH || path.join(electronDir, 'dist');
  if (!name && !env.ELECTRON_OVERRIDE_DIST_PATH) return "Electron's binary was never downloaded (node_modules/electron/dist is missing)";
  const binary = path.join(distDir, name || 'electron');
  if (!fs.existsSync(binary)) return `Electron's binary is missing (${path.relative(process.cwd(), binary) || binary} does not exist)`;
  return null;
}

/** The message `npm start` prints when the binary is missing. */
export function missingElectronMessage(problem) {
  return [
    `Quire cannot start the desktop app: ${problem}.`,
    `Fetch it (needs internet, about 100 MB) with:  ${FETCH_COMMAND}`,
    'Or run the same UI in a browser, without Electron:  npm run build:renderer && npx quire serve',
  ].join('\n');
}

function electronPackageDir() {
  try {
    return path.dirname(createRequire(import.meta.url).resolve('electron/package.json'));
  } catch {
    return null;
  }
}

if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const problem = electronBinaryProblem(process.env.QUIRE_ELECTRON_DIR ?? electronPackageDir());
  if (problem) {
    console.error(missingElectronMessage(problem));
    process.exit(1);
  }
}
