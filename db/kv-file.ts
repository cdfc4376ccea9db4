// The KV blocks' own SQLite file, ATTACHed to every connection as schema `kv`: `quire-kv.db` next
// to `quire.db` (`<name>-kv.db` next to `<name>.db` in general).
//
// Why a file of its own: the library (folders, documents, passages, chats) is small and precious,
// the KV is large (up to the budget, 2 GiB by default) and can always be recomputed. Apart, the
// library file stays a few MB, quick to copy for a backup, to VACUUM and to integrity-check; the KV
// file can be deleted to clear the cache (it is recreated empty at the next start) or left out of
// backups. It is still SQLite with the same guarantees: WAL, each KvStore write one transaction
// (BEGIN IMMEDIATE takes both files' write locks; a commit that wrote only KV rows touches only
// this file). No transaction needs both files to commit together: KV rows reference nothing in the
// library (they are content-addressed by model fingerprint and token hash).
import fs from 'node:fs';
import type Database from 'better-sqlite3';

export const KV_SCHEMA = 'kv';

/**
 * PRAGMA application_id of Quire's KV files: "QuKV" in ASCII. Not the library's own id, so that
 * neither file is ever taken for the other (a KV file passed as --db is refused, and the reverse).
 */
export const QUIRE_KV_APPLICATION_ID = 0x51754b56;

interface KvMigration {
  version: number;
  name: string;
  up: (db: Database.Database) => void;
}

/** The KV file's schema, by PRAGMA kv.user_version, like the library's (never edit one that shipped). */
export const KV_MIGRATIONS: readonly KvMigration[] = [
  {
    version: 1,
    name: 'KV blocks and blobs, with an eviction priority',
    // Metadata and bytes in separate tables: touching a block on use rewrites a small row, not a
    // 3 MiB one, and stats/eviction scans never read blob pages. `priority` orders eviction
    // (kv-store.ts: log2 of the decayed use score plus the last use in half-lives). The file is
    // marked as Quire's KV file in the same transaction (identifyKvFile).
    up: (db) =>
      db.exec(`
        PRAGMA kv.application_id = ${QUIRE_KV_APPLICATION_ID};
        CREATE TABLE kv.kv_blocks (
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
          priority REAL NOT NULL,
          UNIQUE (model_fingerprint, token_hash, variant)
        );
        CREATE INDEX kv.kv_blocks_eviction ON kv_blocks(priority, last_used_at, id);
        CREATE TABLE kv.kv_blobs (
          block_id INTEGER PRIMARY KEY REFERENCES kv_blocks(id) ON DELETE CASCADE,
          data BLOB NOT NULL
        );
      `),
  },
  {
    version: 2,
    name: "each passage's block key per model, for exact coverage (passage-keys.ts)",
    // Here and not in the library: a passage's key is derived from its text by the model's
    // tokenizer, recomputable like the blocks, and only means something next to them; it shares
    // their lifecycle (deleting this file clears both, and coverage is then truly 0), it commits
    // with the block it describes, and the library keeps only the user's own data. Passage ids are
    // AUTOINCREMENT in the library, so the row of a deleted passage can never name another one; it
    // is ignored by every join with the passages, and after indexing its key is carried over to a
    // new passage with the same block text (by text_hash), then pruned.
    up: (db) =>
      db.exec(`
        CREATE TABLE kv.passage_keys (
          model_fingerprint TEXT NOT NULL,
          passage_id INTEGER NOT NULL,
          token_hash TEXT NOT NULL,
          -- the block's tokens (title line included): what its KV will cost, before it is computed
          tokens INTEGER NOT NULL,
          -- SHA-256 of the block's text: a re-indexed passage with the same text gets the same key
          text_hash TEXT NOT NULL,
          PRIMARY KEY (model_fingerprint, passage_id)
        ) WITHOUT ROWID;
        CREATE INDEX kv.passage_keys_text ON passage_keys(model_fingerprint, text_hash);
      `),
  },
];

export const KV_SCHEMA_VERSION = KV_MIGRATIONS[KV_MIGRATIONS.length - 1].version;

/** Where the KV file of a library file lives. */
export function kvFileFor(libraryFile: string): string {
  if (libraryFile === ':memory:' || libraryFile === '') return libraryFile;
  return libraryFile.endsWith('.db') ? `${libraryFile.slice(0, -3)}-kv.db` : `${libraryFile}-kv.db`;
}

