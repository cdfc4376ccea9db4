import { useEffect, useRef, useState } from 'react';
import type { PassageView } from '../../electron/contract/types.ts';
import type { RendererApi } from '../api.ts';
import { basename } from '../format.ts';
import { Highlighted } from './Highlighted.tsx';

export interface PassageRef {
  passageId: number | null;
  documentPath: string;
  page: number | null;
  /** The passage's title as the list showed it (the panel shows the stored one once loaded). */
  title: string | null;
  /** The citation's number, when opened from an answer. */
  ordinal?: number;
  /** Shown when the passage is gone (a citation's saved quote). */
  quote?: string;
  /** A search's words: highlighted as typed. */
  query?: string;
  /** A question: only its content words are highlighted (the engine drops its stop words). */
  question?: string;
}

/**
 * The side panel a citation or a search hit opens: the passage's title once, its file and page, the
 * text with the query's words highlighted, and "open file". Escape closes it.
 */
export function PassagePanel({ api, target, onClose }: { api: RendererApi; target: PassageRef; onClose: () => void }) {
  const [passage, setPassage] = useState<PassageView | null>(null);
  const [problem, setProblem] = useState<string | null>(null);
  const [openNote, setOpenNote] = useState<string | null>(null);
  const panel = useRef<HTMLElement>(null);

  useEffect(() => {
    setPassage(null);
    setProblem(null);
    setOpenNote(null);
    if (target.passageId === null) {
      setProblem('This passage has changed since the answer; showing the quote saved with it.');
      return;
    }
    let live = true;
    const words = target.question ? { question: target.question } : target.query ? { query: target.query } : {};
    api.request('passage.get', { passageId: target.passageId, ...words }).then(
      (p) => live && setPassage(p),
      (e: Error) => live && setProblem(e.message),
    );
    return () => {
      live = false;
    };
  }, [api, target]);

  useEffect(() => {
    panel.current?.focus();
    const onKey = (e: KeyboardEvent) => {
      if (e.key === 'Escape' && !e.defaultPrevented) {
        e.preventDefault();
        onClose();
      }
    };
    window.addEventListener('keydown', onKey);
    return () => window.removeEventListener('keydown', onKey);
  }, [onClose, target]);

  const open = async () => {
    const r = await api.request('host.openPath', { path: target.documentPath, page: target.page ?? undefined });
    setOpenNote(r.opened ? null : (r.reason ?? 'could not open the file'));
  };

  const title = passage?.title ?? target.title ?? basename(target.documentPath);
  return (
    <aside className="passage-panel" aria-label="Passage" ref={panel} tabIndex={-1}>
      <header>
        <h2 data-testid="passage-title">
          {target.ordinal !== undefined && <span className="ordinal">[{target.ordinal}] </span>}
          {title}
        </h2>
        <button type="button" onClick={onClose} aria-label="Close passage" title="Close (Esc)">
          ×
        </button>
      </header>
      <p className="passage-path" title={target.documentPath}>
        {target.documentPath}
        {target.page ? ` · page ${target.page}` : ''}
      </p>
      <blockquote className="passage-text" data-testid="passage-text">
        {passage ? <Highlighted parts={passage.parts} /> : problem ? target.quote : 'Loading…'}
      </blockquote>
      {problem && <p className="note">{problem}</p>}
      <button type="button" onClick={() => void open()}>
        Open file{target.page ? ` at page ${target.page}` : ''}
      </button>
      {openNote && (
        <p className="note" role="status">
          {openNote}
        </p>
      )}
    </aside>
  );
}
