// Full-text search over passages: the one retrieval ranking of the search view, `quire search` and
// `quire ask`. The text typed (a question, keywords, "phrases", operators) is read by fts-query.ts;
// here it is matched and ranked.
//
// Word search (porter stemming, diacritics folded): a hit needs one content word (or all of them in
// the all-words mode) and every required phrase or +word; BM25 ranks the hits, with the passage's
// title (document title + heading path) weighed apart from its text; at most `perDocument` hits
// come from one document, so one long file cannot fill every slot. Snippets mark the content words
// that matched, never the dropped stop words.
// Text in scripts written without spaces (Chinese, Japanese, Thai...) goes to the trigram index,
// which finds any substring of 3+ characters. Shorter such terms cannot use trigrams, so they are
// found with LIKE over the passages (a full scan: acceptable for a rare, short query; ranked by
// occurrence count). The trigram index holds only passages that contain such text
// (passages.substring_indexed).
import type { Db } from './open.ts';
import {
  charLength,
  DEFAULT_QUERY_TUNING,
  ftsExpressions,
  needsSubstringSearch,
  parseSearchQuery,
  type FtsExpressions,
  type QueryTuning,
  type SearchTerm,
  type TermMatch,
} from './fts-query.ts';

/** Default highlight marks: control characters that never occur in extracted text and need no escaping. */
export const HIGHLIGHT_OPEN = '\u0002';
export const HIGHLIGHT_CLOSE = '\u0003';
const ELLIPSIS = '…';

/** The ranking's tunable parts; defaults from bench:retrieval (docs/BENCHMARKS.md). */
export interface SearchTuning extends QueryTuning {
  /** bm25() weight of a passage's text... */
  textWeight: number;
  /** ...and of its title (document title + heading path). */
  titleWeight: number;
  /** Most hits from one document while others have hits too (Infinity: no cap). */
  perDocument: number;
}

export const DEFAULT_SEARCH_TUNING: SearchTuning = { ...DEFAULT_QUERY_TUNING, textWeight: 1, titleWeight: 1, perDocument: 1 };

export interface SearchOptions {
  /** Most hits to return (default 20). */
  limit?: number;
  /** Only passages of documents under this folder. */
  folderId?: number;
  /** 'any' content word, ranked by BM25 (default), or 'all' of them (fts-query.ts). */
  match?: TermMatch;
  /** Most hits from one document (default: the tuning's). */
  perDocument?: number;
  /** Strings around highlighted words in `snippet` (default HIGHLIGHT_OPEN / HIGHLIGHT_CLOSE). */
  marks?: { open: string; close: string };
  /** Overrides of the tuned ranking, for bench:retrieval's sweeps. */
  tuning?: Partial<SearchTuning>;
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
  /** [charStart, charEnd) of the passage in its document's extracted text. */
  charStart: number;
  charEnd: number;
  /** A short extract around the matches, with matches between the marks. */
  snippet: string;
  /** The whole passage text with every match between the marks. */
  highlighted: string;
  /** Higher is better; comparable only within one result list. */
  score: number;
  /** Which index answered: word (porter), substring (trigram) or scan (LIKE). */
  method: 'word' | 'substring' | 'scan';
}

type Marks = { open: string; close: string };

interface Resolved {
  limit: number;
  folderId: number | null;
  marks: Marks;
  tuning: SearchTuning;
  /** Only this passage (highlightPassage). */
  onlyPassage: number | null;
}

/** One index asked one way: the hits it finds and how their snippets are made. */
interface Source {
  table: 'passages_fts' | 'passages_trigram';
  method: 'word' | 'substring';
  exprs: FtsExpressions;
  /** Word search beside a trigram search: the passages the trigram index does not hold. */
  unindexedOnly: boolean;
  snippetTokens: number;
}

/** A hit before its text and snippet are read. */
interface Candidate {
  passageId: number;
  documentId: number;
  score: number;
  source: Source | null;
}

/** The plan for a query: the indexes to ask, or a LIKE scan of these terms. */
type Plan = { sources: Source[] } | { scan: SearchTerm[] };

function plan(query: string, terms: SearchTerm[]): Plan | null {
  const word = (ts: SearchTerm[], unindexedOnly = false): Source | null => {
    const exprs = ftsExpressions(ts);
    return exprs && { table: 'passages_fts', method: 'word', exprs, unindexedOnly, snippetTokens: 24 };
  };
  if (!needsSubstringSearch(query)) {
    const only = word(terms);
    return only && { sources: [only] };
  }
  if (!terms.every((t) => charLength(t.text) >= 3)) return terms.some((t) => !t.excluded) ? { scan: terms } : null;
  // Trigram matching is substring matching already, so a trailing * adds nothing.
  const exprs = ftsExpressions(terms.map((t) => ({ ...t, prefix: false })));
  if (!exprs) return null;
  const sources: Source[] = [{ table: 'passages_trigram', method: 'substring', exprs, unindexedOnly: false, snippetTokens: 48 }];
  // The trigram index holds only passages that need substring search (migration v5). A hit that
  // must contain a term in such a script is one of them; otherwise a term in a spaced script (e.g.
  // "Tokyo" in "東京 Tokyo") may match the other passages: word search finds those, and an
  // excluded unspaced term cannot occur in them.
  const unspaced = (t: SearchTerm) => needsSubstringSearch(t.text);
  if (!terms.some((t) => t.required && unspaced(t))) {
    const more = word(terms.filter((t) => !unspaced(t)), true);
    if (more) sources.push(more);
  }
  return { sources };
}

