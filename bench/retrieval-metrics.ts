// Retrieval quality at document level. A retriever returns passages, best first; what a user sees is
// which documents those passages come from, so each ranked list here is the documents of the hits
// in hit order (a document may repeat: two passages of one file take two result slots, as they do
// in the search list and in ask's prompt).

/** Share of the relevant documents that appear among the first k hits (0 when none is relevant). */
export function recallAtK(rankedDocs: readonly string[], relevant: ReadonlySet<string>, k: number): number {
  if (relevant.size === 0) return 0;
  const seen = new Set(rankedDocs.slice(0, k).filter((d) => relevant.has(d)));
  return seen.size / relevant.size;
}

/** 1 / the 1-based position of the first hit from a relevant document; 0 when no hit is relevant. */
export function reciprocalRank(rankedDocs: readonly string[], relevant: ReadonlySet<string>): number {
  const at = rankedDocs.findIndex((d) => relevant.has(d));
  return at < 0 ? 0 : 1 / (at + 1);
}

export interface QuestionResult {
  rankedDocs: readonly string[];
  relevant: ReadonlySet<string>;
}

export interface RetrievalScores {
  questions: number;
  recallAt5: number;
  recallAt10: number;
  /** Mean reciprocal rank over the first 10 hits. */
  mrr: number;
  /** Questions with no hit at all. */
  empty: number;
}

/** Means over the questions (each question weighs the same). */
export function scoreRetrieval(results: readonly QuestionResult[]): RetrievalScores {
  const mean = (f: (r: QuestionResult) => number) => (results.length === 0 ? 0 : results.reduce((s, r) => s + f(r), 0) / results.length);
  return {
    questions: results.length,
    recallAt5: mean((r) => recallAtK(r.rankedDocs, r.relevant, 5)),
    recallAt10: mean((r) => recallAtK(r.rankedDocs, r.relevant, 10)),
    mrr: mean((r) => reciprocalRank(r.rankedDocs.slice(0, 10), r.relevant)),
    empty: results.filter((r) => r.rankedDocs.length === 0).length,
  };
}
