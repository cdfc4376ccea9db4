// Opening Quire's database file: first whose file it is and which schema it has (read without
// writing anything), then the pragmas every connection needs, then the migrations. A file another
// program owns, or one a newer Quire wrote, is refused before a single byte of it changes (no
// WAL switch, no migration): the message says what to do instead. The same holds for the KV file
// beside it (kv-file.ts), checked before the library is opened for writing.
import fs from 'node:fs';
import Database from 'better-sqlite3';
import { attachKvFile, identifyKvFile, kvFileFor, KV_SCHEMA_VERSION, QUIRE_KV_APPLICATION_ID, type KvFileIdentity } from './kv-file.ts';
import { LAST_UNMARKED_VERSION, LEGACY_TABLES, migrate, QUIRE_APPLICATION_ID, SCHEMA_VERSION } from './migrations.ts';

export type Db = Database.Database;

export interface OpenOptions {
  /** Open without writing: no migrations; fails if the file does not exist. */
  readonly?: boolean;
  /** Milliseconds to wait for the writer's lock before SQLITE_BUSY (default 5000). */
  busyTimeoutMs?: number;
  /** Hears of each migration commit (see migrate). */
  onMigrationCommitted?: (step: string) => void;
}

/** Why a database file was not opened; nothing in it was changed. */
export class DatabaseRefused extends Error {
  constructor(
    readonly reason: 'foreign' | 'newer' | 'older',
    message: string,
  ) {
    super(message);
    this.name = 'DatabaseRefused';
  }
}

/** What a file is: empty (Quire may make it its own), Quire's at some schema version, or another program's. */
export type DatabaseIdentity = { kind: 'empty' } | { kind: 'quire'; version: number } | { kind: 'foreign'; why: string };

/**
 * Opens (creating if needed) the database at `file` with its KV file attached as schema `kv`
 * (kv-file.ts), and brings both schemas up to date.
 * Quire has one writer (the engine process); other connections may read at any time and, in WAL
 * mode, see only committed transactions.
 */
export function openDatabase(file: string, options: OpenOptions = {}): Db {
  const readonly = options.readonly ?? false;
  const busyTimeoutMs = options.busyTimeoutMs ?? 5000;
  if (!readonly && hasContent(file)) {
    // Looked at through a read-only connection, so refusing it writes nothing.
    withProbe(file, busyTimeoutMs, (probe) => checkOpenable(file, identify(probe), false));
  }
  // The KV file too, before the library is opened for writing: refusing either changes neither.
  const kvFile = kvFileFor(file);
  const kvIdentity = kvFile !== file && hasContent(kvFile) ? withProbe(kvFile, busyTimeoutMs, identifyKvFile) : { kind: 'empty' as const };
  checkKvOpenable(kvFile, kvIdentity, readonly);
  const db = new Database(file, { readonly, fileMustExist: readonly });
  try {
    db.pragma(`busy_timeout = ${busyTimeoutMs}`);
    db.pragma('foreign_keys = ON');
    if (readonly) {
      checkOpenable(file, identify(db), true);
      // Only a KV file at this version; a missing or damaged one (left for the next writer to move
      // aside) is not attached: search needs no KV.
      if (kvIdentity.kind === 'kv') attachKvFile(db, file, { readonly: true });
    } else {
      // Only takes effect on a new, empty file: lets a lowered KV budget give pages back to the disk.
      db.pragma('auto_vacuum = INCREMENTAL');
      db.pragma('journal_mode = WAL');
      // In WAL mode NORMAL never corrupts the file: a crash of the process loses nothing that
      // committed, and a power cut may lose only the last commits (KV entries get recomputed).
      db.pragma('synchronous = NORMAL');
      attachKvFile(db, file, { readonly: false });
      migrate(db, SCHEMA_VERSION, options.onMigrationCommitted);
    }
    return db;
  } catch (e) {
    db.close();
    throw e;
  }
}

/** Runs `look` on a read-only connection to `file`, closed after. */
function withProbe<T>(file: string, busyTimeoutMs: number, look: (probe: Db) => T): T {
  const probe = new Database(file, { readonly: true, fileMustExist: true });
  try {
    probe.pragma(`busy_timeout = ${busyTimeoutMs}`);
    return look(probe);
  } finally {
    probe.close();
  }
}

