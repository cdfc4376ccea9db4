// Retrieval for a question: the search view's ranking (db/search.ts: content words, BM25 over text
// and titles, quoted phrases required, one passage per document while other documents have hits),
// as the passages a prompt's blocks are made of. Best score first.
import type { Db } from '../../db/open.ts';
import { searchPassages } from '../../db/search.ts';

export const DEFAULT_TOP_K = 10;

export interface RetrievedPassage {
  passageId: number;
  documentId: number;
  path: string;
  /** Passage title (document title + heading path), else the document's title. */
  title: string | null;
  text: string;
  page: number | null;
  charStart: number;
  charEnd: number;
  score: number;
}

export interface RetrieveOptions {
  /** Passages to return (default 10). */
  k?: number;
  /** Most passages from one document while others have hits (default: the search ranking's, 1). */
  perDocument?: number;
  folderId?: number;
}

export function retrieve(db: Db, question: string, options: RetrieveOptions = {}): RetrievedPassage[] {
  const hits = searchPassages(db, question, {
    limit: options.k ?? DEFAULT_TOP_K,
    perDocument: options.perDocument,
    folderId: options.folderId,
  });
  return hits.map((h) => ({
    passageId: h.passageId,
    documentId: h.documentId,
    path: h.path,
    title: h.passageTitle ?? h.title,
    text: h.text,
    page: h.page,
    charStart: h.charStart,
    charEnd: h.charEnd,
    score: h.score,
  }));
}
