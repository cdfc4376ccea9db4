// Vitest global setup: the CLI tests run `bin/quire.js` as users do, which loads the esbuild bundle
// in dist/cli; rebuild it first (about a second) so the tests never run a stale bundle.
import { execFileSync } from 'node:child_process';

export default function setup(): void {
  execFileSync(process.execPath, ['build/build-cli.mjs', '--quiet'], { stdio: 'inherit' });
}
