// The schema, as an ordered list of migrations. A database records how many have run in
// PRAGMA user_version; opening it runs the rest, each in its own transaction. Never edit a
// migration that has shipped: add a new one.
import type Database from 'better-sqlite3';
import { needsSubstringSearch } from './fts-query.ts';
import { priorityAfterUse } from './kv-eviction.ts';
import { KV_SCHEMA } from './kv-file.ts';

/** The migration that moves the KV blocks into their own file (kv-file.ts); tests build libraries from before it. */
export const KV_FILE_MIGRATION = 10;

/** PRAGMA application_id of Quire's files: "Quir" in ASCII. Set by migration 8. */
export const QUIRE_APPLICATION_ID = 0x51756972;

export interface Migration {
  /** The user_version the database has after this migration. */
  version: number;
  name: string;
  /**
   * Work committed in a transaction of its own before `up` (e.g. filling the attached KV file, so
   * that a transaction never needs two files to commit together). It must be safe to run again:
   * a kill between it and `up` runs both again at the next open.
   */
  before?: (db: Database.Database) => void;
  up: (db: Database.Database) => void;
}

export const MIGRATIONS: readonly Migration[] = [
  {
    version: 1,
    name: 'folders, documents, passages and their full-text index',
    up: (db) =>
      db.exec(`
        CREATE TABLE folders (
          id INTEGER PRIMARY KEY,
          path TEXT NOT NULL UNIQUE,
          added_at INTEGER NOT NULL
        );
        -- AUTOINCREMENT on documents and passages: ids are handed to the UI and to citations, and
        -- a deleted id must never come back naming something else.
        CREATE TABLE documents (
          id INTEGER PRIMARY KEY AUTOINCREMENT,
          folder_id INTEGER NOT NULL REFERENCES folders(id) ON DELETE CASCADE,
          path TEXT NOT NULL UNIQUE,
          size INTEGER NOT NULL,
          mtime_ms INTEGER NOT NULL,
          content_hash TEXT,
          title TEXT,
          parser TEXT,
          status TEXT NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'indexed', 'failed', 'skipped')),
          error TEXT,
          indexed_at INTEGER
        );
        CREATE INDEX documents_folder ON documents(folder_id);
        CREATE TABLE passages (
          id INTEGER PRIMARY KEY AUTOINCREMENT,
          document_id INTEGER NOT NULL REFERENCES documents(id) ON DELETE CASCADE,
          ordinal INTEGER NOT NULL,
          -- document title plus the section's heading path, as the block text starts with it
          title TEXT,
          text TEXT NOT NULL,
          char_start INTEGER NOT NULL,
          char_end INTEGER NOT NULL,
          page INTEGER,
          token_count INTEGER,
          UNIQUE (document_id, ordinal)
        );
        -- External-content index: the text lives once, in passages. porter stems English
        -- ("running" finds "runs"); remove_diacritics 2 lets "cafe" find "café".
        CREATE VIRTUAL TABLE passages_fts USING fts5(
          text, content = 'passages', content_rowid = 'id',
          tokenize = 'porter unicode61 remove_diacritics 2'
        );
        CREATE TRIGGER passages_fts_insert AFTER INSERT ON passages BEGIN
          INSERT INTO passages_fts(rowid, text) VALUES (new.id, new.text);
        END;
        CREATE TRIGGER passages_fts_delete AFTER DELETE ON passages BEGIN
          INSERT INTO passages_fts(passages_fts, rowid, text) VALUES ('delete', old.id, old.text);
        END;
        CREATE TRIGGER passages_fts_update AFTER UPDATE OF text ON passages BEGIN
          INSERT INTO passages_fts(passages_fts, rowid, text) VALUES ('delete', old.id, old.text);
          INSERT INTO passages_fts(rowid, text) VALUES (new.id, new.text);
        END;
      `),
  },
  {
    version: 2,
    name: 'trigram index for text without spaces between words (Chinese, Japanese, Thai...)',
    // unicode61 makes a whole run of CJK characters one token, so a word inside it is never found.
    // Trigrams find any substring of 3+ characters; shorter queries fall back to LIKE (passages.ts).
    up: (db) =>
      db.exec(`
        CREATE VIRTUAL TABLE passages_trigram USING fts5(
          text, content = 'passages', content_rowid = 'id',
          tokenize = 'trigram remove_diacritics 1'
        );
        INSERT INTO passages_trigram(passages_trigram) VALUES ('rebuild');
        CREATE TRIGGER passages_trigram_insert AFTER INSERT ON passages BEGIN
          INSERT INTO passages_trigram(rowid, text) VALUES (new.id, new.text);
        END;
        CREATE TRIGGER passages_trigram_delete AFTER DELETE ON passages BEGIN
          INSERT INTO passages_trigram(passages_trigram, rowid, text) VALUES ('delete', old.id, old.text);
        END;
        CREATE TRIGGER passages_trigram_update AFTER UPDATE OF text ON passages BEGIN
          INSERT INTO passages_trigram(passages_trigram, rowid, text) VALUES ('delete', old.id, old.text);
          INSERT INTO passages_trigram(rowid, text) VALUES (new.id, new.text);
        END;
      `),
  },
  {
    version: 3,
    name: 'KV blocks, content-addressed by model fingerprint, token hash and variant',
    // Metadata and bytes in separate tables: touching last_used/hits then rewrites a small row,
    // not a 3 MiB one, and stats/eviction scans never read blob pages.
    up: (db) =>
      db.exec(`
        CREATE TABLE kv_blocks (
          id INTEGER PRIMARY KEY,
          model_fingerprint TEXT NOT NULL,
          token_hash TEXT NOT NULL,
          -- '' for a block computed alone; otherwise names what it was computed after (e.g. the
          -- hash of a shared instruction prefix). NOT NULL because UNIQUE treats NULLs as distinct.
          variant TEXT NOT NULL DEFAULT '',
          codec TEXT NOT NULL,
          dtype TEXT NOT NULL,
          layers INTEGER NOT NULL,
          kv_heads INTEGER NOT NULL,
          head_dim INTEGER NOT NULL,
          tokens INTEGER NOT NULL,
          bytes INTEGER NOT NULL,
          checksum TEXT NOT NULL,
          created_at INTEGER NOT NULL,
          last_used_at INTEGER NOT NULL,
          hits INTEGER NOT NULL DEFAULT 0,
          UNIQUE (model_fingerprint, token_hash, variant)
        );
        CREATE INDEX kv_blocks_lru ON kv_blocks(last_used_at);
        CREATE TABLE kv_blobs (
          block_id INTEGER PRIMARY KEY REFERENCES kv_blocks(id) ON DELETE CASCADE,
          data BLOB NOT NULL
        );
      `),
  },
  {
    version: 4,
    name: 'chats, messages and citations',
    up: (db) =>
      db.exec(`
        CREATE TABLE chats (
          id INTEGER PRIMARY KEY,
          title TEXT NOT NULL DEFAULT '',
          created_at INTEGER NOT NULL,
          updated_at INTEGER NOT NULL
        );
        CREATE TABLE messages (
          id INTEGER PRIMARY KEY,
          chat_id INTEGER NOT NULL REFERENCES chats(id) ON DELETE CASCADE,
          role TEXT NOT NULL CHECK (role IN ('system', 'user', 'assistant')),
          content TEXT NOT NULL,
          created_at INTEGER NOT NULL,
          -- per-answer figures (assistant messages; NULL otherwise)
          provider TEXT,
          model TEXT,
          blocks_reused INTEGER,
          blocks_computed INTEGER,
          ttft_ms REAL,
          total_ms REAL,
          output_tokens INTEGER
        );
        CREATE INDEX messages_chat ON messages(chat_id, id);
        -- A citation keeps a copy of where it pointed: re-indexing a file replaces its passages
        -- (passage_id becomes NULL), and the chat history must still say what was cited.
        CREATE TABLE message_citations (
          message_id INTEGER NOT NULL REFERENCES messages(id) ON DELETE CASCADE,
          ordinal INTEGER NOT NULL,
          passage_id INTEGER REFERENCES passages(id) ON DELETE SET NULL,
          document_path TEXT NOT NULL,
          title TEXT,
          page INTEGER,
          quote TEXT NOT NULL,
          PRIMARY KEY (message_id, ordinal)
        );
        CREATE INDEX message_citations_passage ON message_citations(passage_id);
      `),
  },
  {
    version: 5,
    name: 'trigram index only for passages that need substring search',
    // Most of indexing's time went into trigram inserts for text that word search already serves.
    // passages.substring_indexed says whether a passage is in passages_trigram (replacePassages
    // sets it from needsSubstringSearch). The trigram table's content is a view of exactly those
    // rows, so FTS5 (reads, 'delete', 'rebuild', 'integrity-check' against the content) sees
    // index and content agree; with content = 'passages' a partial index would look corrupt.
    up: (db) => {
      db.exec(`
        ALTER TABLE passages ADD COLUMN substring_indexed INTEGER NOT NULL DEFAULT 1;
        DROP TRIGGER passages_trigram_insert;
        DROP TRIGGER passages_trigram_delete;
        DROP TRIGGER passages_trigram_update;
        DROP TABLE passages_trigram;
      `);
      // Existing rows: classified once here, with the rule replacePassages uses.
      db.function('quire_v5_needs_substring_search', { deterministic: true }, (text: unknown) =>
        needsSubstringSearch(String(text)) ? 1 : 0,
      );
      db.exec(`UPDATE passages SET substring_indexed = quire_v5_needs_substring_search(text)`);
      db.exec(`
        CREATE VIEW passages_substring AS SELECT id, text FROM passages WHERE substring_indexed = 1;
        CREATE VIRTUAL TABLE passages_trigram USING fts5(
          text, content = 'passages_substring', content_rowid = 'id',
          tokenize = 'trigram remove_diacritics 1'
        );
        INSERT INTO passages_trigram(passages_trigram) VALUES ('rebuild');
        CREATE TRIGGER passages_trigram_insert AFTER INSERT ON passages WHEN new.substring_indexed BEGIN
          INSERT INTO passages_trigram(rowid, text) VALUES (new.id, new.text);
        END;
        CREATE TRIGGER passages_trigram_delete AFTER DELETE ON passages WHEN old.substring_indexed BEGIN
          INSERT INTO passages_trigram(passages_trigram, rowid, text) VALUES ('delete', old.id, old.text);
        END;
        CREATE TRIGGER passages_trigram_update AFTER UPDATE OF text, substring_indexed ON passages BEGIN
          INSERT INTO passages_trigram(passages_trigram, rowid, text) SELECT 'delete', old.id, old.text WHERE old.substring_indexed;
          INSERT INTO passages_trigram(rowid, text) SELECT new.id, new.text WHERE new.substring_indexed;
        END;
      `);
    },
  },
  {
    version: 6,
    name: 'passage titles in the word index, so a heading that names the topic ranks its passages',
    // A second column of the same external-content index: bm25() weighs it apart from the text
    // (db/search.ts), and snippets keep coming from column 0, the text.
    up: (db) =>
      db.exec(`
        DROP TRIGGER passages_fts_insert;
        DROP TRIGGER passages_fts_delete;
        DROP TRIGGER passages_fts_update;
        DROP TABLE passages_fts;
        CREATE VIRTUAL TABLE passages_fts USING fts5(
          text, title, content = 'passages', content_rowid = 'id',
          tokenize = 'porter unicode61 remove_diacritics 2'
        );
        INSERT INTO passages_fts(passages_fts) VALUES ('rebuild');
        CREATE TRIGGER passages_fts_insert AFTER INSERT ON passages BEGIN
          INSERT INTO passages_fts(rowid, text, title) VALUES (new.id, new.text, new.title);
        END;
        CREATE TRIGGER passages_fts_delete AFTER DELETE ON passages BEGIN
          INSERT INTO passages_fts(passages_fts, rowid, text, title) VALUES ('delete', old.id, old.text, old.title);
        END;
        CREATE TRIGGER passages_fts_update AFTER UPDATE OF text, title ON passages BEGIN
          INSERT INTO passages_fts(passages_fts, rowid, text, title) VALUES ('delete', old.id, old.text, old.title);
          INSERT INTO passages_fts(rowid, text, title) VALUES (new.id, new.text, new.title);
        END;
      `),
  },
  {
    version: 7,
    name: 'tokens per second stored with an answer',
    // The one definition (native-models/decode.ts): tokens after the first over the time from the
    // first to the last. Older answers keep NULL: their figure cannot be recovered from total time.
    up: (db) => db.exec('ALTER TABLE messages ADD COLUMN tokens_per_second REAL'),
  },
  {
    version: 8,
    name: "the file marked as Quire's (PRAGMA application_id)",
    // Tells Quire's files from other SQLite files before anything is written to them (open.ts).
    // Written in the database header, inside this migration's transaction.
    up: (db) => {
      db.pragma(`application_id = ${QUIRE_APPLICATION_ID}`);
    },
  },
  {
    version: 9,
    name: 'a chat limited to one folder; stopped answers and their context size',
    up: (db) =>
      db.exec(`
        -- NULL: the chat searches every folder (also when its folder is removed)
        ALTER TABLE chats ADD COLUMN folder_id INTEGER REFERENCES folders(id) ON DELETE SET NULL;
        -- an answer the user stopped: its content is what was written until then
        ALTER TABLE messages ADD COLUMN stopped INTEGER NOT NULL DEFAULT 0;
        -- passages in the answer's context (0: nothing found, the model did not run; NULL: not recorded)
        ALTER TABLE messages ADD COLUMN context_passages INTEGER;
      `),
  },
  {
    version: KV_FILE_MIGRATION,
    name: 'KV blocks move to their own attached file (kv-file.ts)',
    // Copied first (the KV file commits), then dropped here (the library commits): a kill between
    // the two leaves the blocks in both files and the next open copies again (INSERT OR IGNORE)
    // and drops. Each row gets the eviction priority of `hits` uses at its last use.
    before: (db) => {
      db.function('quire_kv_move_priority', { deterministic: true }, (hits: unknown, lastUsedAt: unknown) =>
        priorityAfterUse(undefined, Math.max(1, Number(hits)), Number(lastUsedAt)),
      );
      db.exec(`
        INSERT OR IGNORE INTO ${KV_SCHEMA}.kv_blocks(id, model_fingerprint, token_hash, variant, codec, dtype, layers, kv_heads,
            head_dim, tokens, bytes, checksum, created_at, last_used_at, hits, priority)
          SELECT id, model_fingerprint, token_hash, variant, codec, dtype, layers, kv_heads, head_dim, tokens, bytes, checksum,
            created_at, last_used_at, hits, quire_kv_move_priority(hits, last_used_at)
          FROM main.kv_blocks;
        INSERT OR IGNORE INTO ${KV_SCHEMA}.kv_blobs(block_id, data)
          SELECT block_id, data FROM main.kv_blobs WHERE block_id IN (SELECT id FROM ${KV_SCHEMA}.kv_blocks);
      `);
    },
    up: (db) => {
      db.exec('DROP TABLE main.kv_blobs; DROP TABLE main.kv_blocks;');
      db.pragma('main.incremental_vacuum'); // the freed pages back to the disk (files made with auto_vacuum)
    },
  },
];

