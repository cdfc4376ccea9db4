// Starts the TypeScript parse worker under tsx (development and tests). The CLI and the app run
// the bundled parse-worker.mjs that build/build-cli.mjs and build/build-electron.mjs write.
import { register } from 'tsx/esm/api';

register();
await import('./parse-worker.ts');
