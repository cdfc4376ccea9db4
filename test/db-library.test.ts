// Folders, documents, passages and chats: the plain records of the knowledge store.
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { addFolder, getFolder, getFolderByPath, listFolders, removeFolder } from '../db/folders.ts';
import { deleteDocument, getDocument, getDocumentByPath, listDocuments, setDocumentStatus, upsertDocument } from '../db/documents.ts';
import { getPassage, listPassages, replacePassages, setPassageTokenCount } from '../db/passages.ts';
import { cutPassages } from '../electron/indexing/passages.ts';
import type { ParsedDocument } from '../electron/indexing/parsers/types.ts';
import {
  addMessage,
  createChat,
  deleteChat,
  deleteMessages,
  getChat,
  lastExchange,
  listChats,
  listMessages,
  renameChat,
  setChatFolder,
} from '../db/chats.ts';
import { searchPassages } from '../db/search.ts';
import { tempDb, type TempDb } from './fixtures/db-temp.ts';

let t: TempDb;
beforeEach(() => {
  t = tempDb();
});
afterEach(() => t.cleanup());

const count = (table: string) => t.db.prepare(`SELECT COUNT(*) FROM ${table}`).pluck().get() as number;

function docWithPassages(folderId: number, path: string, texts: string[]) {
  const doc = upsertDocument(t.db, { folderId, path, size: 1, mtimeMs: 1 });
  const ids = replacePassages(t.db, doc.id, texts.map((text, i) => ({ text, charStart: i * 10, charEnd: i * 10 + 9 })));
  return { doc, ids };
}

describe('folders and documents', () => {
  it('adds folders idempotently and lists them', () => {
    const a = addFolder(t.db, '/a', 100);
    expect(addFolder(t.db, '/a', 200)).toEqual(a);
    addFolder(t.db, '/b');
    expect(listFolders(t.db).map((f) => f.path)).toEqual(['/a', '/b']);
    expect(getFolder(t.db, a.id)).toEqual({ id: a.id, path: '/a', addedAt: 100 });
    expect(getFolderByPath(t.db, '/nope')).toBeUndefined();
  });

  it('upserts documents by path, keeping the id, and records status', () => {
    const f = addFolder(t.db, '/a');
    const d1 = upsertDocument(t.db, { folderId: f.id, path: '/a/x.pdf', size: 10, mtimeMs: 1.6, parser: 'pdf' });
    expect(d1).toMatchObject({ status: 'pending', mtimeMs: 2, title: null, contentHash: null, indexedAt: null });
    const d2 = upsertDocument(t.db, { folderId: f.id, path: '/a/x.pdf', size: 20, mtimeMs: 3, contentHash: 'h', title: 'X' });
    expect(d2).toMatchObject({ id: d1.id, size: 20, contentHash: 'h', title: 'X', parser: null });
    setDocumentStatus(t.db, d1.id, 'failed', 'encrypted PDF', 50);
    expect(getDocument(t.db, d1.id)).toMatchObject({ status: 'failed', error: 'encrypted PDF', indexedAt: null });
    setDocumentStatus(t.db, d1.id, 'indexed', null, 60);
    expect(getDocumentByPath(t.db, '/a/x.pdf')).toMatchObject({ status: 'indexed', error: null, indexedAt: 60 });
    expect(listDocuments(t.db, { status: 'indexed' })).toHaveLength(1);
    expect(listDocuments(t.db, { folderId: f.id + 1 })).toHaveLength(0);
    expect(() => setDocumentStatus(t.db, d1.id, 'weird' as never)).toThrow(/CHECK/);
  });

  it('removing a folder removes its documents, passages and their index entries', () => {
    const a = addFolder(t.db, '/a');
    const b = addFolder(t.db, '/b');
    docWithPassages(a.id, '/a/1.txt', ['apples and pears', 'more apples']);
    docWithPassages(b.id, '/b/1.txt', ['apples in b']);
    expect(searchPassages(t.db, 'apples')).toHaveLength(3);
    expect(removeFolder(t.db, a.id)).toBe(true);
    expect(count('documents')).toBe(1);
    expect(count('passages')).toBe(1);
    expect(searchPassages(t.db, 'apples').map((h) => h.path)).toEqual(['/b/1.txt']);
    expect(searchPassages(t.db, 'pears')).toEqual([]);
    t.db.prepare(`INSERT INTO passages_fts(passages_fts) VALUES ('integrity-check')`).run();
    t.db.prepare(`INSERT INTO passages_trigram(passages_trigram) VALUES ('integrity-check')`).run();
  });
});

