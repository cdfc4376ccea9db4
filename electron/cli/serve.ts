// `quire serve`: the app's renderer in a browser, through the token-protected bridge on 127.0.0.1
// (the same typed API the Electron preload exposes). Runs until interrupted.
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { formatByteSize } from '../byte-size.ts';
import { dataDirForDb, defaultDbPath } from '../app-paths.ts';
import { settingsSchema } from '../contract/schemas.ts';
import { startEngine } from '../engine-host/client.ts';
import { resolveModelDir } from '../models/catalog.ts';
import { startBridge } from '../serve/bridge.ts';
import { UsageError } from './args.ts';
import { DB, KV_BUDGET, MODEL, PORT, PROVIDER, RENDERER, type ParsedArgs } from './options.ts';
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
  const bridge = await startBridge({ engine, staticDir, port });
  process.stdout.write(`Quire is serving on ${bridge.url}\n`);
  await new Promise<void>((resolve) => {
    const stop = () => resolve();
    process.once('SIGINT', stop);
    process.once('SIGTERM', stop);
  });
  process.stderr.write('quire serve: stopping (finishing the current transaction)\n');
  await bridge.close();
  await engine.close();
}
