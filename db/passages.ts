// Passages: the pieces of a document that are searched, cited and turned into KV blocks.
// The full-text indexes follow this table through triggers (migrations.ts); the trigram index
// holds only passages with substring_indexed = 1.
import type { Db } from './open.ts';
import { needsSubstringSearch } from './fts-query.ts';

/** The indexer's passages (electron/indexing/passages.ts) fit this shape as they are. */
export interface PassageInput {
  /** Document title plus the section's heading path. */
  title?: string | null;
  text: string;
  /** [charStart, charEnd) in the document's extracted text. */
  charStart: number;
  charEnd: number;
  /** 1-based page, where the format has pages. */
  page?: number | null;
  tokenCount?: number | null;
}

export interface Passage {
  id: number;
  documentId: number;
  ordinal: number;
  title: string | null;
  text: string;
  charStart: number;
  charEnd: number;
  page: number | null;
  tokenCount: number | null;
}

interface PassageRow {
  id: number;
  document_id: number;
  ordinal: number;
  title: string | null;
  text: string;
  char_start: number;
  char_end: number;
  page: number | null;
  token_count: number | null;
}

const toPassage = (r: PassageRow): Passage => ({
  id: r.id,
  documentId: r.document_id,
  ordinal: r.ordinal,
  title: r.title,
  text: r.text,
  charStart: r.char_start,
  charEnd: r.char_end,
  page: r.page,
  tokenCount: r.token_count,
});

/**
 * Replaces all passages of a document (ordinals 0..n-1, in the given order) in one transaction,
 * so a search never sees a document half re-indexed. Returns the new passage ids.
 */
export function replacePassages(db: Db, documentId: number, passages: readonly PassageInput[]): number[] {
  const remove = db.prepare('DELETE FROM passages WHERE document_id = ?');
  const insert = db.prepare(
    `INSERT INTO passages(document_id, ordinal, title, text, char_start, char_end, page, token_count, substring_indexed)
     VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`,
  );
  return db.transaction(() => {
    remove.run(documentId);
    return passages.map(
      (p, i) =>
        Number(
          insert.run(
            documentId,
            i,
            p.title ?? null,
            p.text,
            p.charStart,
            p.charEnd,
            p.page ?? null,
            p.tokenCount ?? null,
            // Only text in scripts without spaces goes into the trigram index (migration v5).
            needsSubstringSearch(p.text) ? 1 : 0,
          ).lastInsertRowid,
        ),
    );
  }).immediate();
}

export function getPassage(db: Db, id: number): Passage | undefined {
  const r = db.prepare('SELECT * FROM passages WHERE id = ?').get(id) as PassageRow | undefined;
  return r && toPassage(r);
}

/** A document's passages in order. */
export function listPassages(db: Db, documentId: number): Passage[] {
  return (db.prepare('SELECT * FROM passages WHERE document_id = ? ORDER BY ordinal').all(documentId) as PassageRow[]).map(
    toPassage,
  );
}

/** How many passages the folder's documents hold. */
export function countFolderPassages(db: Db, folderId: number): number {
  return db
    .prepare('SELECT COUNT(*) FROM passages p JOIN documents d ON d.id = p.document_id WHERE d.folder_id = ?')
    .pluck()
    .get(folderId) as number;
}

/** A passage's id and stored token count (0 when not known yet). */
export interface PassageSize {
  passageId: number;
  tokenCount: number;
}

/** The folder's passages, most recently modified documents first, in document order within each. */
export function listFolderPassagesNewestFirst(db: Db, folderId: number): PassageSize[] {
  return db
    .prepare(
      `SELECT p.id AS passageId, COALESCE(p.token_count, 0) AS tokenCount FROM passages p JOIN documents d ON d.id = p.document_id
       WHERE d.folder_id = ? ORDER BY d.mtime_ms DESC, d.id, p.ordinal`,
    )
    .all(folderId) as PassageSize[];
}

/** A passage's text with the title its block shows: its own (heading path), else its document's. */
export interface TitledPassage {
  passageId: number;
  title: string | null;
  text: string;
}

/** The passages with these ids, in the given order; ids no longer stored are left out. */
export function getTitledPassages(db: Db, ids: readonly number[]): TitledPassage[] {
  const rows = db
    .prepare(
      `SELECT p.id AS passageId, COALESCE(p.title, d.title) AS title, p.text FROM passages p
       JOIN documents d ON d.id = p.document_id WHERE p.id IN (SELECT value FROM json_each(?))`,
    )
    .all(JSON.stringify(ids)) as TitledPassage[];
  const byId = new Map(rows.map((r) => [r.passageId, r]));
  return ids.flatMap((id) => byId.get(id) ?? []);
}

/** Records a token count learnt later (e.g. when the passage is first tokenized for prefill). */
export function setPassageTokenCount(db: Db, id: number, tokenCount: number): void {
  db.prepare('UPDATE passages SET token_count = ? WHERE id = ?').run(tokenCount, id);
}
