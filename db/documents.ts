// Documents: one row per indexed file, with what the indexer needs to tell whether it changed
// (size, mtime, content hash) and how its last indexing went (status, error).
import type { Db } from './open.ts';

/** As the indexer's parse results: skipped by policy, failed when it should have worked. */
export type DocumentStatus = 'pending' | 'indexed' | 'failed' | 'skipped';

export interface DocumentRecord {
  id: number;
  folderId: number;
  path: string;
  size: number;
  mtimeMs: number;
  contentHash: string | null;
  title: string | null;
  parser: string | null;
  status: DocumentStatus;
  error: string | null;
  indexedAt: number | null;
}

/** What the indexer knows about a file; `path` is the key. */
export interface DocumentInput {
  folderId: number;
  path: string;
  size: number;
  mtimeMs: number;
  contentHash?: string | null;
  title?: string | null;
  parser?: string | null;
  status?: DocumentStatus;
  error?: string | null;
  indexedAt?: number | null;
}

interface DocumentRow {
  id: number;
  folder_id: number;
  path: string;
  size: number;
  mtime_ms: number;
  content_hash: string | null;
  title: string | null;
  parser: string | null;
  status: DocumentStatus;
  error: string | null;
  indexed_at: number | null;
}

const toDocument = (r: DocumentRow): DocumentRecord => ({
  id: r.id,
  folderId: r.folder_id,
  path: r.path,
  size: r.size,
  mtimeMs: r.mtime_ms,
  contentHash: r.content_hash,
  title: r.title,
  parser: r.parser,
  status: r.status,
  error: r.error,
  indexedAt: r.indexed_at,
});

/** Inserts or updates the document at `input.path`, keeping its id (and so its passages). */
export function upsertDocument(db: Db, input: DocumentInput): DocumentRecord {
  const r = db
    .prepare(
      `INSERT INTO documents(folder_id, path, size, mtime_ms, content_hash, title, parser, status, error, indexed_at)
       VALUES (@folderId, @path, @size, @mtimeMs, @contentHash, @title, @parser, @status, @error, @indexedAt)
       ON CONFLICT(path) DO UPDATE SET
         folder_id = excluded.folder_id, size = excluded.size, mtime_ms = excluded.mtime_ms,
         content_hash = excluded.content_hash, title = excluded.title, parser = excluded.parser,
         status = excluded.status, error = excluded.error, indexed_at = excluded.indexed_at
       RETURNING *`,
    )
    .get({
      folderId: input.folderId,
      path: input.path,
      size: input.size,
      mtimeMs: Math.round(input.mtimeMs),
      contentHash: input.contentHash ?? null,
      title: input.title ?? null,
      parser: input.parser ?? null,
      status: input.status ?? 'pending',
      error: input.error ?? null,
      indexedAt: input.indexedAt ?? null,
    }) as DocumentRow;
  return toDocument(r);
}

export function getDocument(db: Db, id: number): DocumentRecord | undefined {
  const r = db.prepare('SELECT * FROM documents WHERE id = ?').get(id) as DocumentRow | undefined;
  return r && toDocument(r);
}

export function getDocumentByPath(db: Db, path: string): DocumentRecord | undefined {
  const r = db.prepare('SELECT * FROM documents WHERE path = ?').get(path) as DocumentRow | undefined;
  return r && toDocument(r);
}

export function listDocuments(db: Db, filter: { folderId?: number; status?: DocumentStatus } = {}): DocumentRecord[] {
  const rows = db
    .prepare(
      `SELECT * FROM documents
       WHERE (@folderId IS NULL OR folder_id = @folderId) AND (@status IS NULL OR status = @status)
       ORDER BY path`,
    )
    .all({ folderId: filter.folderId ?? null, status: filter.status ?? null }) as DocumentRow[];
  return rows.map(toDocument);
}

/** A file touched but not changed: only its size and mtime move. */
export function setDocumentStat(db: Db, id: number, size: number, mtimeMs: number): void {
  db.prepare('UPDATE documents SET size = ?, mtime_ms = ? WHERE id = ?').run(size, Math.round(mtimeMs), id);
}

/** A renamed file: the document (and so its passages) moves to `path`. */
export function moveDocument(db: Db, id: number, path: string): void {
  db.prepare('UPDATE documents SET path = ? WHERE id = ?').run(path, id);
}

/** Records the outcome of indexing; `indexed` also stamps indexedAt. */
export function setDocumentStatus(
  db: Db,
  id: number,
  status: DocumentStatus,
  error: string | null = null,
  now: number = Date.now(),
): void {
  db.prepare(
    `UPDATE documents SET status = ?, error = ?, indexed_at = CASE WHEN ? = 'indexed' THEN ? ELSE indexed_at END
     WHERE id = ?`,
  ).run(status, error, status, now, id);
}

/** Removes a document and its passages (cascade); returns whether it existed. */
export function deleteDocument(db: Db, id: number): boolean {
  return db.prepare('DELETE FROM documents WHERE id = ?').run(id).changes > 0;
}