/** Tables each schema version up to 7 had, by which a Quire file from before application_id is recognised. */
export const LEGACY_TABLES: readonly { since: number; tables: readonly string[] }[] = [
  { since: 1, tables: ['folders', 'documents', 'passages', 'passages_fts'] },
  { since: 3, tables: ['kv_blocks', 'kv_blobs'] },
  { since: 4, tables: ['chats', 'messages', 'message_citations'] },
];
/** The last schema version whose files carry no application_id. */
export const LAST_UNMARKED_VERSION = 7;

export const SCHEMA_VERSION = MIGRATIONS[MIGRATIONS.length - 1].version;

/**
 * Runs the migrations after the database's user_version, up to `target` (tests stop early to
 * build old databases). Each migration and its version bump commit together or not at all.
 * From KV_FILE_MIGRATION on, the KV file must be attached (openDatabase does it). `onCommitted` hears of
 * each commit ('<version> before' for a migration's `before`, then '<version>'), for progress and
 * for the kill tests.
 */
export function migrate(db: Database.Database, target: number = SCHEMA_VERSION, onCommitted?: (step: string) => void): number {
  const current = db.pragma('user_version', { simple: true }) as number;
  if (current > SCHEMA_VERSION) {
    throw new Error(`database schema version ${current} is newer than this Quire (${SCHEMA_VERSION}); update Quire`);
  }
  for (const m of MIGRATIONS) {
    if (m.version <= current || m.version > target) continue;
    if (m.before) {
      db.transaction(() => m.before!(db)).immediate();
      onCommitted?.(`${m.version} before`);
    }
    db.transaction(() => {
      m.up(db);
      db.pragma(`user_version = ${m.version}`);
    }).immediate();
    onCommitted?.(String(m.version));
  }
  return db.pragma('user_version', { simple: true }) as number;
}
