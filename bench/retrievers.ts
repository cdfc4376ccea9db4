// The retrievers bench:retrieval can compare, by name. Each one is the code a user's path runs
// (search box / `quire search`, `quire ask`), so the benchmark measures what users get. A future
// embedding or hybrid retriever implements Retriever (async, so it may run a model) and joins the table.
import type { Db } from '../db/open.ts';
import { searchPassages } from '../db/search.ts';
import { retrieve } from '../electron/answering/retrieve.ts';

export interface RetrievedHit {
  passageId: number;
  documentPath: string;
  score: number;
}

export interface Retriever {
  /** The best `k` passages for a question, best first. */
  retrieve(question: string, k: number): Promise<RetrievedHit[]>;
  /** Releases what open() loaded (a model, say). */
  close?(): Promise<void>;
}

export interface RetrieverEntry {
  describe: string;
  open(db: Db): Promise<Retriever>;
}

export const RETRIEVERS: Record<string, RetrieverEntry> = {
  'fts-all-words': {
    describe: "searchPassages with match 'all': every word typed must occur (the search box and quire search)",
    open: async (db) => ({
      retrieve: async (question, k) =>
        searchPassages(db, question, { limit: k, match: 'all' }).map((h) => ({ passageId: h.passageId, documentPath: h.path, score: h.score })),
    }),
  },
  ask: {
    describe: "retrieve() as quire ask runs it: question -> search terms, any-term BM25, 3 passages per document at most",
    open: async (db) => ({
      retrieve: async (question, k) => retrieve(db, question, { k }).map((h) => ({ passageId: h.passageId, documentPath: h.path, score: h.score })),
    }),
  },
};
