import { createHash } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import Database from 'better-sqlite3';
import { afterEach, describe, expect, it } from 'vitest';
import { KV_FILE_MIGRATION, migrate, MIGRATIONS, QUIRE_APPLICATION_ID, SCHEMA_VERSION } from '../db/migrations.ts';
import { openDatabase } from '../db/open.ts';
import { addFolder, listFolders } from '../db/folders.ts';
import { upsertDocument } from '../db/documents.ts';
import { replacePassages } from '../db/passages.ts';
import { searchPassages } from '../db/search.ts';
import { KvStore } from '../db/kv-store.ts';
import { tokenHash } from '../db/hash.ts';
import { checksumOf } from '../db/checksum.ts';
import { encodeKv, KV_HEADER_BYTES } from '../db/kv-codec.ts';
import { kvFileFor, KV_MIGRATIONS, KV_SCHEMA_VERSION, QUIRE_KV_APPLICATION_ID } from '../db/kv-file.ts';
import { recordPassageKeys } from '../db/passage-keys.ts';
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
const oldInt8Key = { modelFingerprint: 'm', tokenHash: tokenHash([4, 5, 6]) };

/** A blob of the retired int8-channel codec (id 1): float32 scales per (head, channel), then int8 values. */
function int8ChannelBlob(): Buffer {
  const tensors = 2 * kvShape.layers;
  const blob = Buffer.alloc(KV_HEADER_BYTES + tensors * (kvShape.kvHeads * kvShape.headDim * 4 + kvShape.kvHeads * kvShape.tokens * kvShape.headDim));
  encodeKv(randomKv(kvShape, 2)).copy(blob, 0, 0, KV_HEADER_BYTES);
  blob[6] = 1;
  blob.writeUInt32LE(blob.byteLength - KV_HEADER_BYTES, 24);
  return blob;
}

/** KV rows as Quire wrote them before KV_FILE_MIGRATION (tables in the library file, no priority column). */
function seedOldKv(db: Database.Database): void {
  const insert = db.prepare(
    `INSERT INTO kv_blocks(model_fingerprint, token_hash, variant, codec, dtype, layers, kv_heads, head_dim, tokens, bytes, checksum,
       created_at, last_used_at, hits) VALUES (?, ?, '', ?, 'float16', 2, 1, 4, 3, ?, ?, 10, 20, ?) RETURNING id`,
  );
  for (const [key, codec, blob, hits] of [
    [kvKey, 'float16', encodeKv(randomKv(kvShape, 1)), 3],
    [oldInt8Key, 'int8-channel', int8ChannelBlob(), 0],
  ] as const) {
    const id = insert.pluck().get(key.modelFingerprint, key.tokenHash, codec, blob.byteLength, checksumOf(blob), hits);
    db.prepare('INSERT INTO kv_blobs(block_id, data) VALUES (?, ?)').run(id, blob);
  }
}

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
    migrate(raw, KV_FILE_MIGRATION - 1); // (the KV move needs the KV file attached) marked as Quire's, then newer
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
  if (version >= 3 && version < KV_FILE_MIGRATION) seedOldKv(db); // later, KV rows live in the KV file
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

