import { useEffect, useState, type RefObject } from 'react';
import type { FolderView, SearchHitView } from '../../electron/contract/types.ts';
import type { RendererApi } from '../api.ts';
import { Highlighted } from '../components/Highlighted.tsx';
import type { PassageRef } from '../components/PassagePanel.tsx';
import { basename } from '../format.ts';

export function SearchView({
  api,
  folders,
  inputRef,
  onOpenPassage,
}: {
  api: RendererApi;
  folders: FolderView[];
  inputRef?: RefObject<HTMLInputElement | null>;
  onOpenPassage: (ref: PassageRef) => void;
}) {
  const [query, setQuery] = useState('');
  const [folderId, setFolderId] = useState<number | undefined>(undefined);
  const [hits, setHits] = useState<SearchHitView[]>([]);
  const [error, setError] = useState<string | null>(null);

  useEffect(() => {
    if (!query.trim()) {
      setHits([]);
      return;
    }
    let live = true;
    const timer = setTimeout(() => {
      api.request('search', { query, folderId, limit: 30 }).then(
        (h) => {
          if (!live) return;
          setHits(h);
          setError(null);
        },
        (e: Error) => live && setError(e.message),
      );
    }, 80);
    return () => {
      live = false;
      clearTimeout(timer);
    };
  }, [api, query, folderId]);

  return (
    <section className="search-view" aria-label="Search">
      <div className="search-bar">
        <input
          ref={inputRef}
          type="search"
          aria-label="Search your library"
          placeholder="Search your library (Ctrl/Cmd+K)"
          value={query}
          onChange={(e) => setQuery(e.target.value)}
          autoFocus
        />
        <select aria-label="Folder filter" value={folderId ?? ''} onChange={(e) => setFolderId(e.target.value ? Number(e.target.value) : undefined)}>
          <option value="">All folders</option>
          {folders.map((f) => (
            <option key={f.id} value={f.id}>
              {basename(f.path)}
            </option>
          ))}
        </select>
      </div>
      {error && <p className="error" role="alert">{error}</p>}
      {folders.length === 0 ? (
        <div className="empty-state">
          <h2>Nothing to search yet</h2>
          <p>Add a folder in the Library; search works offline as soon as it is indexed, with or without a model.</p>
        </div>
      ) : query.trim() && hits.length === 0 ? (
        <p className="note">No passage matches “{query}”.</p>
      ) : (
        <ul className="hits" aria-label="Search results">
          {hits.map((h) => (
            <li key={h.passageId}>
              <button
                type="button"
                className="hit"
                onClick={() =>
                  onOpenPassage({ passageId: h.passageId, documentPath: h.path, page: h.page, query, title: h.title })
                }
              >
                <span className="hit-title">{h.title ?? basename(h.path)}</span>
                <span className="hit-path">
                  {h.path}
                  {h.page ? ` · page ${h.page}` : ''}
                </span>
                <span className="hit-snippet">
                  <Highlighted parts={h.snippet} />
                </span>
              </button>
            </li>
          ))}
        </ul>
      )}
    </section>
  );
}
