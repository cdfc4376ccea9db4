// Hostile files in a running `quire serve` (the real engine worker, its parse process and the HTTP
// bridge): while a flat 20,000-page PDF is being parsed, searches over HTTP still answer at once
// (the parse runs in another process, not on the engine's thread); the PDF is indexed up to its
// page limit, a DOCX bomb fails with its reason, and what was indexed before is all still found.
import fs from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { EventName, EventPayloads, FileView, FolderView, SearchHitView } from '../electron/contract/types.ts';
import { startEngine, type EngineClient } from '../electron/engine-host/client.ts';
import { startBridge, type Bridge } from '../electron/serve/bridge.ts';
import { docxBomb, flatPageTreePdf } from './tools/hostile-files.ts';

let tmp: string;
let library: string;
let engine: EngineClient;
let bridge: Bridge;
const progress: FolderView[] = [];

beforeAll(async () => {
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'quire-serve-hostile-'));
  library = path.join(tmp, 'library');
  fs.mkdirSync(library);
  const staticDir = path.join(tmp, 'static');
  fs.mkdirSync(staticDir);
  fs.writeFileSync(path.join(staticDir, 'index.html'), '<!doctype html><title>Quire</title>');
  engine = await startEngine({ dbPath: path.join(tmp, 'quire.db'), dataDir: path.join(tmp, 'home'), host: 'serve' });
  engine.onEvent(<E extends EventName>(name: E, payload: EventPayloads[E]) => {
    if (name === 'folder.progress') progress.push(payload as FolderView);
  });
  bridge = await startBridge({ engine, staticDir });
});
afterAll(async () => {
  await bridge?.close();
  await engine?.close();
  fs.rmSync(tmp, { recursive: true, force: true });
});

/** A request over HTTP, as the browser makes it. */
function api<T>(name: string, body: unknown): Promise<T> {
  return new Promise((resolve, reject) => {
    const req = http.request(
      {
        host: '127.0.0.1',
        port: bridge.port,
        path: `/api/${name}`,
        method: 'POST',
        headers: { Authorization: `Bearer ${bridge.token}`, 'Content-Type': 'application/json' },
      },
      (res) => {
        let data = '';
        res.on('data', (c) => (data += c));
        res.on('end', () => {
          const parsed = JSON.parse(data) as { ok: boolean; result: T; error?: { message: string } };
          if (parsed.ok) resolve(parsed.result);
          else reject(new Error(parsed.error?.message));
        });
      },
    );
    req.on('error', reject);
    req.end(JSON.stringify(body));
  });
}

/** Resolves with the first progress event (from now on) that `matches`. */
async function progressUntil(matches: (v: FolderView) => boolean, from = progress.length): Promise<FolderView> {
  for (;;) {
    const hit = progress.slice(from).find(matches);
    if (hit) return hit;
    await new Promise((r) => setTimeout(r, 20));
  }
}

const searchFor = async (word: string) => (await api<SearchHitView[]>('search', { query: word })).map((h) => path.basename(h.path));

describe('hostile files in quire serve', () => {
  it('answers searches while a 20,000-page PDF parses; the PDF is cut at its page limit, the bomb fails, nothing is lost', async () => {
    fs.writeFileSync(path.join(library, 'a-garden.md'), '# Garden\n\nThe heliotrope leans toward the afternoon sun.\n');
    const folder = await api<FolderView>('folders.add', { path: library });
    await progressUntil((v) => v.id === folder.id && v.state === 'done' && v.indexed === 1, 0);
    expect(await searchFor('heliotrope')).toEqual(['a-garden.md']);

    // built first, then written together: the folder watcher sees one change and starts one run
    const flat = flatPageTreePdf(20_000);
    const bomb = await docxBomb(200 * 1024 * 1024);
    const from = progress.length;
    fs.writeFileSync(path.join(library, 'b-flat.pdf'), flat);
    fs.writeFileSync(path.join(library, 'c-bomb.docx'), bomb);
    fs.writeFileSync(path.join(library, 'd-late.md'), '# Late\n\nThe marigold opens at noon.\n');
    await api('folders.reindex', { folderId: folder.id });
    // a-garden.md is done (unchanged), so the PDF is the file being parsed now
    await progressUntil((v) => v.id === folder.id && v.state === 'parsing' && v.parse.total === 4 && v.parse.done === 1, from);
    for (let i = 0; i < 3; i++) {
      expect(await searchFor('heliotrope')).toEqual(['a-garden.md']);
      // answered before the PDF's parse finished: the indexer has not moved past it
      expect(progress.at(-1)).toMatchObject({ state: 'parsing', parse: { done: 1, total: 4 } });
    }

    await progressUntil((v) => v.id === folder.id && v.state === 'done', from);
    const files = new Map((await api<FileView[]>('folders.files', { folderId: folder.id })).map((f) => [path.basename(f.path), f]));
    expect(files.get('b-flat.pdf')).toMatchObject({ status: 'indexed', error: 'only the first 500 of 20000 pages indexed (page limit)' });
    expect(files.get('c-bomb.docx')).toMatchObject({
      status: 'failed',
      error: 'DOCX is a decompression bomb: word/document.xml inflates 656.4 KB to 200.0 MB (312:1, limit 100:1)',
    });
    expect(files.get('d-late.md')?.status).toBe('indexed');
    expect(await searchFor('heliotrope')).toEqual(['a-garden.md']);
    expect(await searchFor('marigold')).toEqual(['d-late.md']);
    expect(await searchFor('"Page 500 of the flat tree"')).toEqual(['b-flat.pdf']);
  });
});
