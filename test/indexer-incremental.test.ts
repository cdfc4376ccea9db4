// Re-indexing after edits, deletions and renames: exactly the changed passages change, passage KV
// (content-addressed by token hash) of unchanged passages is kept and not recomputed, deleted files
// leave nothing behind, renamed files keep their record, and the result equals a fresh index.
import { mkdirSync, mkdtempSync, readFileSync, renameSync, rmSync, unlinkSync, utimesSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { getDocumentByPath, listDocuments } from '../db/documents.ts';
import { tokenHash } from '../db/hash.ts';
import { KvStore, type KvKey } from '../db/kv-store.ts';
import type { Db } from '../db/open.ts';
import { listPassages } from '../db/passages.ts';
import { searchPassages } from '../db/search.ts';
import { indexFolder, type AfterDocument, type IndexSummary } from '../electron/indexing/indexer.ts';
import { estimateTokens } from '../electron/indexing/token-estimate.ts';
import { blockText } from '../electron/indexing/passages.ts';
import { Engine } from '../native-models/engine.ts';
import { modelFingerprint } from '../native-models/model-folder.ts';
import { tinySpec } from './tools/tiny-model-spec.ts';
import { tempDb, type TempDb } from './fixtures/db-temp.ts';
import { makeModelDir, removeDir } from './helpers/models.ts';

const PASSAGE_TOKENS = 32;
const para = (topic: string) =>
  `The ${topic} chapter explains how the ${topic} works, step by step, with one example.`;

let root: string;
let modelDir: string;
let engine: Engine;
let fingerprint: string;
let store: TempDb;
let kv: KvStore;
let prefilled: string[] = [];

const keyOf = (title: string | null, text: string): KvKey => ({
  modelFingerprint: fingerprint,
  tokenHash: tokenHash(engine.tokenizer.encode(blockText(title ?? '', text))),
});

/** The KV prefill hook, as the brief describes it: isolated blocks, keyed by token hash. */
const prefill: AfterDocument = async (_doc, passages) => {
  let computed = 0;
  for (const p of passages) {
    const ids = engine.tokenizer.encode(blockText(p.title ?? '', p.text));
    const key = { modelFingerprint: fingerprint, tokenHash: tokenHash(ids) };
    if (kv.info(key)) continue;
    kv.put(key, await engine.prefill(ids));
    prefilled.push(p.text);
    computed++;
  }
  return computed;
};

const run = (db: Db) =>
  indexFolder(db, root, { countTokens: estimateTokens, passageTokens: PASSAGE_TOKENS, afterDocument: prefill });
const file = (name: string) => path.join(root, name);
const write = (name: string, text: string) => {
  mkdirSync(path.dirname(file(name)), { recursive: true });
  writeFileSync(file(name), text);
};

/** Paths, hashes, statuses and passages (title, text, page): what must match between two indexes. */
function snapshot(db: Db) {
  return listDocuments(db).map((d) => ({
    path: d.path,
    hash: d.contentHash,
    status: d.status,
    passages: listPassages(db, d.id).map((p) => [p.title, p.text, p.page, p.charStart, p.charEnd]),
  }));
}

beforeAll(async () => {
  modelDir = await makeModelDir(tinySpec());
  engine = await Engine.load(modelDir);
  fingerprint = await modelFingerprint(engine.model);
  root = mkdtempSync(path.join(os.tmpdir(), 'quire-incremental-'));
  store = tempDb();
  kv = new KvStore(store.db);
  write('guide.md', `# Guide\n\n${['engine', 'gearbox', 'brake', 'clutch'].map(para).join('\n\n')}\n`);
  write('touched.md', `# Touched\n\n${para('window')}\n`);
  write('doomed.md', `# Doomed\n\n${para('pelican')}\n`);
  write('moving.md', `# Moving Day\n\n${para('boxes')}\n\n${para('van')}\n`);
  write('renamed.txt', `${para('teapot')}\n`);
});

afterAll(async () => {
  await engine?.release();
  store?.cleanup();
  if (root) rmSync(root, { recursive: true, force: true });
  removeDir(modelDir);
});

describe('incremental re-indexing', () => {
  let first: IndexSummary;
  let second: IndexSummary;
  const before = new Map<string, { id: number; passages: { id: number; title: string | null; text: string }[] }>();

  it('indexes and prefills every passage once', async () => {
    first = await run(store.db);
    expect(first).toMatchObject({ files: 5, indexed: 5, removed: 0, renamed: 0 });
    for (const d of listDocuments(store.db)) {
      before.set(path.basename(d.path), { id: d.id, passages: listPassages(store.db, d.id) });
      expect(d.status).toBe('indexed');
    }
    expect(before.get('guide.md')!.passages.length).toBe(4); // one passage per paragraph
    expect(first.kvBlocks).toBe(first.passages);
    expect(kv.stats().entries).toBe(first.passages);
  });

  it('after edit, touch, delete and renames, changes exactly the changed passages', async () => {
    write('guide.md', readFileSync(file('guide.md'), 'utf8').replace('the gearbox works', 'the gearbox shifts'));
    const future = new Date(Date.now() + 60_000);
    utimesSync(file('touched.md'), future, future); // new mtime, same bytes
    unlinkSync(file('doomed.md'));
    mkdirSync(file('sub'));
    renameSync(file('moving.md'), file('sub/moved.md')); // H1 title: the same passages
    renameSync(file('renamed.txt'), file('teapot-notes.txt')); // title is the file name: passages change
    prefilled = [];
    second = await run(store.db);
    expect(second).toMatchObject({ files: 4, removed: 1, renamed: 2, unchanged: 1, indexed: 3 });

    // guide.md: same record, three passages untouched (same text), one replaced.
    const guide = getDocumentByPath(store.db, file('guide.md'))!;
    expect(guide.id).toBe(before.get('guide.md')!.id);
    const oldTexts = before.get('guide.md')!.passages.map((p) => p.text);
    const newTexts = listPassages(store.db, guide.id).map((p) => p.text);
    expect(newTexts.filter((t) => !oldTexts.includes(t))).toEqual([para('gearbox').replace('works', 'shifts')]);
    expect(oldTexts.filter((t) => !newTexts.includes(t))).toEqual([para('gearbox')]);

    // touched.md: nothing rewritten, passage ids kept.
    const touched = getDocumentByPath(store.db, file('touched.md'))!;
    expect(listPassages(store.db, touched.id).map((p) => p.id)).toEqual(before.get('touched.md')!.passages.map((p) => p.id));

    // moved: the record and its passages (ids included) moved with the file.
    const moved = getDocumentByPath(store.db, file('sub/moved.md'))!;
    expect(moved.id).toBe(before.get('moving.md')!.id);
    expect(listPassages(store.db, moved.id).map((p) => p.id)).toEqual(before.get('moving.md')!.passages.map((p) => p.id));
    expect(getDocumentByPath(store.db, file('moving.md'))).toBeUndefined();

    // renamed .txt: same record, its passage title follows the new file name.
    const teapot = getDocumentByPath(store.db, file('teapot-notes.txt'))!;
    expect(teapot.id).toBe(before.get('renamed.txt')!.id);
    expect(listPassages(store.db, teapot.id).map((p) => p.title)).toEqual(['teapot-notes.txt']);

    // doomed.md: gone with its passages.
    expect(getDocumentByPath(store.db, file('doomed.md'))).toBeUndefined();
    expect(searchPassages(store.db, 'pelican')).toEqual([]);
    expect(store.db.prepare('SELECT COUNT(*) FROM passages WHERE document_id = ?').pluck().get(before.get('doomed.md')!.id)).toBe(0);
  });

  it('keeps unchanged KV entries and computes only the new blocks', () => {
    // New KV only for the edited passage and the renamed .txt's retitled passage.
    expect(prefilled.sort()).toEqual([para('gearbox').replace('works', 'shifts'), para('teapot')].sort());
    expect(second.kvBlocks).toBe(2);
    for (const d of listDocuments(store.db)) {
      for (const p of listPassages(store.db, d.id)) expect(kv.get(keyOf(p.title, p.text)).status, p.text).toBe('hit');
    }
    // Every unchanged passage still resolves to the very entry stored by the first run.
    for (const [name, doc] of before) {
      if (name === 'doomed.md' || name === 'renamed.txt') continue;
      for (const p of doc.passages) {
        if (p.text === para('gearbox')) continue;
        expect(kv.info(keyOf(p.title, p.text))?.createdAt, p.text).toBeDefined();
      }
    }
    expect(kv.stats().entries).toBe(first.passages + 2);
  });

  it('ends in the same state as indexing the final tree from scratch', async () => {
    const fresh = tempDb();
    try {
      const scratch = await indexFolder(fresh.db, root, { countTokens: estimateTokens, passageTokens: PASSAGE_TOKENS });
      expect(scratch.passages).toBe(second.passages);
      expect(snapshot(store.db)).toEqual(snapshot(fresh.db));
    } finally {
      fresh.cleanup();
    }
  });

  it('a third run finds nothing to do', async () => {
    prefilled = [];
    const third = await run(store.db);
    expect(third).toMatchObject({ indexed: 0, unchanged: 4, removed: 0, renamed: 0, kvBlocks: 0, passagesWritten: 0 });
  });
});
