import { createHash } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import Database from 'better-sqlite3';
import { afterEach, describe, expect, it } from 'vitest';
import { migrate, MIGRATIONS, QUIRE_APPLICATION_ID, SCHEMA_VERSION } from '../db/migrations.ts';
import { openDatabase } from '../db/open.ts';
import { addFolder, listFolders } from '../db/folders.ts';
import { upsertDocument } from '../db/documents.ts';
import { replacePassages } from '../db/passages.ts';
import { searchPassages } from '../db/search.ts';
import { KvStore } from '../db/kv-store.ts';
import { tokenHash } from '../db/hash.ts';
import { addMessage, createChat, listChats, listMessages } from '../db/chats.ts';
import { randomKv } from './fixtures/db-random-kv.ts';
import { tempDir } from './fixtures/db-temp.ts';

let cleanup: (() => void) | undefined;
afterEach(() => cleanup?.());
function freshFile(): string {
  const t = tempDir();
  cleanup = t.cleanup;
  return path.join(t.dir, 'quire.db');
}

const kvShape = { dtype: 'float16' as const, layers: 2, kvHeads: 1, headDim: 4, tokens: 3 };
const kvKey = { modelFingerprint: 'm', tokenHash: tokenHash([1, 2, 3]) };

describe('openDatabase', () => {
  it('creates a WAL database with foreign keys on at the latest schema version', () => {
    const db = openDatabase(freshFile());
    try {
      expect(db.pragma('journal_mode', { simple: true })).toBe('wal');
      expect(db.pragma('foreign_keys', { simple: true })).toBe(1);
      expect(db.pragma('auto_vacuum', { simple: true })).toBe(2); // incremental
      expect(db.pragma('busy_timeout', { simple: true })).toBe(5000);
      expect(db.pragma('user_version', { simple: true })).toBe(SCHEMA_VERSION);
      expect(MIGRATIONS.map((m) => m.version)).toEqual(Array.from({ length: SCHEMA_VERSION }, (_, i) => i + 1));
    } finally {
      db.close();
    }
  });

  it('opens read-only only at the current version, and then cannot write', () => {
    const file = freshFile();
    const raw = new Database(file);
    migrate(raw, 1);
    raw.close();
    expect(() => openDatabase(file, { readonly: true })).toThrow(/has schema 1, this Quire reads \d+: run "quire index" \(or open the app\) once/);
    openDatabase(file).close();
    const ro = openDatabase(file, { readonly: true });
    try {
      expect(() => addFolder(ro, '/x')).toThrow(/readonly/);
    } finally {
      ro.close();
    }
  });
});

