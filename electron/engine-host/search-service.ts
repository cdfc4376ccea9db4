// Full-text search over the library and the passage view (the whole passage, highlighted: a search's
// words as typed, or a question's content words only, as retrieval takes them: retrieve.ts
// questionToQuery drops its stop words, so "how do I use X" highlights X, not "do" or "use").
import { getDocument } from '../../db/documents.ts';
import type { Db } from '../../db/open.ts';
import { getPassage } from '../../db/passages.ts';
import { highlightParts, searchPassages } from '../../db/search.ts';
import { questionToQuery } from '../answering/retrieve.ts';
import { QuireRequestError } from '../contract/types.ts';
import type { RequestHandlers } from './request-handlers.ts';

export type SearchRequest = 'search' | 'passage.get';

export function searchHandlers(db: Db): RequestHandlers<SearchRequest> {
  return {
    search: ({ query, folderId, limit }) =>
      searchPassages(db, query, { folderId, limit: limit ?? 20 }).map((h) => ({
        passageId: h.passageId,
        documentId: h.documentId,
        path: h.path,
        title: h.passageTitle ?? h.title,
        page: h.page,
        snippet: highlightParts(h.snippet),
      })),
    'passage.get': ({ passageId, query: searched, question }) => {
      const passage = getPassage(db, passageId);
      if (!passage) throw new QuireRequestError('failed', `passage ${passageId} is gone (its file was re-indexed or removed)`);
      const doc = getDocument(db, passage.documentId);
      let parts = [{ text: passage.text, highlighted: false }];
      const query = question ? questionToQuery(question) : searched;
      if (query) {
        const hit = searchPassages(db, query, { match: 'any', limit: 200 }).find((h) => h.passageId === passageId);
        if (hit) parts = highlightParts(hit.highlighted);
      }
      return { passageId, documentPath: doc?.path ?? '', title: passage.title ?? doc?.title ?? null, page: passage.page, parts };
    },
  };
}
