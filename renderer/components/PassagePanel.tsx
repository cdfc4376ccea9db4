import { useEffect, useState } from 'react';
import type { PassageView } from '../../electron/contract/types.ts';
import type { RendererApi } from '../api.ts';
import { Highlighted } from './Highlighted.tsx';

export interface PassageRef {
  passageId: number | null;
  documentPath: string;
  page: number | null;
  /** Shown when the passage is gone (a citation's saved quote). */
  quote?: string;
  /** Words to highlight inside the passage. */
  query?: string;
  label: string;
}

/** The side panel a citation or a search hit opens: the passage, highlighted, and "open file". */
export function PassagePanel({ api, target, onClose }: { api: RendererApi; target: PassageRef; onClose: () => void }) {
  const [passage, setPassage] = useState<PassageView | null>(null);
  const [problem, setProblem] = useState<string | null>(null);
  const [openNote, setOpenNote] = useState<string | null>(null);

  useEffect(() => {
    setPassage(null);
    setProblem(null);
    setOpenNote(null);
    if (target.passageId === null) {
      setProblem('This passage has changed since the answer; showing the quote saved with it.');
      return;
    }
    let live = true;
    api.request('passage.get', { passageId: target.passageId, query: target.query || undefined }).then(
      (p) => live && setPassage(p),
      (e: Error) => live && setProblem(e.message),
    );
    return () => {
      live = false;
    };
  }, [api, target]);

  const open = async () => {
    const r = await api.request('host.openPath', { path: target.documentPath, page: target.page ?? undefined });
    setOpenNote(r.opened ? null : (r.reason ?? 'could not open the file'));
  };

  return (
    <aside className="passage-panel" aria-label="Passage">
      <header>
        <h2>{target.label}</h2>
        <button type="button" onClick={onClose} aria-label="Close passage">
          ×
        </button>
      </header>
      <p className="passage-path" title={target.documentPath}>
        {target.documentPath}
        {target.page ? ` · page ${target.page}` : ''}
      </p>
      {passage?.title && <p className="passage-title">{passage.title}</p>}
      <blockquote className="passage-text" data-testid="passage-text">
        {passage ? <Highlighted parts={passage.parts} /> : problem ? target.quote : 'Loading…'}
      </blockquote>
      {problem && <p className="note">{problem}</p>}
      <button type="button" onClick={() => void open()}>
        Open file{target.page ? ` at page ${target.page}` : ''}
      </button>
      {openNote && <p className="note" role="status">{openNote}</p>}
    </aside>
  );
}
