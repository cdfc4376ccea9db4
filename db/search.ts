// Full-text search over passages: bm25-ranked hits with a highlighted snippet.
// Word search (porter stemming, diacritics folded) by default; text in scripts written without
// spaces (Chinese, Japanese, Thai...) goes to the trigram index, which finds any substring of 3+
// characters. Shorter such terms cannot use trigrams, so they are found with LIKE over the
// passages (a full scan: acceptable for a rare, short query; ranked by occurrence count).
// The trigram index holds only passages that contain such text (passages.substring_indexed).
import type { Db } from './open.ts';
import {
  charLength,
  ftsMatchExpression,
  needsSubstringSearch,
  parseSearchQuery,
  type SearchTerm,
  type TermMatch,
} from './fts-query.ts';

/** Default highlight marks: control characters that never occur in extracted text and need no escaping. */
export const HIGHLIGHT_OPEN = '\u0002';
export const HIGHLIGHT_CLOSE = '\u0003';
const ELLIPSIS = '…';

export interface SearchOptions {
  /** Most hits to return (default 20). */
  limit?: number;
  /** Only passages of documents under this folder. */
  folderId?: number;
  /** 'all' terms (a search box, the default) or 'any' term (retrieval for a question, ranked by bm25). */
  match?: TermMatch;
  /** Strings around highlighted words in `snippet` (default HIGHLIGHT_OPEN / HIGHLIGHT_CLOSE). */
  marks?: { open: string; close: string };
}

export interface SearchHit {
  passageId: number;
  documentId: number;
  path: string;
  /** The document's title. */
  title: string | null;
  /** The passage's title (document title plus heading path), where the indexer gave one. */
  passageTitle: string | null;
  page: number | null;
  ordinal: number;
  text: string;
  /** A short extract around the matches, with matches between the marks. */
  snippet: string;
  /** The whole passage text with every match between the marks. */
  highlighted: string;
  /** Higher is better; comparable only within one result list. */
  score: number;
  /** Which index answered: word (porter), substring (trigram) or scan (LIKE). */
  method: 'word' | 'substring' | 'scan';
}

/** A row as the queries return it: a hit before its rank becomes a score. */
type HitRow = Omit<SearchHit, 'score' | 'method'> & { rank: number };

interface Resolved {
  limit: number;
  folderId: number | null;
  match: TermMatch;
  marks: { open: string; close: string };
}

const SELECT_HIT = `p.id AS passageId, p.document_id AS documentId, d.path, d.title, p.title AS passageTitle, p.page, p.ordinal, p.text`;

function ftsSearch(
  db: Db,
  table: 'passages_fts' | 'passages_trigram',
  expr: string,
  o: Resolved,
  snippetTokens: number,
  onlyWithoutSubstringIndex = false,
): HitRow[] {
  // table is one of two constants, never user text; the user's words travel as a bound parameter.
  return db
    .prepare(
      `SELECT ${SELECT_HIT}, snippet(${table}, 0, @open, @close, @ellipsis, @tokens) AS snippet,
         highlight(${table}, 0, @open, @close) AS highlighted, bm25(${table}) AS rank
       FROM ${table} JOIN passages p ON p.id = ${table}.rowid JOIN documents d ON d.id = p.document_id
       WHERE ${table} MATCH @expr AND (@folderId IS NULL OR d.folder_id = @folderId)
         ${onlyWithoutSubstringIndex ? 'AND p.substring_indexed = 0' : ''}
       ORDER BY rank LIMIT @limit`,
    )
    .all({
      expr,
      open: o.marks.open,
      close: o.marks.close,
      ellipsis: ELLIPSIS,
      tokens: snippetTokens,
      folderId: o.folderId,
      limit: o.limit,
    }) as HitRow[];
}

const escapeLike = (s: string) => s.replace(/[\\%_]/g, (c) => `\\${c}`);

function occurrences(haystack: string, needle: string): number[] {
  const at: number[] = [];
  for (let i = haystack.indexOf(needle); i >= 0; i = haystack.indexOf(needle, i + needle.length)) at.push(i);
  return at;
}

/**
 * Text for case-insensitive search whose offsets still index the original: lower-casing, unless
 * that changes the length (e.g. 'İ'), in which case matching stays case-sensitive.
 */
function caseless(text: string): { haystack: string; fold: (s: string) => string } {
  const lower = text.toLowerCase();
  return lower.length === text.length ? { haystack: lower, fold: (s) => s.toLowerCase() } : { haystack: text, fold: (s) => s };
}

