// Citations: the [n] markers of an answer mapped to the passages they number.
import type { Citation } from '../../db/chats.ts';
import type { RetrievedPassage } from './retrieve.ts';

/** The answer when retrieval finds nothing: said plainly, without running the model. */
export const NO_PASSAGES_ANSWER =
  'I could not find anything about this in your indexed documents, so I cannot answer it from them.';

export interface AnswerCitation {
  /** The number the answer cites it by. */
  n: number;
  passageId: number;
  path: string;
  title: string | null;
  page: number | null;
  charStart: number;
  charEnd: number;
}

/** Numbers cited as [1], [2, 3], [1-2] or [1][3], in order of first appearance, without repeats. */
export function citedNumbers(answer: string): number[] {
  const out: number[] = [];
  const add = (n: number) => {
    if (Number.isInteger(n) && n > 0 && !out.includes(n)) out.push(n);
  };
  for (const m of answer.matchAll(/\[(\s*\d+\s*(?:[,;-]\s*\d+\s*)*)\]/g)) {
    for (const part of m[1].split(/[,;]/)) {
      const range = part.split('-').map((x) => Number(x.trim()));
      if (range.length === 2 && range[1] >= range[0] && range[1] - range[0] < 50) {
        for (let n = range[0]; n <= range[1]; n++) add(n);
      } else if (range.length === 1) add(range[0]);
    }
  }
  return out;
}

/** Citations for the numbers that exist (passages[n - 1]); others are ignored. */
export function citationsFor(answer: string, passages: readonly RetrievedPassage[]): AnswerCitation[] {
  return citedNumbers(answer)
    .filter((n) => n <= passages.length)
    .map((n) => {
      const p = passages[n - 1];
      return { n, passageId: p.passageId, path: p.path, title: p.title, page: p.page, charStart: p.charStart, charEnd: p.charEnd };
    });
}

/** The form chats.ts stores (with a short quote, so the citation reads right after re-indexing). */
export function toStoredCitation(c: AnswerCitation, passages: readonly RetrievedPassage[]): Citation {
  const text = passages[c.n - 1]?.text ?? '';
  return { ordinal: c.n, passageId: c.passageId, documentPath: c.path, title: c.title, page: c.page, quote: text.slice(0, 300) };
}
