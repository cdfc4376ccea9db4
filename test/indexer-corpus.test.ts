// The indexer over a corpus of good and bad files: every good file indexed and searchable, every
// bad one reported with its reason, and a second run finds everything unchanged.
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { listDocuments } from '../db/documents.ts';
import { searchPassages } from '../db/search.ts';
import { indexFolder, type IndexProgress, type IndexSummary } from '../electron/indexing/indexer.ts';
import { estimateTokens } from '../electron/indexing/token-estimate.ts';
import { CORPUS_MAX_BYTES, GOOD_FILES, makeCorpus, rel, type Corpus } from './fixtures/indexer-corpus.ts';
import { tempDb, type TempDb } from './fixtures/db-temp.ts';

let corpus: Corpus;
let store: TempDb;
let summary: IndexSummary;
const events: IndexProgress[] = [];

beforeAll(async () => {
  corpus = await makeCorpus();
  store = tempDb();
  summary = await indexFolder(store.db, corpus.root, {
    countTokens: estimateTokens,
    maxFileBytes: CORPUS_MAX_BYTES,
    onProgress: (p) => events.push(p),
  });
});

afterAll(() => {
  store?.cleanup();
  corpus?.cleanup();
});

describe('indexFolder over a mixed corpus', () => {
  it('indexes every good file and finds its phrase', () => {
    const docs = listDocuments(store.db);
    const indexed = docs.filter((d) => d.status === 'indexed').map((d) => rel(corpus.root, d.path));
    expect(indexed.sort()).toEqual(Object.keys(GOOD_FILES).sort());
    expect(summary.indexed).toBe(Object.keys(GOOD_FILES).length);
    for (const [file, phrase] of Object.entries(GOOD_FILES)) {
      const hits = searchPassages(store.db, `"${phrase}"`);
      expect(hits.map((h) => rel(corpus.root, h.path)), phrase).toContain(file);
    }
  });

  it('reports every bad file with its reason', () => {
    const problems = new Map([...summary.failed, ...summary.skipped].map((p) => [rel(corpus.root, p.path), p.reason]));
    expect([...problems.keys()].sort()).toEqual(Object.keys(corpus.bad).sort());
    for (const [file, reason] of Object.entries(corpus.bad)) expect(problems.get(file), file).toMatch(reason);
    const skipped = summary.skipped.map((s) => rel(corpus.root, s.path)).sort();
    expect(skipped).toEqual(['blob.bin', 'empty.txt', 'huge.log']);
  });

  it('finds a phrase from page 2 of the PDF and reports page 2', () => {
    const [hit] = searchPassages(store.db, 'purple giraffe');
    expect(rel(corpus.root, hit.path)).toBe('report.pdf');
    expect(hit.page).toBe(2);
  });

  it('reports progress from scanning to done', () => {
    expect(events[0].phase).toBe('scanning');
    const last = events[events.length - 1];
    expect(last).toMatchObject({ phase: 'done', filesDone: summary.files, filesIndexed: summary.indexed });
    expect(last.bytesDone).toBe(last.bytesTotal);
    expect(last.passages).toBe(summary.passagesWritten);
    expect(events.some((e) => e.phase === 'indexing' && e.currentPath !== undefined)).toBe(true);
    const done = events.filter((e) => e.phase === 'indexing').map((e) => e.filesDone);
    expect(done).toEqual([...done].sort((a, b) => a - b));
  });

  it('finds everything unchanged on a second run, still reporting the bad files', async () => {
    const before = store.db.prepare('SELECT id, document_id, text FROM passages ORDER BY id').all();
    const again = await indexFolder(store.db, corpus.root, { countTokens: estimateTokens, maxFileBytes: CORPUS_MAX_BYTES });
    expect(again).toMatchObject({ indexed: 0, unchanged: summary.indexed, passagesWritten: 0, removed: 0, passages: summary.passages });
    expect(again.failed.length + again.skipped.length).toBe(Object.keys(corpus.bad).length);
    expect(store.db.prepare('SELECT id, document_id, text FROM passages ORDER BY id').all()).toEqual(before);
  });

  it('stops between files when aborted, reporting the cancellation', async () => {
    const fresh = tempDb();
    try {
      const controller = new AbortController();
      const seen: IndexProgress[] = [];
      const run = indexFolder(fresh.db, corpus.root, {
        countTokens: estimateTokens,
        signal: controller.signal,
        onProgress: (p) => {
          seen.push(p);
          if (p.filesDone === 2) controller.abort();
        },
      });
      await expect(run).rejects.toMatchObject({ name: 'AbortError' });
      expect(seen[seen.length - 1].phase).toBe('cancelled');
      expect(fresh.db.prepare('SELECT COUNT(*) FROM documents').pluck().get()).toBe(2);
    } finally {
      fresh.cleanup();
    }
  });

  it('refuses a root that is not a directory', async () => {
    await expect(indexFolder(store.db, path.join(corpus.root, 'plain.txt'), { countTokens: estimateTokens })).rejects.toThrow(/not a directory/);
    await expect(indexFolder(store.db, path.join(corpus.root, 'nope'), { countTokens: estimateTokens })).rejects.toThrow(/ENOENT/);
  });
});
