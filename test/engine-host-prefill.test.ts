// The Library's prefill, through the engine service: a folder indexed before any model says why it
// has no KV yet (no model); choosing a model starts the background prefill at once, without a
// re-index; a full KV budget leaves passages out and says so, and a larger budget resumes the prefill
// by itself. Parse progress names the current file and an ETA; relative paths are refused.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { kvBlobBytes } from '../db/kv-codec.ts';
import { KvStore, storedKvTotals } from '../db/kv-store.ts';
import type { EventName, EventPayloads, FolderView } from '../electron/contract/types.ts';
import { EngineService } from '../electron/engine-host/service.ts';
import { randomKv } from './fixtures/db-random-kv.ts';
import { makeModelDir, removeDir } from './helpers/models.ts';
import { untilProgress } from './helpers/progress.ts';
import { tinySpec } from './tools/tiny-model-spec.ts';

const FILES = 8;
const MB = 1024 * 1024;
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'quire-host-prefill-'));
const home = path.join(tmp, 'home');
const docs = path.join(tmp, 'docs');
let model: string;
let service: EngineService;
let previousHome: string | undefined;
const progress: FolderView[] = [];
let folderId: number;

/** The first event after `from` (an index into `progress`) that satisfies `done`. */
const after = (from: number, done: (v: FolderView) => boolean) => untilProgress(progress, (v) => progress.indexOf(v) >= from && done(v));

beforeAll(async () => {
  model = await makeModelDir(tinySpec({ seed: 71 }));
  fs.mkdirSync(docs);
  for (let i = 0; i < FILES; i++) {
    fs.writeFileSync(path.join(docs, `note-${i}.md`), `# Note ${i}\n\nThe heron number ${i} waits by the river for fish, every morning in the mist.\n`);
  }
  previousHome = process.env.QUIRE_HOME;
  process.env.QUIRE_HOME = home; // no model chosen, nothing read from or written to the user's home
  fs.mkdirSync(home);
  fs.writeFileSync(path.join(home, 'app-settings.json'), JSON.stringify({ provider: 'cpu', eagerPrefill: true, kvBudgetBytes: 16 * MB }));
  service = await EngineService.start({
    dbPath: path.join(tmp, 'quire.db'),
    dataDir: home,
    host: 'serve',
    emit: <E extends EventName>(name: E, payload: EventPayloads[E]) => {
      if (name === 'folder.progress') progress.push(payload as FolderView);
    },
  });
}, 120_000);
afterAll(async () => {
  await service?.close();
  process.env.QUIRE_HOME = previousHome;
  removeDir(model);
  fs.rmSync(tmp, { recursive: true, force: true });
});

describe('library prefill through the engine service', () => {
  it('refuses relative paths, and reads ~ as the home folder', async () => {
    await expect(service.handle('folders.add', { path: 'notes' })).rejects.toThrow(/^type a full path: "notes" is relative/);
    await expect(service.handle('models.useFolder', { path: './model' })).rejects.toThrow(/^type a full path/);
    await expect(service.handle('folders.add', { path: '~/quire-no-such-folder-7c1' })).rejects.toThrow(
      `no such folder: ${path.join(os.homedir(), 'quire-no-such-folder-7c1')}`,
    );
    expect(await service.handle('folders.list', {})).toEqual([]);
  });

  it('without a model: parse progress names the file and an ETA; prefill says it waits for a model', async () => {
    folderId = (await service.handle('folders.add', { path: docs })).id;
    const done = await untilProgress(progress, (v) => v.state === 'done');
    const parsing = progress.filter((v) => v.state === 'parsing' && v.currentFile !== null);
    expect(parsing.length).toBeGreaterThan(0);
    expect(parsing.every((v) => v.currentFile!.startsWith(docs + path.sep))).toBe(true);
    expect(progress.some((v) => v.state === 'parsing' && typeof v.parse.etaMs === 'number')).toBe(true);
    expect(done.currentFile).toBeNull();
    expect(done.passages).toBe(FILES);
    expect(done.prefillLimit).toEqual({ reason: 'no-model', passagesLeft: FILES, budgetBytes: 16 * MB });
  });

  it('choosing a model starts the prefill at once, without a re-index', async () => {
    const from = progress.length;
    expect((await service.handle('models.useFolder', { path: model })).ready).toBe(true);
    const done = await after(from, (v) => v.state === 'done');
    expect(progress.slice(from).some((v) => v.state === 'prefilling')).toBe(true);
    expect(progress.slice(from).some((v) => v.state === 'parsing' || v.state === 'scanning')).toBe(false); // no re-index
    expect(done.prefill).toEqual({ done: FILES, total: FILES });
    expect(done.prefillLimit).toBeNull();
    // the ETA while it ran is the background prefill's (kv-service.ts), once it has a rate
    expect(progress.slice(from).some((v) => v.state === 'prefilling' && typeof v.prefill.etaMs === 'number')).toBe(true);
    expect((await service.handle('kv.stats', {})).entries).toBe(FILES);
  });

  it('a full KV budget leaves passages out and says so; a larger budget resumes by itself', async () => {
    // other KV fills the budget but for room for about two of the folder's passage blocks
    const ctx = (await service.models.ready())!;
    service.db.prepare('DELETE FROM kv.kv_blocks').run();
    const shape = ctx.engine.runner.kvShape;
    // a note's passage and its title line, about, in the codec prefill stores with
    const blockBytes = kvBlobBytes(ctx.store.defaultCodec, { ...shape, tokens: 30 + 8 });
    const bytesPerToken = 2 * 2 * shape.layers * shape.kvHeads * shape.headDim; // the filler's, float16
    const filler = Math.floor((16 * MB - 2.5 * blockBytes) / bytesPerToken);
    new KvStore(service.db, { budgetBytes: 16 * MB, codec: 'float16' }).put(
      { modelFingerprint: 'other-model', tokenHash: 'filler' },
      randomKv({ ...shape, dtype: 'float16', tokens: filler }, 1),
    );
    expect(storedKvTotals(service.db).entries).toBe(1);

    let from = progress.length;
    await service.handle('folders.reindex', { folderId });
    const limited = await after(from, (v) => v.state === 'done');
    expect(limited.prefillLimit).toMatchObject({ reason: 'kv-budget', budgetBytes: 16 * MB });
    expect(limited.prefillLimit!.passagesLeft).toBeGreaterThan(0);
    expect(limited.prefill.total + limited.prefillLimit!.passagesLeft).toBe(FILES);
    // one account: the Library's limit is kv.stats' coverage and its reason
    const [c] = (await service.handle('kv.stats', { folderId })).folders;
    expect(c).toMatchObject({ limitedBy: 'budget', passages: FILES });
    expect(c.passages - c.stored).toBe(limited.prefillLimit!.passagesLeft);

    from = progress.length;
    await service.handle('settings.set', { kvBudgetBytes: 64 * MB });
    const resumed = await after(from, (v) => v.state === 'done');
    expect(resumed.prefillLimit).toBeNull();
    expect(resumed.prefill).toEqual({ done: FILES, total: FILES });
    expect(ctx.store.budgetBytes).toBe(64 * MB); // the loaded store took the new budget
  });
});
