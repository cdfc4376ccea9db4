// Quire's version, from package.json. A JSON import: esbuild copies the object into the bundle at
// build time (dist/cli is rebuilt by `npm install`, `npm run build:cli` and before the tests), and
// run from source (tsx, vitest) it is read from the file, so both print what package.json says.
import packageJson from '../../package.json' with { type: 'json' };

export const QUIRE_VERSION: string = packageJson.version;
