// The folder watcher: an edit triggers one (debounced) re-index, after which search sees the change.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { searchPassages } from '../db/search.ts';
import { indexFolder } from '../electron/indexing/indexer.ts';
import { estimateTokens } from '../electron/indexing/token-estimate.ts';
import { FolderWatcher } from '../electron/indexing/watch.ts';
import { tempDb, type TempDb } from './fixtures/db-temp.ts';

let root: string;
let store: TempDb;
let watcher: FolderWatcher | undefined;

async function waitFor(check: () => boolean, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`condition not met within ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 25));
  }
}

beforeAll(async () => {
  root = mkdtempSync(path.join(os.tmpdir(), 'quire-watch-'));
  writeFileSync(path.join(root, 'a.md'), '# A\n\nThe walrus sleeps.\n');
  store = tempDb();
  await indexFolder(store.db, root, { countTokens: estimateTokens });
});

afterAll(async () => {
  await watcher?.close();
  store?.cleanup();
  if (root) rmSync(root, { recursive: true, force: true });
});

describe('FolderWatcher', () => {
  it('re-indexes a folder once after a burst of edits', async () => {
    const runs: string[] = [];
    watcher = await FolderWatcher.start([root], {
      debounceMs: 150,
      reindex: async (r) => {
        runs.push(r);
        await indexFolder(store.db, r, { countTokens: estimateTokens });
      },
    });
    expect(searchPassages(store.db, 'narwhal')).toEqual([]);
    writeFileSync(path.join(root, 'a.md'), '# A\n\nThe narwhal sings.\n');
    writeFileSync(path.join(root, 'b.txt'), 'A second narwhal file.\n');
    await waitFor(() => runs.length > 0, 10_000);
    await watcher.idle();
    expect(searchPassages(store.db, 'narwhal').map((h) => path.basename(h.path)).sort()).toEqual(['a.md', 'b.txt']);
    expect(searchPassages(store.db, 'walrus')).toEqual([]);
    expect(runs.length).toBeLessThanOrEqual(2); // one burst, debounced (a slow fs event may split it)
    expect(runs[0]).toBe(root);
  });
});
