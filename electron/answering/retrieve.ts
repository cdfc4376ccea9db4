// Retrieval for a question: the question cleaned into search terms (stop words dropped, quoted
// phrases kept, prefix matching for longer words), FTS5/BM25 over the passages with any-term
// matching, then a per-document cap so one long file cannot fill every slot. Best score first.
import type { Db } from '../../db/open.ts';
import { parseSearchQuery } from '../../db/fts-query.ts';
import { searchPassages } from '../../db/search.ts';

export const DEFAULT_TOP_K = 10;
export const DEFAULT_PER_DOCUMENT = 3;

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
  /** Most passages from one document (default 3; at least 1). */
  perDocument?: number;
  folderId?: number;
}

// English function words and question words: they match nearly every passage and only add noise
// to an any-term BM25 query.
const STOP_WORDS = new Set(
  `a about above after again against all am an and any are as at be because been before being below
  between both but by can could did do does doing down during each few for from further had has have
  having he her here hers herself him himself his how i if in into is it its itself just me more most
  my myself no nor not now of off on once only or other our ours ourselves out over own same she should
  so some such than that the their theirs them themselves then there these they this those through to
  too under until up very was we were what when where which while who whom why will with would you
  your yours yourself yourselves tell explain describe please give list say said does did use`.split(/\s+/),
);

/** Words at least this long match as prefixes (porter already folds most inflections). */
const PREFIX_MIN_LENGTH = 5;

/** The question as search text for searchPassages: quoted phrases kept, stop words dropped, prefixes for long words. */
export function questionToQuery(question: string): string {
  const terms = parseSearchQuery(question.replace(/[?!.,;:]+(\s|$)/g, ' '));
  const kept = terms.filter((t) => t.phrase || !STOP_WORDS.has(t.text.toLowerCase()));
  // a question made only of stop words still searches for them rather than for nothing
  const use = kept.length > 0 ? kept : terms;
  return use
    .map((t) => {
      if (t.phrase) return `"${t.text}"${t.prefix ? '*' : ''}`;
      const prefix = t.prefix || [...t.text].length >= PREFIX_MIN_LENGTH;
      return `${t.text}${prefix ? '*' : ''}`;
    })
    .join(' ');
}

export function retrieve(db: Db, question: string, options: RetrieveOptions = {}): RetrievedPassage[] {
  const k = options.k ?? DEFAULT_TOP_K;
  const cap = Math.max(1, options.perDocument ?? DEFAULT_PER_DOCUMENT);
  if (k <= 0) return [];
  const query = questionToQuery(question);
  if (!query) return [];
  // over-fetch so the cap can skip crowded documents and still fill k slots
  const hits = searchPassages(db, query, { limit: k * 5 + 20, folderId: options.folderId, match: 'any' });
  const perDoc = new Map<number, number>();
  const chosen = [];
  for (const h of hits) {
    const n = perDoc.get(h.documentId) ?? 0;
    if (n >= cap) continue;
    perDoc.set(h.documentId, n + 1);
    chosen.push(h);
    if (chosen.length >= k) break;
  }
  if (chosen.length === 0) return [];
  const ranges = new Map(
    (
      db
        .prepare('SELECT id, char_start AS charStart, char_end AS charEnd FROM passages WHERE id IN (SELECT value FROM json_each(?))')
        .all(JSON.stringify(chosen.map((h) => h.passageId))) as { id: number; charStart: number; charEnd: number }[]
    ).map((r) => [r.id, r]),
  );
  return chosen.map((h) => ({
    passageId: h.passageId,
    documentId: h.documentId,
    path: h.path,
    title: h.passageTitle ?? h.title,
    text: h.text,
    page: h.page,
    charStart: ranges.get(h.passageId)?.charStart ?? 0,
    charEnd: ranges.get(h.passageId)?.charEnd ?? h.text.length,
    score: h.score,
  }));
}