describe('passages', () => {
  it('stores the indexer\'s passages as cutPassages makes them, numbered by their order in the list', () => {
    // A PDF-like document: text before the first heading on page 1, a titled section on page 2.
    const intro = 'Roses were grown in ancient Persia. Gardeners prized their scent above colour.';
    const care = 'Roses need six hours of sun. Water them deeply once a week. Prune in late winter.';
    const text = `${intro}\n\nCare\n\n${care}`;
    const parsed: ParsedDocument = {
      title: 'Roses',
      parser: 'pdf',
      textKind: 'prose',
      text,
      sections: [
        { page: 1, charStart: 0, text: intro },
        { title: 'Care', page: 2, charStart: text.indexOf(care), text: care },
      ],
    };
    const words = (s: string) => s.split(/\s+/).filter(Boolean).length;
    const cut = cutPassages(parsed, words, 8);
    expect(cut.length).toBeGreaterThanOrEqual(4);

    const f = addFolder(t.db, '/a');
    const doc = upsertDocument(t.db, { folderId: f.id, path: '/a/roses.pdf', size: 1, mtimeMs: 1 });
    // The cutter's objects go in unchanged, as the indexer passes them (their type is checked to fit).
    const ids = replacePassages(t.db, doc.id, cut);
    const stored = listPassages(t.db, doc.id);
    expect(stored).toEqual(
      cut.map((p, i) => ({
        id: ids[i],
        documentId: doc.id,
        ordinal: i,
        title: p.title,
        text: p.text,
        charStart: p.charStart,
        charEnd: p.charEnd,
        page: p.page ?? null,
        tokenCount: p.tokenCount,
      })),
    );
    // The stored offsets still point at the passage in the document's text (what a citation opens).
    for (const p of stored) expect(text.slice(p.charStart, p.charEnd)).toBe(p.text);
    expect(stored.map((p) => [p.title, p.page])).toContainEqual(['Roses › Care', 2]);

    // Ordinals follow the list, not the cutter's own numbering: without the first passage they start at 0 again.
    const rest = cut.slice(1);
    expect(rest[0].ordinal).toBe(1);
    replacePassages(t.db, doc.id, rest);
    expect(listPassages(t.db, doc.id).map((p) => [p.ordinal, p.text])).toEqual(rest.map((p, i) => [i, p.text]));
  });

  it('replaces a document\'s passages atomically, renumbering them, and reindexes', () => {
    const f = addFolder(t.db, '/a');
    const { doc, ids } = docWithPassages(f.id, '/a/1.txt', ['old words here', 'second old']);
    expect(listPassages(t.db, doc.id).map((p) => p.ordinal)).toEqual([0, 1]);
    const fresh = replacePassages(t.db, doc.id, [{ title: 'Doc › Intro', text: 'new words', charStart: 0, charEnd: 9, page: 3, tokenCount: 2 }]);
    expect(getPassage(t.db, ids[0])).toBeUndefined();
    expect(fresh[0]).toBeGreaterThan(ids[1]); // ids are never reused
    expect(listPassages(t.db, doc.id)).toEqual([
      { id: fresh[0], documentId: doc.id, ordinal: 0, title: 'Doc › Intro', text: 'new words', charStart: 0, charEnd: 9, page: 3, tokenCount: 2 },
    ]);
    expect(searchPassages(t.db, 'new')[0].passageTitle).toBe('Doc › Intro');
    expect(searchPassages(t.db, 'old')).toEqual([]);
    expect(searchPassages(t.db, 'new')).toHaveLength(1);
    setPassageTokenCount(t.db, fresh[0], 7);
    expect(getPassage(t.db, fresh[0])?.tokenCount).toBe(7);
    // A failing replacement leaves the old passages in place.
    expect(() => replacePassages(t.db, doc.id, [{ text: 'ok', charStart: 0, charEnd: 2 }, { text: null as never, charStart: 0, charEnd: 0 }])).toThrow();
    expect(listPassages(t.db, doc.id).map((p) => p.text)).toEqual(['new words']);
  });

  it('deleting a document deletes its passages', () => {
    const f = addFolder(t.db, '/a');
    const { doc } = docWithPassages(f.id, '/a/1.txt', ['x y z']);
    expect(deleteDocument(t.db, doc.id)).toBe(true);
    expect(count('passages')).toBe(0);
    expect(deleteDocument(t.db, doc.id)).toBe(false);
  });
});

