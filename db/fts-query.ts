// User search text -> a safe FTS5 MATCH expression. User text is never handed to MATCH as is:
// FTS5 has its own syntax (AND/OR/NOT/NEAR, parentheses, column filters, ^, *), and a stray quote
// or parenthesis is a syntax error. Every term becomes an FTS5 string ("...", inner quotes
// doubled), which the tokenizer then splits as it splits the indexed text.
//
// Supported on purpose: "quoted phrases" and a trailing * for prefix search (word* or "a phrase"*).
// Dropped: the operator words AND, OR, NOT, NEAR (upper case, as FTS5 spells them), parentheses,
// unbalanced quotes, and terms with no letter or digit. How terms combine is the caller's choice.

export interface SearchTerm {
  text: string;
  /** Came from "quoted text": its words must appear together, in order. */
  phrase: boolean;
  /** Ended in *: its last word matches as a prefix. */
  prefix: boolean;
}

export type TermMatch = 'all' | 'any';

const OPERATOR = /^(AND|OR|NOT|NEAR(\/\d+)?)$/;
const HAS_WORD = /[\p{L}\p{N}]/u;

function addWords(chunkText: string, out: SearchTerm[]): void {
  for (const chunk of chunkText.split(/[\s()]+/u)) {
    if (OPERATOR.test(chunk)) continue;
    const prefix = /\*$/.test(chunk);
    const text = chunk.replace(/\*/g, ' ').trim();
    if (HAS_WORD.test(text)) out.push({ text, phrase: false, prefix });
  }
}

/** The terms of a search box's text, in order. */
export function parseSearchQuery(input: string): SearchTerm[] {
  const parts = input.normalize('NFC').split('"');
  // Quotes pair up left to right; an odd last quote is ignored, and what follows it is plain words.
  const pairs = Math.floor((parts.length - 1) / 2);
  const terms: SearchTerm[] = [];
  parts.forEach((part, i) => {
    const inside = i % 2 === 1 && i < 2 * pairs;
    if (inside) {
      const text = part.replace(/\*/g, ' ').replace(/\s+/gu, ' ').trim();
      const prefix = (parts[i + 1] ?? '').startsWith('*');
      if (HAS_WORD.test(text)) terms.push({ text, phrase: true, prefix });
    } else {
      addWords(part, terms);
    }
  });
  return terms;
}

/** One term as an FTS5 string. */
export function ftsString(text: string): string {
  return `"${text.replace(/"/g, '""')}"`;
}

/** The MATCH expression for terms, or null when there is nothing to search for. */
export function ftsMatchExpression(terms: readonly SearchTerm[], match: TermMatch = 'all'): string | null {
  if (terms.length === 0) return null;
  return terms.map((t) => ftsString(t.text) + (t.prefix ? '*' : '')).join(match === 'all' ? ' AND ' : ' OR ');
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