/** What the file at a KV file's path is (open.ts decides whether to open it). */
export type KvFileIdentity =
  | { kind: 'empty' } // Quire makes it its KV file
  | { kind: 'kv'; version: number }
  | { kind: 'damaged' } // not SQLite: a broken cache, moved aside by attachKvFile
  | { kind: 'foreign'; why: string };

/** Reads (never writes), through `probe`, a read-only connection to the file, whose file it is. */
export function identifyKvFile(probe: Database.Database): KvFileIdentity {
  let applicationId: number;
  let version: number;
  let tables: number;
  try {
    applicationId = probe.pragma('application_id', { simple: true }) as number;
    version = probe.pragma('user_version', { simple: true }) as number;
    tables = probe.prepare("SELECT COUNT(*) FROM sqlite_master WHERE type = 'table'").pluck().get() as number;
  } catch (e) {
    const code = (e as { code?: string }).code;
    if (code === 'SQLITE_NOTADB' || code === 'SQLITE_CORRUPT') return { kind: 'damaged' };
    throw e;
  }
  if (applicationId === QUIRE_KV_APPLICATION_ID) return { kind: 'kv', version };
  if (applicationId === 0 && version === 0 && tables === 0) return { kind: 'empty' };
  if (applicationId !== 0) return { kind: 'foreign', why: `it belongs to another program (application id 0x${(applicationId >>> 0).toString(16)})` };
  return { kind: 'foreign', why: "it is a SQLite database of another program (it is not marked as Quire's KV file)" };
}

/**
 * ATTACHes the KV file of `libraryFile` as schema `kv` and brings its schema up to date (writers).
 * A read-only connection attaches it read-only, and only if it exists (search needs no KV).
 * Whose file it is and its version were checked before (open.ts: a foreign or newer file is
 * refused before anything is written).
 * A writer that finds it damaged (not SQLite, or corrupt) moves it aside as
 * `<file>.broken-<time>` and starts an empty one: it is a cache, and the library must still open.
 * Returns whether it was attached.
 */
export function attachKvFile(db: Database.Database, libraryFile: string, options: { readonly: boolean }): boolean {
  try {
    return attach(db, libraryFile, options);
  } catch (err) {
    const code = (err as { code?: string }).code;
    if (options.readonly || (code !== 'SQLITE_NOTADB' && code !== 'SQLITE_CORRUPT')) throw err;
    const file = kvFileFor(libraryFile);
    if (db.prepare(`SELECT 1 FROM pragma_database_list WHERE name = ?`).get(KV_SCHEMA)) db.exec(`DETACH DATABASE ${KV_SCHEMA}`);
    const aside = `${file}.broken-${Date.now()}`;
    for (const suffix of ['', '-wal', '-shm']) if (fs.existsSync(file + suffix)) fs.renameSync(file + suffix, aside + suffix);
    return attach(db, libraryFile, options);
  }
}

function attach(db: Database.Database, libraryFile: string, options: { readonly: boolean }): boolean {
  const file = kvFileFor(libraryFile);
  if (options.readonly && file !== libraryFile && !fs.existsSync(file)) return false;
  db.prepare(`ATTACH DATABASE ? AS ${KV_SCHEMA}`).run(file);
  if (options.readonly) return true;
  // Both take effect only on a new file, before the first table. 64 KiB pages: a 3 MiB blob is 48
  // overflow pages instead of 768, which made loading 16 blocks ~20% faster (bench/kv.ts); the
  // library keeps SQLite's 4 KiB. auto_vacuum lets a lowered budget give pages back.
  db.pragma(`${KV_SCHEMA}.page_size = 65536`);
  db.pragma(`${KV_SCHEMA}.auto_vacuum = INCREMENTAL`);
  db.pragma(`${KV_SCHEMA}.journal_mode = WAL`);
  // As for the library: in WAL mode NORMAL never corrupts the file; a power cut may lose the last
  // commits, and lost KV entries are recomputed.
  db.pragma(`${KV_SCHEMA}.synchronous = NORMAL`);
  const current = db.pragma(`${KV_SCHEMA}.user_version`, { simple: true }) as number;
  for (const m of KV_MIGRATIONS) {
    if (m.version <= current) continue;
    db.transaction(() => {
      m.up(db);
      db.pragma(`${KV_SCHEMA}.user_version = ${m.version}`);
    }).immediate();
  }
  return true;
}