/** The source's hits, best first, as the index ranks them (bm25: lower is better). */
function* ftsCandidates(db: Db, s: Source, o: Resolved): Generator<Candidate> {
  // t is one of two constants, never user text: the user's words travel as bound parameters. The one
  // passage of highlightPassage is picked by p.id, not by the FTS table's rowid: better-sqlite3 binds
  // a JS number as REAL, and FTS5 (3.53) drops a rowid = REAL constraint without telling SQLite, so
  // every match came back.
  const t = s.table;
  const rank = t === 'passages_fts' ? `bm25(${t}, @textWeight, @titleWeight)` : `bm25(${t})`;
  const sql = `SELECT ${t}.rowid AS passageId, p.document_id AS documentId, ${rank} AS rank
     FROM ${t} JOIN passages p ON p.id = ${t}.rowid JOIN documents d ON d.id = p.document_id
     WHERE ${t} MATCH @rankExpr
       ${s.exprs.required ? `AND ${t}.rowid IN (SELECT rowid FROM ${t} WHERE ${t} MATCH @required)` : ''}
       ${s.exprs.excluded ? `AND ${t}.rowid NOT IN (SELECT rowid FROM ${t} WHERE ${t} MATCH @excluded)` : ''}
       ${s.unindexedOnly ? 'AND p.substring_indexed = 0' : ''}
       ${o.onlyPassage !== null ? 'AND p.id = @onlyPassage' : ''}
       AND (@folderId IS NULL OR d.folder_id = @folderId)
     ORDER BY rank, ${t}.rowid`;
  const params: Record<string, unknown> = { rankExpr: s.exprs.rank, folderId: o.folderId };
  if (t === 'passages_fts') Object.assign(params, { textWeight: o.tuning.textWeight, titleWeight: o.tuning.titleWeight });
  if (s.exprs.required) params.required = s.exprs.required;
  if (s.exprs.excluded) params.excluded = s.exprs.excluded;
  if (o.onlyPassage !== null) params.onlyPassage = o.onlyPassage;
  for (const r of db.prepare(sql).iterate(params) as IterableIterator<{ passageId: number; documentId: number; rank: number }>) {
    yield { passageId: r.passageId, documentId: r.documentId, score: -r.rank, source: s };
  }
}

/**
 * Best first, `limit` in all, at most `perDocument` from one document while other documents still
 * have hits; then the passed-over hits in rank order, so a library of one long file still fills
 * every slot. Stops reading as soon as the slots are full.
 */
function takeRanked(candidates: Iterable<Candidate>, perDocument: number, limit: number): Candidate[] {
  const perDoc = new Map<number, number>();
  const taken: Candidate[] = [];
  const passedOver: Candidate[] = [];
  if (limit <= 0) return taken;
  for (const c of candidates) {
    const n = perDoc.get(c.documentId) ?? 0;
    if (n >= perDocument) {
      if (passedOver.length < limit) passedOver.push(c);
      continue;
    }
    perDoc.set(c.documentId, n + 1);
    taken.push(c);
    if (taken.length >= limit) return taken;
  }
  return [...taken, ...passedOver.slice(0, limit - taken.length)];
}

