// Full-text search over the library and the passage view (the whole passage, highlighted: a search's
// words, or a question's content words only, as retrieval takes them: db/fts-query.ts drops its stop
// words, so "how do I use X" highlights X, not "do" or "use").
import { getDocument } from '../../db/documents.ts';
import type { Db } from '../../db/open.ts';
import { getPassage } from '../../db/passages.ts';
import { highlightParts, highlightPassage, searchPassages } from '../../db/search.ts';
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
      // a question reads as a query (db/fts-query.ts drops its stop words): the same words retrieval ranked by
      const query = question ?? searched;
      const highlighted = query ? highlightPassage(db, passageId, query) : null;
      if (highlighted !== null) parts = highlightParts(highlighted);
      return { passageId, documentPath: doc?.path ?? '', title: passage.title ?? doc?.title ?? null, page: passage.page, parts };
    },
  };
}
