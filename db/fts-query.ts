// What a search box's text asks for, and the safe FTS5 expressions for it. One reading of user text
// for the search view, `quire search` and `quire ask`: a question is a query.
//
// User text is never handed to MATCH as is: FTS5 has its own syntax (AND/OR/NOT/NEAR, parentheses,
// column filters, ^, *), and a stray quote or parenthesis is a syntax error. Every term becomes an
// FTS5 string ("...", inner quotes doubled), which the tokenizer then splits as it splits the
// indexed text.
//
// The reading:
// - Words: English function words and question words ("how do I ... ?") are dropped, because they
//   occur nearly everywhere and only add noise to the rank; what is left are the content words. A
//   query made of nothing else keeps them. Longer words match as prefixes ("configur" finds
//   configure, configuration, configparser), on top of the porter stemming the index does.
// - "quoted phrases": the words together and in order, stop words included; every hit has them.
// - +word: every hit has it. NOT term: no hit has it. AND anywhere: every content word is required
//   (the all-words mode); so is match 'all' from the caller.
// - A trailing * asks for a prefix (word* or "a phrase"*). OR and NEAR (upper case, as FTS5 spells
//   them), parentheses, unbalanced quotes and terms with no letter or digit are dropped.
// Otherwise a hit needs only one of the words and BM25 ranks the hits (db/search.ts).

export interface SearchTerm {
  text: string;
  /** Came from "quoted text": its words must appear together, in order. */
  phrase: boolean;
  /** Its last word matches as a prefix. */
  prefix: boolean;
  /** Every hit must contain it. */
  required: boolean;
  /** No hit may contain it. */
  excluded: boolean;
}

/** 'any': a hit needs one content word, ranked by BM25 (default); 'all': every content word. */
export type TermMatch = 'all' | 'any';

/** The reading's tunable parts; defaults from bench:retrieval (docs/BENCHMARKS.md). */
export interface QueryTuning {
  /** Plain words of at least this many letters match as prefixes (Infinity: never). */
  prefixMinLength: number;
  /** Drop STOP_WORDS from the words typed. */
  dropStopWords: boolean;
}

export const DEFAULT_QUERY_TUNING: QueryTuning = { prefixMinLength: Infinity, dropStopWords: true };

// English function words, question words and the verbs questions are made of: they match nearly
// every passage, so in a ranked query they only add noise, and in a snippet they are not what the
// user looked for. Apostrophes are straight here; typed ones are folded before the lookup.
export const STOP_WORDS: ReadonlySet<string> = new Set(
  `a about above after again against all am an and any are as at be because been before being below
  between both but by can could did do does doing down during each few for from further had has have
  having he her here hers herself him himself his how i if in into is it its itself just me more most
  my myself no nor not now of off on once only or other our ours ourselves out over own same she should
  so some such than that the their theirs them themselves then there these they this those through to
  too under until up very was we were what when where which while who whom why will with would you
  your yours yourself yourselves tell explain describe please give say said use
  i'm i've i'd i'll it's what's that's there's don't doesn't didn't can't cannot isn't aren't won't let's`.split(/\s+/),
);

const OPERATOR = /^(AND|OR|NOT|NEAR(\/\d+)?)$/;
const HAS_WORD = /[\p{L}\p{N}]/u;
const EDGE_PUNCTUATION = /^[^\p{L}\p{N}]+|[^\p{L}\p{N}]+$/gu;
const LETTERS_ONLY = /^\p{L}+$/u;

/** A term as typed, before the reading decides what it requires. */
interface Lexeme {
  text: string;
  phrase: boolean;
  prefix: boolean;
  plus: boolean;
  not: boolean;
}