/** A window of text around the first match with every match marked, for the LIKE path. */
function scanSnippet(text: string, needles: string[], marks: { open: string; close: string }, radius: number): string {
  const { haystack, fold } = caseless(text);
  const spans = needles
    .flatMap((n) => occurrences(haystack, fold(n)).map((s) => [s, s + n.length] as const))
    .sort((a, b) => a[0] - b[0]);
  if (spans.length === 0) return text.slice(0, 2 * radius);
  const from = Math.max(0, spans[0][0] - radius);
  const to = Math.min(text.length, spans[0][1] + radius);
  let out = from > 0 ? ELLIPSIS : '';
  let at = from;
  for (const [s, e] of spans) {
    if (s < at || e > to) continue; // overlapping or outside the window
    out += text.slice(at, s) + marks.open + text.slice(s, e) + marks.close;
    at = e;
  }
  return out + text.slice(at, to) + (to < text.length ? ELLIPSIS : '');
}

function scanSearch(db: Db, terms: SearchTerm[], o: Resolved): HitRow[] {
  const needles = terms.map((t) => t.text);
  const like = needles.map(() => `p.text LIKE ? ESCAPE '\\'`).join(o.match === 'all' ? ' AND ' : ' OR ');
  const rows = db
    .prepare(
      `SELECT ${SELECT_HIT} FROM passages p JOIN documents d ON d.id = p.document_id
       WHERE (${like}) AND (? IS NULL OR d.folder_id = ?)`,
    )
    .all(...needles.map((n) => `%${escapeLike(n)}%`), o.folderId, o.folderId) as Omit<HitRow, 'snippet' | 'highlighted' | 'rank'>[];
  return rows
    .map((r) => {
      const { haystack, fold } = caseless(r.text);
      const count = needles.reduce((s, n) => s + occurrences(haystack, fold(n)).length, 0);
      return {
        ...r,
        snippet: scanSnippet(r.text, needles, o.marks, 40),
        highlighted: scanSnippet(r.text, needles, o.marks, r.text.length),
        rank: -count,
      };
    })
    .sort((a, b) => a.rank - b.rank || a.passageId - b.passageId)
    .slice(0, o.limit);
}

/**
 * Passages matching the user's text, best first. Never throws on what the user typed: the text is
 * parsed into terms (fts-query.ts) and only quoted FTS5 strings reach MATCH. No terms, no hits.
 */
export function searchPassages(db: Db, query: string, options: SearchOptions = {}): SearchHit[] {
  const o: Resolved = {
    limit: options.limit ?? 20,
    folderId: options.folderId ?? null,
    match: options.match ?? 'all',
    marks: options.marks ?? { open: HIGHLIGHT_OPEN, close: HIGHLIGHT_CLOSE },
  };
  const terms = parseSearchQuery(query);
  if (terms.length === 0 || o.limit <= 0) return [];
  const scored = (rows: HitRow[], method: SearchHit['method']) => rows.map(({ rank, ...r }) => ({ ...r, score: -rank, method }));
  if (!needsSubstringSearch(query)) {
    return scored(ftsSearch(db, 'passages_fts', ftsMatchExpression(terms, o.match)!, o, 24), 'word');
  }
  if (!terms.every((t) => charLength(t.text) >= 3)) return scored(scanSearch(db, terms, o), 'scan');
  // Trigram matching is substring matching already, so a trailing * adds nothing.
  const plain = terms.map((t) => ({ ...t, prefix: false }));
  const hits = scored(ftsSearch(db, 'passages_trigram', ftsMatchExpression(plain, o.match)!, o, 48), 'substring');
  // The trigram index holds only passages that need substring search (migration v5). With 'all',
  // a hit contains a term in such a script, so it is one of them. With 'any', a term in a spaced
  // script (e.g. "Tokyo" in "東京 Tokyo") may match the other passages: word search finds those.
  const wordTerms = o.match === 'any' ? terms.filter((t) => !needsSubstringSearch(t.text)) : [];
  if (wordTerms.length === 0) return hits;
  const more = scored(ftsSearch(db, 'passages_fts', ftsMatchExpression(wordTerms, 'any')!, o, 24, true), 'word');
  // bm25 from two indexes: comparable enough to interleave one result list.
  return [...hits, ...more].sort((a, b) => b.score - a.score || a.passageId - b.passageId).slice(0, o.limit);
}

/** A snippet cut into plain and highlighted runs, for renderers that must not inject markup. */
export function highlightParts(
  snippet: string,
  marks: { open: string; close: string } = { open: HIGHLIGHT_OPEN, close: HIGHLIGHT_CLOSE },
): { text: string; highlighted: boolean }[] {
  const parts: { text: string; highlighted: boolean }[] = [];
  let rest = snippet;
  while (rest.length > 0) {
    const s = rest.indexOf(marks.open);
    if (s < 0) break;
    const e = rest.indexOf(marks.close, s + marks.open.length);
    if (e < 0) break;
    if (s > 0) parts.push({ text: rest.slice(0, s), highlighted: false });
    parts.push({ text: rest.slice(s + marks.open.length, e), highlighted: true });
    rest = rest.slice(e + marks.close.length);
  }
  if (rest.length > 0) parts.push({ text: rest, highlighted: false });
  return parts;
}
