// `quire serve`: the app's renderer in a browser, through the token-protected bridge on 127.0.0.1
// (the same typed API the Electron preload exposes), and the OpenAI-compatible API under /v1 on the
// same port (its key: --api-key, else QUIRE_API_KEY, else one generated and printed). Runs until
// interrupted.
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { defaultDbPath, quireHome } from '../app-paths.ts';
import { apiKeySchema } from '../contract/schemas.ts';
import { startEngine } from '../engine-host/client.ts';
import { startBridge } from '../serve/bridge.ts';
import { createOpenAiApi } from '../serve/openai-api.ts';
import { numberOption, UsageError } from './args.ts';

const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');

/** The engine worker bundled next to this file by build/build-cli.mjs; undefined when run from source (tsx). */
function bundledWorker(): URL | undefined {
  const url = new URL('./engine-worker.mjs', import.meta.url);
  return fs.existsSync(fileURLToPath(url)) ? url : undefined;
}

export async function serveCommand(argv: string[]): Promise<void> {
  const { values } = parseArgs({
    args: argv,
    options: {
      port: { type: 'string' },
      db: { type: 'string' },
      model: { type: 'string' },
      renderer: { type: 'string' },
      'api-key': { type: 'string' },
    },
    strict: true,
  });
  const port = numberOption(values.port, 'port', (n) => Number.isInteger(n) && n >= 0 && n < 65536) ?? 0;
  const givenKey = values['api-key'] ?? process.env.QUIRE_API_KEY;
  if (givenKey !== undefined && !apiKeySchema.safeParse(givenKey).success) {
    throw new UsageError('--api-key (or QUIRE_API_KEY): 16 to 256 printable ASCII characters without spaces');
  }
  const apiKey = givenKey ?? `quire-${randomBytes(24).toString('hex')}`;
  const dbPath = path.resolve(values.db ?? defaultDbPath());
  const dataDir = values.db ? path.dirname(dbPath) : quireHome();
  const staticDir = path.resolve(values.renderer ?? path.join(repoRoot, 'dist', 'renderer'));
  if (!fs.existsSync(path.join(staticDir, 'index.html'))) {
    process.stderr.write(`quire serve: no built renderer in ${staticDir}; run "npm run build:renderer" first\n`);
  }
  fs.mkdirSync(dataDir, { recursive: true });
  const engine = await startEngine({ dbPath, dataDir, modelDir: values.model, host: 'serve', workerUrl: bundledWorker() });
  const bridge = await startBridge({ engine, staticDir, port, api: createOpenAiApi({ engine, apiKey }) });
  process.stdout.write(`Quire is serving on ${bridge.url}\n`);
  // a key the user chose is not echoed (terminal logs); a generated one must be shown to be usable
  const key = givenKey === undefined ? apiKey : '(as given with --api-key / QUIRE_API_KEY)';
  process.stdout.write(`OpenAI-compatible API: http://127.0.0.1:${bridge.port}/v1 key: ${key}\n`);
  await new Promise<void>((resolve) => {
    const stop = () => resolve();
    process.once('SIGINT', stop);
    process.once('SIGTERM', stop);
  });
  process.stderr.write('quire serve: stopping (finishing the current transaction)\n');
  await bridge.close();
  await engine.close();
}