describe('chats', () => {
  it('stores messages with citations and per-answer figures', () => {
    const f = addFolder(t.db, '/a');
    const { doc, ids } = docWithPassages(f.id, '/a/1.txt', ['Roses need sun.']);
    const chat = createChat(t.db, 'Roses', 1000);
    addMessage(t.db, chat.id, { role: 'user', content: 'What do roses need?' }, 1001);
    const answer = addMessage(
      t.db,
      chat.id,
      {
        role: 'assistant',
        content: 'Sun [1].',
        citations: [{ ordinal: 1, passageId: ids[0], documentPath: '/a/1.txt', title: 'Roses', page: 2, quote: 'Roses need sun.' }],
        figures: { provider: 'cpu', model: 'qwen', blocksReused: 15, blocksComputed: 1, ttftMs: 84.5, totalMs: 900, outputTokens: 4, tokensPerSecond: 31.5 },
      },
      1002,
    );
    expect(answer.figures).toEqual({
      provider: 'cpu',
      model: 'qwen',
      blocksReused: 15,
      blocksComputed: 1,
      ttftMs: 84.5,
      totalMs: 900,
      outputTokens: 4,
      tokensPerSecond: 31.5,
      contextPassages: null,
    });
    expect(answer.stopped).toBe(false);
    const messages = listMessages(t.db, chat.id);
    expect(messages.map((m) => m.role)).toEqual(['user', 'assistant']);
    expect(messages[0].figures.ttftMs).toBeNull();
    expect(messages[1].citations).toEqual([{ ordinal: 1, passageId: ids[0], documentPath: '/a/1.txt', title: 'Roses', page: 2, quote: 'Roses need sun.' }]);
    expect(getChat(t.db, chat.id)?.updatedAt).toBe(1002);

    // Re-indexing the document keeps the citation readable, without a dangling passage id.
    replacePassages(t.db, doc.id, [{ text: 'Roses need sun and water.', charStart: 0, charEnd: 25 }]);
    expect(listMessages(t.db, chat.id)[1].citations[0]).toMatchObject({ passageId: null, quote: 'Roses need sun.', documentPath: '/a/1.txt' });
  });

  it('lists chats by recent activity, renames and deletes them with their messages', () => {
    const a = createChat(t.db, 'a', 1);
    const b = createChat(t.db, 'b', 2);
    addMessage(t.db, a.id, { role: 'user', content: 'bump' }, 3);
    expect(listChats(t.db).map((c) => c.id)).toEqual([a.id, b.id]);
    renameChat(t.db, b.id, 'bee');
    expect(getChat(t.db, b.id)?.title).toBe('bee');
    expect(deleteChat(t.db, a.id)).toBe(true);
    expect(count('messages')).toBe(0);
    expect(() => addMessage(t.db, 999, { role: 'user', content: 'x' })).toThrow(/FOREIGN KEY/);
  });

  it('limits a chat to a folder (every folder again when that folder is removed)', () => {
    const f = addFolder(t.db, '/notes');
    const scoped = createChat(t.db, 'scoped', 1, f.id);
    const open = createChat(t.db, 'open', 2);
    expect([getChat(t.db, scoped.id)?.folderId, getChat(t.db, open.id)?.folderId]).toEqual([f.id, null]);
    setChatFolder(t.db, open.id, f.id);
    expect(getChat(t.db, open.id)?.folderId).toBe(f.id);
    removeFolder(t.db, f.id);
    expect(listChats(t.db).map((c) => c.folderId)).toEqual([null, null]);
  });

  it('stores a stopped answer with its context size, and finds and deletes the last exchange', () => {
    const chat = createChat(t.db, 'c', 1);
    expect(lastExchange(t.db, chat.id)).toBeNull();
    addMessage(t.db, chat.id, { role: 'user', content: 'first?' }, 2);
    addMessage(t.db, chat.id, { role: 'assistant', content: 'one', figures: { contextPassages: 3 } }, 3);
    const q = addMessage(t.db, chat.id, { role: 'user', content: 'second?' }, 4);
    const a = addMessage(t.db, chat.id, { role: 'assistant', content: 'half an ans', stopped: true, figures: { contextPassages: 0 } }, 5);
    expect(listMessages(t.db, chat.id).map((m) => [m.content, m.stopped, m.figures.contextPassages])).toEqual([
      ['first?', false, null],
      ['one', false, 3],
      ['second?', false, null],
      ['half an ans', true, 0],
    ]);
    expect(lastExchange(t.db, chat.id)).toEqual({ questionId: q.id, answerId: a.id, question: 'second?' });
    expect(deleteMessages(t.db, [q.id, a.id])).toBe(2);
    expect(listMessages(t.db, chat.id).map((m) => m.content)).toEqual(['first?', 'one']);
    addMessage(t.db, chat.id, { role: 'user', content: 'unanswered' }, 6);
    expect(lastExchange(t.db, chat.id)).toBeNull(); // the chat does not end with an answer
  });
});
