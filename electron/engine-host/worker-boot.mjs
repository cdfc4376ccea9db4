// Starts the TypeScript engine worker under tsx (development, tests, quire serve). The packaged
// Electron app runs the bundled worker (dist/electron/engine-worker.js) instead.
import { register } from 'tsx/esm/api';

register();
await import('./worker.ts');
