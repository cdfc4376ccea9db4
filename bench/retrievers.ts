// The retrievers bench:retrieval can compare, by name. Each one is the code a user's path runs
// (search box / `quire search`, `quire ask`), so the benchmark measures what users get. A future
// embedding or hybrid retriever implements Retriever (async, so it may run a model) and joins the table.
import type { Db } from '../db/open.ts';
import { searchPassages, type SearchTuning } from '../db/search.ts';
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
  /** `tuning`: overrides of the ranking's defaults (--param), for retrievers that have them. */
  open(db: Db, tuning: Partial<SearchTuning>): Promise<Retriever>;
}

const hit = (h: { passageId: number; path: string; score: number }): RetrievedHit => ({ passageId: h.passageId, documentPath: h.path, score: h.score });

export const RETRIEVERS: Record<string, RetrieverEntry> = {
  bm25: {
    describe: 'searchPassages as the search view and quire search call it: content words, BM25 over text and title, quoted phrases required',
    open: async (db, tuning) => ({ retrieve: async (question, k) => searchPassages(db, question, { limit: k, tuning }).map(hit) }),
  },
  'fts-all-words': {
    describe: "searchPassages with match 'all' (the all-words mode): every content word must occur",
    open: async (db, tuning) => ({ retrieve: async (question, k) => searchPassages(db, question, { limit: k, match: 'all', tuning }).map(hit) }),
  },
  ask: {
    describe: 'retrieve() as quire ask runs it: the bm25 ranking, fed to the prompt (takes no --param)',
    open: async (db) => ({ retrieve: async (question, k) => retrieve(db, question, { k }).map((h) => hit(h)) }),
  },
};