/** Reads (never writes) whose file this is. */
export function identify(db: Db): DatabaseIdentity {
  let applicationId: number;
  let version: number;
  let tables: Set<string>;
  try {
    applicationId = db.pragma('application_id', { simple: true }) as number;
    version = db.pragma('user_version', { simple: true }) as number;
    tables = new Set(db.prepare("SELECT name FROM sqlite_master WHERE type = 'table'").pluck().all() as string[]);
  } catch (e) {
    if ((e as { code?: string }).code === 'SQLITE_NOTADB') return { kind: 'foreign', why: 'it is not a SQLite database' };
    throw e;
  }
  if (applicationId === QUIRE_APPLICATION_ID) return { kind: 'quire', version };
  if (applicationId === QUIRE_KV_APPLICATION_ID) return { kind: 'foreign', why: "it is Quire's KV file (the cache beside a library), not a library" };
  if (applicationId !== 0) return { kind: 'foreign', why: `it belongs to another program (application id 0x${(applicationId >>> 0).toString(16)})` };
  if (version === 0 && tables.size === 0) return { kind: 'empty' };
  // Quire's files from before migration 8 are known by their schema version and its tables.
  const expected = LEGACY_TABLES.filter((t) => t.since <= version).flatMap((t) => t.tables);
  if (version >= 1 && version <= LAST_UNMARKED_VERSION && expected.every((t) => tables.has(t))) return { kind: 'quire', version };
  return { kind: 'foreign', why: 'it is a SQLite database of another program (its tables are not Quire\'s)' };
}

function checkOpenable(file: string, identity: DatabaseIdentity, readonly: boolean): void {
  const elsewhere = 'choose another database file (--db PATH for the CLI, QUIRE_DB for the app)';
  if (identity.kind === 'foreign') {
    throw new DatabaseRefused('foreign', `${file} is not a Quire database: ${identity.why}. It was left untouched; ${elsewhere}.`);
  }
  const version = identity.kind === 'quire' ? identity.version : 0;
  if (version > SCHEMA_VERSION) {
    throw new DatabaseRefused(
      'newer',
      `${file} was written by a newer Quire (schema ${version}; this Quire reads up to ${SCHEMA_VERSION}). It was left untouched: ` +
        `update Quire to open it, or ${elsewhere}.`,
    );
  }
  if (readonly && version !== SCHEMA_VERSION) {
    throw new DatabaseRefused(
      'older',
      `${file} has schema ${version}, this Quire reads ${SCHEMA_VERSION}: run "quire index" (or open the app) once to upgrade it.`,
    );
  }
}

/** The KV file beside the library: another program's file or a newer Quire's is refused like the library. */
function checkKvOpenable(file: string, identity: KvFileIdentity, readonly: boolean): void {
  if (identity.kind === 'foreign') {
    throw new DatabaseRefused(
      'foreign',
      `${file} is not a Quire KV file: ${identity.why}. It and its library were left untouched; move it away, ` +
        `or choose another database file (--db PATH for the CLI, QUIRE_DB for the app).`,
    );
  }
  const version = identity.kind === 'kv' ? identity.version : 0;
  if (version > KV_SCHEMA_VERSION) {
    throw new DatabaseRefused(
      'newer',
      `${file} was written by a newer Quire (KV schema ${version}; this Quire reads up to ${KV_SCHEMA_VERSION}). ` +
        `It and its library were left untouched: update Quire, or delete it (it is a cache, recomputed as needed).`,
    );
  }
  if (readonly && identity.kind === 'kv' && version !== KV_SCHEMA_VERSION) {
    throw new DatabaseRefused(
      'older',
      `${file} has KV schema ${version}, this Quire reads ${KV_SCHEMA_VERSION}: run "quire index" (or open the app) once to upgrade it.`,
    );
  }
}

/** An existing file with bytes in it (an empty file is a new database to SQLite). */
function hasContent(file: string): boolean {
  try {
    return fs.statSync(file).size > 0;
  } catch {
    return false;
  }
}
