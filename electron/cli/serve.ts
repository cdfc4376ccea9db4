// `quire serve`: the app's renderer in a browser, through the token-protected bridge on 127.0.0.1
// (the same typed API the Electron preload exposes), and the OpenAI-compatible API under /v1 on the
// same port (its key: --api-key, else QUIRE_API_KEY, else one generated and printed). Runs until
// interrupted.
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { formatByteSize } from '../byte-size.ts';
import { dataDirForDb, defaultDbPath } from '../app-paths.ts';
import { settingsSchema } from '../contract/schemas.ts';
import { startEngine } from '../engine-host/client.ts';
import { resolveModelDir } from '../models/catalog.ts';
import { startBridge } from '../serve/bridge.ts';
import { createOpenAiApi } from '../serve/openai-api.ts';
import { UsageError } from './args.ts';
import { API_KEY, apiKeyText, DB, KV_BUDGET, MODEL, PORT, PROVIDER, RENDERER, type ParsedArgs } from './options.ts';
import { QUIRE_VERSION } from './version.ts';

const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');

/** The engine worker bundled next to this file by build/build-cli.mjs; undefined when run from source (tsx). */
function bundledWorker(): URL | undefined {
  const url = new URL('./engine-worker.mjs', import.meta.url);
  return fs.existsSync(fileURLToPath(url)) ? url : undefined;
}

export async function serveCommand(args: ParsedArgs): Promise<void> {
  const port = args.get(PORT);
  const dbPath = path.resolve(args.get(DB) ?? defaultDbPath());
  const dataDir = dataDirForDb(args.get(DB));
  const kvBudgetBytes = args.get(KV_BUDGET);
  // the engine keeps it as a setting the Settings view shows and saves: it must be one the app takes
  const budgetRange = settingsSchema.shape.kvBudgetBytes;
  if (kvBudgetBytes !== undefined && !budgetRange.safeParse(kvBudgetBytes).success) {
    const [min, max] = [budgetRange.minValue ?? 0, budgetRange.maxValue ?? Number.MAX_SAFE_INTEGER].map(formatByteSize);
    throw new UsageError(`--kv-budget: the app keeps a budget from ${min} to ${max} (got ${formatByteSize(kvBudgetBytes)})`);
  }
  const givenKey = args.get(API_KEY) ?? envApiKey();
  const apiKey = givenKey ?? `quire-${randomBytes(24).toString('hex')}`;
  const model = args.get(MODEL);
  const staticDir = path.resolve(args.get(RENDERER) ?? path.join(repoRoot, 'dist', 'renderer'));
  if (!fs.existsSync(path.join(staticDir, 'index.html'))) {
    process.stderr.write(`quire serve: no built renderer in ${staticDir}; run "npm run build:renderer" first\n`);
  }
  fs.mkdirSync(dataDir, { recursive: true });
  const engine = await startEngine({
    dbPath,
    dataDir,
    modelDir: model === undefined ? undefined : resolveModelDir(model),
    // unset: the engine uses the app's saved settings for this data directory, as the app does
    provider: args.get(PROVIDER),
    kvBudgetBytes,
    host: 'serve',
    version: QUIRE_VERSION,
    workerUrl: bundledWorker(),
  });
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

/** QUIRE_API_KEY, checked as --api-key is (a usage error before anything starts); undefined when unset. */
function envApiKey(): string | undefined {
  const key = process.env.QUIRE_API_KEY;
  if (key === undefined) return undefined;
  try {
    return apiKeyText(key);
  } catch (e) {
    throw new UsageError(`QUIRE_API_KEY: ${(e as Error).message}`);
  }
}