describe("whose file: Quire's own files are marked, others are refused untouched", () => {
  /** The file's bytes and the names of its side files (-wal, -shm, -journal), to show nothing changed. */
  const snapshot = (file: string) => ({
    sha: createHash('sha256').update(fs.readFileSync(file)).digest('hex'),
    sideFiles: fs.readdirSync(path.dirname(file)).filter((n) => n !== path.basename(file)).sort(),
  });

  it('marks a new file with application_id', () => {
    const file = freshFile();
    openDatabase(file).close();
    const raw = new Database(file, { readonly: true });
    expect(raw.pragma('application_id', { simple: true })).toBe(QUIRE_APPLICATION_ID);
    raw.close();
  });

  it('refuses a database from a newer Quire before changing anything (no WAL switch), read-only too', () => {
    const file = freshFile();
    const raw = new Database(file);
    migrate(raw);
    raw.pragma(`user_version = ${SCHEMA_VERSION + 1}`);
    raw.pragma('journal_mode = DELETE');
    raw.close();
    const before = snapshot(file);
    const message = new RegExp(`written by a newer Quire \\(schema ${SCHEMA_VERSION + 1}; this Quire reads up to ${SCHEMA_VERSION}\\).*update Quire`);
    expect(() => openDatabase(file)).toThrow(message);
    expect(() => openDatabase(file, { readonly: true })).toThrow(message);
    expect(snapshot(file)).toEqual(before);
    const check = new Database(file, { readonly: true });
    expect(check.pragma('journal_mode', { simple: true })).toBe('delete');
    check.close();
  });

  it('refuses a SQLite file of another program untouched: no Quire tables added', () => {
    const file = freshFile();
    const raw = new Database(file);
    raw.exec('CREATE TABLE notes (id INTEGER PRIMARY KEY, body TEXT); INSERT INTO notes (body) VALUES (\'keep me\');');
    raw.pragma('user_version = 3');
    raw.close();
    const before = snapshot(file);
    expect(() => openDatabase(file)).toThrow(/is not a Quire database: .*its tables are not Quire's.*left untouched/);
    expect(() => openDatabase(file, { readonly: true })).toThrow(/is not a Quire database/);
    expect(snapshot(file)).toEqual(before);
    const check = new Database(file, { readonly: true });
    expect(check.prepare("SELECT name FROM sqlite_master WHERE type = 'table'").pluck().all()).toEqual(['notes']);
    check.close();
  });

  it("refuses a file marked with another program's application_id, even if empty", () => {
    const file = freshFile();
    const raw = new Database(file);
    raw.pragma('application_id = 0x0f055112'); // Fossil's
    raw.close();
    const before = snapshot(file);
    expect(() => openDatabase(file)).toThrow(/belongs to another program \(application id 0xf055112\)/);
    expect(snapshot(file)).toEqual(before);
  });

  it('refuses a file that is not SQLite at all, untouched', () => {
    const file = freshFile();
    fs.writeFileSync(file, 'plain text, not a database\n'.repeat(50));
    const before = snapshot(file);
    expect(() => openDatabase(file)).toThrow(/is not a Quire database: it is not a SQLite database/);
    expect(snapshot(file)).toEqual(before);
  });
});

/** Data for every table that exists at `version`, written through the public API. */
function seed(db: Database.Database, version: number): void {
  if (version >= 1) {
    const folder = addFolder(db, '/old');
    const doc = upsertDocument(db, { folderId: folder.id, path: '/old/a.txt', size: 10, mtimeMs: 5, title: 'A', status: 'indexed' });
    const passages = [
      { title: 'A › Rosarium', text: 'Old gardens keep their roses.', charStart: 0, charEnd: 29 },
      { text: '古い庭園にはバラがあります。', charStart: 29, charEnd: 43 },
    ];
    if (version >= 5) {
      replacePassages(db, doc.id, passages);
    } else {
      // replacePassages as it was before v5 (no substring_indexed column yet)
      const insert = db.prepare('INSERT INTO passages(document_id, ordinal, title, text, char_start, char_end) VALUES (?, ?, ?, ?, ?, ?)');
      passages.forEach((p, i) => insert.run(doc.id, i, p.title ?? null, p.text, p.charStart, p.charEnd));
    }
  }
  if (version >= 3) new KvStore(db).put(kvKey, randomKv(kvShape, 1));
  if (version >= 9) {
    addMessage(db, createChat(db, 'old chat').id, { role: 'assistant', content: 'hello', figures: { ttftMs: 3, tokensPerSecond: 9.5 } });
  } else if (version >= 4) {
    // chats and messages as they were before v9 (no folder, stopped or context_passages columns),
    // and before v7 (no tokens_per_second column either)
    const chatId = db.prepare("INSERT INTO chats(title, created_at, updated_at) VALUES ('old chat', 1, 1) RETURNING id").pluck().get();
    if (version >= 7) {
      db.prepare(`INSERT INTO messages(chat_id, role, content, created_at, ttft_ms, tokens_per_second) VALUES (?, 'assistant', 'hello', 1, 3, 9.5)`).run(chatId);
    } else {
      db.prepare(`INSERT INTO messages(chat_id, role, content, created_at, ttft_ms) VALUES (?, 'assistant', 'hello', 1, 3)`).run(chatId);
    }
  }
}

describe('migrations', () => {
  for (let from = 0; from < SCHEMA_VERSION; from++) {
    it(`upgrades a version ${from} database with its data intact`, () => {
      const file = freshFile();
      const raw = new Database(file);
      raw.pragma('foreign_keys = ON');
      expect(migrate(raw, from)).toBe(from);
      seed(raw, from);
      raw.close();

      const db = openDatabase(file);
      try {
        expect(db.pragma('user_version', { simple: true })).toBe(SCHEMA_VERSION);
        expect(db.pragma('application_id', { simple: true })).toBe(QUIRE_APPLICATION_ID);
        expect(db.pragma('integrity_check', { simple: true })).toBe('ok');
        expect(db.pragma('foreign_key_check')).toEqual([]);
        if (from >= 1) {
          expect(listFolders(db).map((f) => f.path)).toEqual(['/old']);
          expect(searchPassages(db, 'rose').map((h) => h.path)).toEqual(['/old/a.txt']);
          // Since v6 passage titles are in the word index, those written before included.
          expect(searchPassages(db, 'rosarium').map((h) => h.text)).toEqual(['Old gardens keep their roses.']);
          // Passages written before the trigram index existed were indexed by the migration.
          expect(searchPassages(db, '庭園には').map((h) => h.method)).toEqual(['substring']);
          // Since v5 only passages that need substring search are in the trigram index.
          const inTrigram = db.prepare('SELECT p.text FROM passages_trigram_docsize s JOIN passages p ON p.id = s.id').pluck().all();
          expect(inTrigram).toEqual(['古い庭園にはバラがあります。']);
          db.prepare(`INSERT INTO passages_fts(passages_fts, rank) VALUES ('integrity-check', 1)`).run();
          db.prepare(`INSERT INTO passages_trigram(passages_trigram, rank) VALUES ('integrity-check', 1)`).run();
          // and writing after the upgrade keeps them consistent
          const doc = upsertDocument(db, { folderId: listFolders(db)[0].id, path: '/old/b.txt', size: 1, mtimeMs: 1, status: 'indexed' });
          replacePassages(db, doc.id, [
            { title: 'B › Orangery', text: 'New roses bloom.', charStart: 0, charEnd: 16 },
            { text: '新しい庭園です。', charStart: 16, charEnd: 24 },
          ]);
          expect(searchPassages(db, 'roses').map((h) => h.path).sort()).toEqual(['/old/a.txt', '/old/b.txt']);
          expect(searchPassages(db, '庭園です').map((h) => h.path)).toEqual(['/old/b.txt']);
          expect(searchPassages(db, 'orangery').map((h) => h.text)).toEqual(['New roses bloom.']);
          db.prepare(`UPDATE passages SET title = 'B › Glasshouse' WHERE text = 'New roses bloom.'`).run();
          expect(searchPassages(db, 'orangery')).toEqual([]);
          expect(searchPassages(db, 'glasshouse').map((h) => h.path)).toEqual(['/old/b.txt']);
          db.prepare(`INSERT INTO passages_fts(passages_fts, rank) VALUES ('integrity-check', 1)`).run();
          db.prepare(`INSERT INTO passages_trigram(passages_trigram, rank) VALUES ('integrity-check', 1)`).run();
        }
        const store = new KvStore(db);
        if (from >= 3) expect(store.get(kvKey).status).toBe('hit');
        else expect(store.put(kvKey, randomKv(kvShape, 1)).stored).toBe(true);
        if (from >= 4) {
          // an answer stored before v7 keeps its figures; its tokens per second is unknown;
          // a chat from before v9 searches every folder and its answers were not stopped
          const old = listChats(db).find((c) => c.title === 'old chat')!;
          expect(old.folderId).toBeNull();
          const [message] = listMessages(db, old.id);
          expect([message.content, message.stopped, message.figures.contextPassages]).toEqual(['hello', false, null]);
          expect(message.figures).toMatchObject({ ttftMs: 3, tokensPerSecond: from >= 7 ? 9.5 : null });
        }
        const chat = createChat(db, 'new');
        addMessage(db, chat.id, { role: 'assistant', content: 'hi', stopped: true, figures: { ttftMs: 12.5, tokensPerSecond: 20.25, contextPassages: 2 } });
        const [written] = listMessages(db, chat.id);
        expect(written.figures).toMatchObject({ ttftMs: 12.5, tokensPerSecond: 20.25, contextPassages: 2 });
        expect(written.stopped).toBe(true);
      } finally {
        db.close();
      }
    });
  }

  it('runs again as a no-op on an up-to-date database', () => {
    const file = freshFile();
    openDatabase(file).close();
    const db = openDatabase(file);
    try {
      expect(migrate(db)).toBe(SCHEMA_VERSION);
    } finally {
      db.close();
    }
  });
});