describe('the KV file', () => {
  it('lives next to the library as <name>-kv.db, WAL, 64 KiB pages, incremental vacuum, and holds every KV byte', () => {
    const file = freshFile();
    expect(kvFileFor(file)).toBe(file.replace(/quire\.db$/, 'quire-kv.db'));
    expect(kvFileFor('/x/library')).toBe('/x/library-kv.db');
    const db = openDatabase(file);
    try {
      expect(db.pragma('kv.journal_mode', { simple: true })).toBe('wal');
      expect(db.pragma('kv.auto_vacuum', { simple: true })).toBe(2);
      expect(db.pragma('kv.page_size', { simple: true })).toBe(65536);
      expect(db.pragma('main.page_size', { simple: true })).toBe(4096);
      const store = new KvStore(db, { codec: 'float16' }); // 64 KiB blocks
      for (let i = 0; i < 20; i++) store.put({ modelFingerprint: 'm', tokenHash: tokenHash([i]) }, randomKv({ ...kvShape, tokens: 256, headDim: 64 }, i));
      db.pragma('wal_checkpoint(TRUNCATE)');
    } finally {
      db.close();
    }
    // 20 blocks of 64 KiB: the library file keeps its own few pages, the KV file has them.
    expect(fs.statSync(file).size).toBeLessThan(200 * 1024);
    expect(fs.statSync(kvFileFor(file)).size).toBeGreaterThan(20 * 64 * 1024);
  });

  it('is recreated empty when deleted (it is a cache), and read-only connections open without it', () => {
    const file = freshFile();
    const db = openDatabase(file);
    new KvStore(db).put(kvKey, randomKv(kvShape, 1));
    db.close();
    for (const suffix of ['', '-wal', '-shm']) fs.rmSync(kvFileFor(file) + suffix, { force: true });
    const ro = openDatabase(file, { readonly: true });
    try {
      expect(listFolders(ro)).toEqual([]); // the library reads; there is no KV to read
      expect(ro.prepare(`SELECT COUNT(*) FROM pragma_database_list WHERE name = 'kv'`).pluck().get()).toBe(0);
    } finally {
      ro.close();
    }
    const again = openDatabase(file);
    try {
      expect(new KvStore(again).get(kvKey).status).toBe('miss');
    } finally {
      again.close();
    }
    const ro2 = openDatabase(file, { readonly: true });
    try {
      expect(ro2.prepare('SELECT COUNT(*) FROM kv.kv_blocks').pluck().get()).toBe(0);
      expect(() => ro2.prepare('DELETE FROM kv.kv_blocks').run()).toThrow(/readonly/);
    } finally {
      ro2.close();
    }
  });

  it('moves a damaged KV file aside and starts an empty one: the library still opens, nothing is deleted', () => {
    const file = freshFile();
    const db = openDatabase(file);
    addFolder(db, '/kept');
    new KvStore(db).put(kvKey, randomKv(kvShape, 1));
    db.close();
    fs.writeFileSync(kvFileFor(file), Buffer.alloc(8192, 0x5a)); // not SQLite any more
    const again = openDatabase(file);
    try {
      expect(listFolders(again).map((f) => f.path)).toEqual(['/kept']);
      const store = new KvStore(again);
      expect(store.get(kvKey).status).toBe('miss');
      expect(store.put(kvKey, randomKv(kvShape, 1)).stored).toBe(true);
    } finally {
      again.close();
    }
    const aside = fs.readdirSync(path.dirname(file)).filter((f) => f.startsWith('quire-kv.db.broken-') && !/-(wal|shm)$/.test(f));
    expect(aside).toHaveLength(1);
    expect(fs.readFileSync(path.join(path.dirname(file), aside[0]))).toEqual(Buffer.alloc(8192, 0x5a));
  });

  it('migrates a KV file of version 1 (blocks only): the passage keys table arrives and the store works', () => {
    const file = freshFile();
    openDatabase(file).close();
    for (const suffix of ['', '-wal', '-shm']) fs.rmSync(kvFileFor(file) + suffix, { force: true });
    // a KV file as version 1 made it, with a block in it
    const raw = new Database(file);
    raw.prepare('ATTACH DATABASE ? AS kv').run(kvFileFor(file));
    KV_MIGRATIONS[0].up(raw);
    raw.pragma('kv.user_version = 1');
    raw.close();
    const v1 = openDatabase(file, { readonly: false });
    try {
      expect(v1.pragma('kv.user_version', { simple: true })).toBe(KV_SCHEMA_VERSION);
      expect(KV_SCHEMA_VERSION).toBeGreaterThanOrEqual(2);
      expect(v1.prepare(`SELECT name FROM kv.sqlite_schema WHERE name = 'passage_keys'`).pluck().get()).toBe('passage_keys');
      expect(new KvStore(v1).put(kvKey, randomKv(kvShape, 1)).stored).toBe(true);
      recordPassageKeys(v1, 'm', [{ passageId: 1, tokenHash: kvKey.tokenHash, tokens: 3, textHash: 'x' }]);
      expect(v1.prepare('SELECT COUNT(*) FROM kv.passage_keys').pluck().get()).toBe(1);
    } finally {
      v1.close();
    }
  });

  it('refuses a KV file written by a newer Quire', () => {
    const file = freshFile();
    openDatabase(file).close();
    const raw = new Database(kvFileFor(file));
    raw.pragma(`user_version = ${KV_SCHEMA_VERSION + 1}`);
    raw.close();
    expect(() => openDatabase(file)).toThrow(/quire-kv\.db was written by a newer Quire \(KV schema \d+; this Quire reads up to \d+\)/);
  });

  it("refuses another program's SQLite file at the KV file's path before writing to either file, read-only too", () => {
    const file = freshFile();
    const raw = new Database(file);
    migrate(raw, 7); // a library from before application_id: opening it would migrate it
    raw.close();
    const kvFile = kvFileFor(file);
    const other = new Database(kvFile);
    other.exec("CREATE TABLE notes (id INTEGER PRIMARY KEY, body TEXT); INSERT INTO notes (body) VALUES ('keep me');");
    other.close();
    const sha = (f: string) => createHash('sha256').update(fs.readFileSync(f)).digest('hex');
    const before = { library: sha(file), kv: sha(kvFile), files: fs.readdirSync(path.dirname(file)).sort() };
    expect(() => openDatabase(file)).toThrow(/quire-kv\.db is not a Quire KV file: .*another program.*left untouched/);
    expect(() => openDatabase(file, { readonly: true })).toThrow(/is not a Quire KV file/);
    expect({ library: sha(file), kv: sha(kvFile), files: fs.readdirSync(path.dirname(file)).sort() }).toEqual(before);
    const check = new Database(file, { readonly: true });
    expect(check.pragma('user_version', { simple: true })).toBe(7);
    check.close();
  });

  it("marks the KV file as Quire's KV file, and refuses it as a library", () => {
    const file = freshFile();
    openDatabase(file).close();
    const raw = new Database(kvFileFor(file), { readonly: true });
    expect(raw.pragma('application_id', { simple: true })).toBe(QUIRE_KV_APPLICATION_ID);
    expect(raw.pragma('application_id', { simple: true })).not.toBe(QUIRE_APPLICATION_ID);
    raw.close();
    expect(() => openDatabase(kvFileFor(file))).toThrow(/is not a Quire database: it is Quire's KV file/);
  });
});

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
        // KV blocks live in the attached KV file now; the library file has none.
        const mainTables = db.prepare(`SELECT name FROM main.sqlite_schema WHERE name LIKE 'kv_%'`).pluck().all();
        expect(mainTables).toEqual([]);
        expect(db.pragma('kv.user_version', { simple: true })).toBe(KV_SCHEMA_VERSION);
        expect(db.pragma('kv.integrity_check', { simple: true })).toBe('ok');
        const store = new KvStore(db);
        if (from >= 3 && from < KV_FILE_MIGRATION) {
          // A float16 block of the old format reads as it was, with its history; a block of a
          // retired codec is detected, dropped and left to recompute.
          const got = store.get(kvKey);
          expect(got.status === 'hit' && Array.from(got.kv.keys[1])).toEqual(Array.from(randomKv(kvShape, 1).keys[1]));
          expect(got.status === 'hit' && got.entry).toMatchObject({ hits: 4, createdAt: 10 });
          expect(store.get(oldInt8Key)).toMatchObject({ status: 'corrupt', reason: expect.stringMatching(/int8-channel is no longer read/) });
          expect(store.get(oldInt8Key).status).toBe('miss');
        } else {
          expect(store.put(kvKey, randomKv(kvShape, 1)).stored).toBe(true);
        }
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
