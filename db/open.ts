// Opening Quire's database file: the pragmas every connection needs, then the migrations.
import Database from 'better-sqlite3';
import { attachKvFile } from './kv-file.ts';
import { migrate, SCHEMA_VERSION } from './migrations.ts';

export type Db = Database.Database;

export interface OpenOptions {
  /** Open without writing: no migrations; fails if the file does not exist. */
  readonly?: boolean;
  /** Milliseconds to wait for the writer's lock before SQLITE_BUSY (default 5000). */
  busyTimeoutMs?: number;
  /** Hears of each migration commit (see migrate). */
  onMigrationCommitted?: (step: string) => void;
}

/**
 * Opens (creating if needed) the database at `file` with its KV file attached as schema `kv`
 * (kv-file.ts), and brings both schemas up to date.
 * Quire has one writer (the engine process); other connections may read at any time and, in WAL
 * mode, see only committed transactions.
 */
export function openDatabase(file: string, options: OpenOptions = {}): Db {
  const db = new Database(file, { readonly: options.readonly ?? false, fileMustExist: options.readonly ?? false });
  try {
    db.pragma(`busy_timeout = ${options.busyTimeoutMs ?? 5000}`);
    db.pragma('foreign_keys = ON');
    if (!options.readonly) {
      // Only takes effect on a new, empty file: lets a lowered KV budget give pages back to the disk.
      db.pragma('auto_vacuum = INCREMENTAL');
      db.pragma('journal_mode = WAL');
      // In WAL mode NORMAL never corrupts the file: a crash of the process loses nothing that
      // committed, and a power cut may lose only the last commits (KV entries get recomputed).
      db.pragma('synchronous = NORMAL');
      attachKvFile(db, file, { readonly: false });
      migrate(db, SCHEMA_VERSION, options.onMigrationCommitted);
    } else {
      const version = db.pragma('user_version', { simple: true }) as number;
      if (version !== SCHEMA_VERSION) {
        throw new Error(`database schema is version ${version}, this Quire reads ${SCHEMA_VERSION}; open it for writing once to migrate`);
      }
      attachKvFile(db, file, { readonly: true });
    }
    return db;
  } catch (e) {
    db.close();
    throw e;
  }
}
