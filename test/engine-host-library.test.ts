// The engine service's library without a model: progress events carry live parse progress and right
// counts without counting the folder's rows per file, and passages are cut with the one token
// estimate (token-estimate.ts), so a CJK passage is not 4x too long; an engine that replaces a dead
// worker re-indexes every folder.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { addFolder, folderCounts, listFolders } from '../db/folders.ts';
import { openDatabase } from '../db/open.ts';
import { listPassages } from '../db/passages.ts';
import { listDocuments } from '../db/documents.ts';
import type { EventName, EventPayloads, FolderView } from '../electron/contract/types.ts';
import { EngineService } from '../electron/engine-host/service.ts';
import { estimateTokens } from '../electron/indexing/token-estimate.ts';
import { untilProgress } from './helpers/progress.ts';

const FILES = 40;
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'quire-host-library-'));
const home = path.join(tmp, 'home');
let service: EngineService;
const progress: FolderView[] = [];
/** Statements that count a folder's documents and passages (db/folders.ts folderCounts). */
let countStatements = 0;
let previousHome: string | undefined;

beforeAll(async () => {
  previousHome = process.env.QUIRE_HOME;
  process.env.QUIRE_HOME = home; // no model chosen, nothing read from or written to the user's home
  service = await EngineService.start({
    dbPath: path.join(tmp, 'quire.db'),
    dataDir: home,
    host: 'serve',
    // never re-read the counts on time alone: only a change of state may count the rows
    countsRefreshMs: Number.POSITIVE_INFINITY,
    emit: <E extends EventName>(name: E, payload: EventPayloads[E]) => {
      if (name === 'folder.progress') progress.push(payload as FolderView);
    },
  });
  const prepare = service.db.prepare.bind(service.db);
  service.db.prepare = ((sql: string) => {
    if (/COUNT\(\*\) AS files/.test(sql)) countStatements++;
    return prepare(sql);
  }) as typeof service.db.prepare;
});
afterAll(async () => {
  await service?.close();
  process.env.QUIRE_HOME = previousHome;
  fs.rmSync(tmp, { recursive: true, force: true });
});

describe('engine service library', () => {
  it('reports every file of a run without a COUNT per file, and right counts at the end', async () => {
    const docs = path.join(tmp, 'many');
    fs.mkdirSync(docs);
    for (let i = 0; i < FILES; i++) fs.writeFileSync(path.join(docs, `note-${i}.md`), `# Note ${i}\n\nThe heron number ${i} waits by the river.\n`);
    await service.handle('folders.add', { path: docs });
    const done = await untilProgress(progress, (v) => v.state === 'done');

    const parsing = progress.filter((v) => v.state === 'parsing');
    // live parse progress: an event for every file handled
    const handled = new Set(parsing.map((v) => v.parse.done));
    for (let i = 1; i <= FILES; i++) expect(handled.has(i)).toBe(true);
    // counted once per change of state (add, queued, scanning, parsing, done), never per file
    expect(countStatements).toBeLessThanOrEqual(6);
    expect(countStatements).toBeLessThan(parsing.length / 4);

    const folderId = listFolders(service.db).find((f) => f.path === docs)!.id;
    expect(done).toMatchObject({ files: FILES, indexed: FILES, failed: 0, skipped: 0, parse: { done: FILES, total: FILES } });
    expect(done).toMatchObject(folderCounts(service.db, folderId));
    expect(done.passages).toBe(FILES);
    // the list request reads them afresh and agrees
    const listed = (await service.handle('folders.list', {})).find((f) => f.id === folderId)!;
    expect(listed).toMatchObject({ files: FILES, indexed: FILES, passages: FILES, state: 'done' });
  });

  it('cuts CJK text with the token estimate (about a token a character), not length / 4', async () => {
    await service.handle('settings.set', { passageTokens: 32 });
    const docs = path.join(tmp, 'cjk');
    fs.mkdirSync(docs);
    const sentence = '灯塔看守人每天晚上都会写下关于风暴、船只和大海颜色的文字。';
    fs.writeFileSync(path.join(docs, 'sea.txt'), sentence.repeat(12));
    progress.length = 0;
    await service.handle('folders.add', { path: docs });
    await untilProgress(progress, (v) => v.state === 'done' && v.path === docs);
    const [doc] = listDocuments(service.db).filter((d) => d.path.startsWith(docs));
    const passages = listPassages(service.db, doc.id);
    expect(passages.length).toBeGreaterThan(1);
    for (const p of passages) {
      // ~32 tokens a passage at a token a character (a sentence boundary may carry it a little over);
      // length / 4 would have allowed ~128 characters
      expect(p.text.length).toBeLessThanOrEqual(64);
      expect(p.tokenCount).toBe(estimateTokens(p.text));
    }
  });

  it('re-indexes every folder when it replaces a worker that died (reindexOnStart), and only then', async () => {
    const docs = path.join(tmp, 'cut-short');
    fs.mkdirSync(docs);
    fs.writeFileSync(path.join(docs, 'a.md'), '# Kestrel\n\nThe kestrel hovers over the verge.\n');
    fs.writeFileSync(path.join(docs, 'b.md'), '# Plover\n\nThe plover runs along the shore.\n');
    // a library whose folder's run never happened (as when the worker died before it)
    const dbPath = path.join(tmp, 'restarted.db');
    const db = openDatabase(dbPath);
    const folderId = addFolder(db, docs).id;
    db.close();
    const startOn = async (reindexOnStart: boolean, events: FolderView[]) =>
      await EngineService.start({
        dbPath,
        dataDir: home,
        host: 'serve',
        reindexOnStart,
        emit: <E extends EventName>(name: E, payload: EventPayloads[E]) => {
          if (name === 'folder.progress') events.push(payload as FolderView);
        },
      });

    const plain = await startOn(false, []);
    try {
      expect((await plain.handle('folders.list', {}))[0]).toMatchObject({ id: folderId, state: 'done', files: 0 });
    } finally {
      await plain.close();
    }
    const events: FolderView[] = [];
    const restarted = await startOn(true, events);
    try {
      const done = await untilProgress(events, (v) => v.id === folderId && v.state === 'done');
      expect(done).toMatchObject({ files: 2, indexed: 2, failed: 0 });
    } finally {
      await restarted.close();
    }
  });
});