const byScore = (a: Candidate, b: Candidate) => b.score - a.score || a.passageId - b.passageId;

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
function scanSnippet(text: string, needles: string[], marks: Marks, radius: number): string {
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

/** LIKE over every passage: required terms all, else one of the others; never an excluded one. */
function scanCandidates(db: Db, terms: SearchTerm[], o: Resolved): Candidate[] {
  const positive = terms.filter((t) => !t.excluded).map((t) => t.text);
  const required = terms.filter((t) => t.required).map((t) => t.text);
  const excluded = terms.filter((t) => t.excluded).map((t) => t.text);
  const must = required.length > 0 ? required : positive;
  const like = `(${must.map(() => `p.text LIKE ? ESCAPE '\\'`).join(required.length > 0 ? ' AND ' : ' OR ')})`;
  const unlike = excluded.map(() => ` AND p.text NOT LIKE ? ESCAPE '\\'`).join('');
  const pattern = (n: string) => `%${escapeLike(n)}%`;
  const rows = db
    .prepare(
      `SELECT p.id AS passageId, p.document_id AS documentId, p.text FROM passages p JOIN documents d ON d.id = p.document_id
       WHERE ${like}${unlike} AND (? IS NULL OR d.folder_id = ?) AND (? IS NULL OR p.id = ?)`,
    )
    .all(...must.map(pattern), ...excluded.map(pattern), o.folderId, o.folderId, o.onlyPassage, o.onlyPassage) as {
    passageId: number;
    documentId: number;
    text: string;
  }[];
  return rows
    .map((r) => {
      const { haystack, fold } = caseless(r.text);
      const count = positive.reduce((s, n) => s + occurrences(haystack, fold(n)).length, 0);
      return { passageId: r.passageId, documentId: r.documentId, score: count, source: null };
    })
    .sort(byScore);
}

function candidates(db: Db, p: Plan, o: Resolved): Candidate[] {
  const { perDocument } = o.tuning;
  if ('scan' in p) return takeRanked(scanCandidates(db, p.scan, o), perDocument, o.limit);
  if (p.sources.length === 1) return takeRanked(ftsCandidates(db, p.sources[0], o), perDocument, o.limit);
  // bm25 from two indexes: comparable enough to interleave one result list.
  const merged = p.sources.flatMap((s) => takeRanked(ftsCandidates(db, s, o), perDocument, o.limit)).sort(byScore);
  return takeRanked(merged, perDocument, o.limit);
}

type PassageRow = Omit<SearchHit, 'snippet' | 'highlighted' | 'score' | 'method'>;

/** The chosen hits with their passage fields, snippet and highlighted text, in rank order. */
function readHits(db: Db, chosen: Candidate[], p: Plan, o: Resolved): SearchHit[] {
  if (chosen.length === 0) return [];
  const ids = JSON.stringify(chosen.map((c) => c.passageId));
  const rows = new Map(
    (
      db
        .prepare(
          `SELECT p.id AS passageId, p.document_id AS documentId, d.path, d.title, p.title AS passageTitle, p.page, p.ordinal,
             p.text, p.char_start AS charStart, p.char_end AS charEnd
           FROM passages p JOIN documents d ON d.id = p.document_id WHERE p.id IN (SELECT value FROM json_each(?))`,
        )
        .all(ids) as PassageRow[]
    ).map((r) => [r.passageId, r]),
  );
  const marked = new Map<number, { snippet: string; highlighted: string }>();
  for (const s of 'sources' in p ? p.sources : []) {
    const t = s.table;
    const rowsOf = db
      .prepare(
        `SELECT rowid AS passageId, snippet(${t}, 0, @open, @close, @ellipsis, @tokens) AS snippet,
           highlight(${t}, 0, @open, @close) AS highlighted
         FROM ${t} WHERE ${t} MATCH @rankExpr AND rowid IN (SELECT value FROM json_each(@ids))`,
      )
      .all({ rankExpr: s.exprs.rank, ids: JSON.stringify(chosen.filter((c) => c.source === s).map((c) => c.passageId)), open: o.marks.open, close: o.marks.close, ellipsis: ELLIPSIS, tokens: s.snippetTokens }) as {
      passageId: number;
      snippet: string;
      highlighted: string;
    }[];
    for (const r of rowsOf) marked.set(r.passageId, r);
  }
  const needles = 'scan' in p ? p.scan.filter((t) => !t.excluded).map((t) => t.text) : [];
  return chosen.flatMap((c) => {
    const row = rows.get(c.passageId);
    if (!row) return [];
    const m =
      marked.get(c.passageId) ??
      (c.source === null
        ? { snippet: scanSnippet(row.text, needles, o.marks, 40), highlighted: scanSnippet(row.text, needles, o.marks, row.text.length) }
        : { snippet: row.text, highlighted: row.text });
    return [{ ...row, ...m, score: c.score, method: c.source?.method ?? 'scan' }];
  });
}

function resolve(options: SearchOptions, onlyPassage: number | null = null): Resolved {
  const tuning = { ...DEFAULT_SEARCH_TUNING, ...options.tuning };
  if (options.perDocument !== undefined) tuning.perDocument = options.perDocument;
  tuning.perDocument = Math.max(1, tuning.perDocument);
  return {
    limit: options.limit ?? 20,
    folderId: options.folderId ?? null,
    marks: options.marks ?? { open: HIGHLIGHT_OPEN, close: HIGHLIGHT_CLOSE },
    tuning,
    onlyPassage,
  };
}

/**
 * Passages matching the user's text (a question, keywords, phrases), best first. Never throws on
 * what the user typed: the text is read into terms (fts-query.ts) and only quoted FTS5 strings reach
 * MATCH. No terms, no hits.
 */
export function searchPassages(db: Db, query: string, options: SearchOptions = {}): SearchHit[] {
  const o = resolve(options);
  const p = plan(query, parseSearchQuery(query, options.match ?? 'any', o.tuning));
  if (!p || o.limit <= 0) return [];
  return readHits(db, candidates(db, p, o), p, o);
}

/**
 * One passage's whole text with the query's matches marked, as a search hit would mark it, or null
 * when the query does not find that passage (e.g. the passage view opened from a chat citation).
 */
export function highlightPassage(db: Db, passageId: number, query: string, options: Pick<SearchOptions, 'match' | 'marks'> = {}): string | null {
  const o = resolve({ ...options, limit: 1 }, passageId);
  const p = plan(query, parseSearchQuery(query, options.match ?? 'any', o.tuning));
  if (!p) return null;
  return readHits(db, candidates(db, p, o), p, o)[0]?.highlighted ?? null;
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