/** Quotes pair up left to right; an odd last quote is ignored, and what follows it is plain words. */
function lex(input: string): { lexemes: Lexeme[]; and: boolean } {
  const parts = input.normalize('NFC').split('"');
  const pairs = Math.floor((parts.length - 1) / 2);
  const lexemes: Lexeme[] = [];
  let and = false;
  let not = false;
  const push = (l: Omit<Lexeme, 'not'>) => {
    lexemes.push({ ...l, not });
    not = false;
  };
  parts.forEach((part, i) => {
    if (i % 2 === 1 && i < 2 * pairs) {
      const text = part.replace(/\*/g, ' ').replace(/\s+/gu, ' ').trim();
      const prefix = (parts[i + 1] ?? '').startsWith('*');
      if (HAS_WORD.test(text)) push({ text, phrase: true, prefix, plus: false });
      return;
    }
    for (const chunk of part.split(/[\s()]+/u)) {
      if (OPERATOR.test(chunk)) {
        if (chunk === 'AND') and = true;
        if (chunk === 'NOT') not = true;
        continue;
      }
      const prefix = /\*$/.test(chunk);
      const plus = chunk.startsWith('+');
      const text = chunk.replace(/\*/g, ' ').trim().replace(EDGE_PUNCTUATION, '');
      if (HAS_WORD.test(text)) push({ text, phrase: false, prefix, plus });
    }
  });
  return { lexemes, and };
}

export function isStopWord(word: string): boolean {
  return STOP_WORDS.has(word.toLowerCase().replace(/[\u2018\u2019]/g, "'"));
}

/** The terms of a search box's text (or a question), in order. */
export function parseSearchQuery(input: string, match: TermMatch = 'any', tuning: QueryTuning = DEFAULT_QUERY_TUNING): SearchTerm[] {
  const { lexemes, and } = lex(input);
  const allWords = match === 'all' || and;
  const content = (l: Lexeme) => l.phrase || l.not || !tuning.dropStopWords || !isStopWord(l.text);
  // a query made only of stop words still searches for them rather than for nothing
  const keepAll = !lexemes.some((l) => !l.not && content(l));
  return lexemes
    .filter((l) => keepAll || content(l))
    .map((l) => ({
      text: l.text,
      phrase: l.phrase,
      prefix: l.prefix || (!l.phrase && !l.not && LETTERS_ONLY.test(l.text) && charLength(l.text) >= tuning.prefixMinLength),
      required: !l.not && (l.phrase || l.plus || allWords),
      excluded: l.not,
    }));
}

/** One term as an FTS5 string. */
export function ftsString(text: string): string {
  return `"${text.replace(/"/g, '""')}"`;
}

/** The MATCH expressions for a parsed query. */
export interface FtsExpressions {
  /** What a hit matches, and what BM25 ranks and the snippet marks: every term not excluded. */
  rank: string;
  /** Terms every hit must contain, where `rank` does not already demand them all. */
  required: string | null;
  /** Terms no hit may contain. */
  excluded: string | null;
}

/** Null when there is nothing to search for (no term that is not excluded). */
export function ftsExpressions(terms: readonly SearchTerm[]): FtsExpressions | null {
  const fts = (t: SearchTerm) => ftsString(t.text) + (t.prefix ? '*' : '');
  const positive = terms.filter((t) => !t.excluded);
  if (positive.length === 0) return null;
  const required = positive.filter((t) => t.required);
  const excluded = terms.filter((t) => t.excluded);
  const allRequired = required.length === positive.length;
  return {
    rank: positive.map(fts).join(allRequired ? ' AND ' : ' OR '),
    required: allRequired || required.length === 0 ? null : required.map(fts).join(' AND '),
    excluded: excluded.length === 0 ? null : excluded.map(fts).join(' OR '),
  };
}

// Scripts written without spaces between words: unicode61 would make a whole run one token.
const UNSPACED = /[\p{Script=Han}\p{Script=Hiragana}\p{Script=Katakana}\p{Script=Hangul}\p{Script=Thai}\p{Script=Lao}\p{Script=Khmer}\p{Script=Myanmar}]/u;

/** Whether text needs substring (trigram) search rather than word search. */
export function needsSubstringSearch(text: string): boolean {
  return UNSPACED.test(text);
}

/** Length in characters (code points), which is what the trigram tokenizer counts. */
export function charLength(text: string): number {
  return [...text].length;
}
