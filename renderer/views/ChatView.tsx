import { useCallback, useEffect, useRef, useState, type KeyboardEvent } from 'react';
import Markdown from 'react-markdown';
import type { AnswerFiguresView, ChatView as ChatSummary, CitationView } from '../../electron/contract/types.ts';
import type { RendererApi } from '../api.ts';
import type { PassageRef } from '../components/PassagePanel.tsx';

interface Turn {
  key: string;
  role: 'user' | 'assistant';
  content: string;
  citations: CitationView[];
  /** Shown when the answer cites nothing: the passages it was given. */
  sources?: CitationView[];
  figures: AnswerFiguresView | null;
  question?: string;
  streaming?: boolean;
  error?: string;
}

function newRequestId(): string {
  return globalThis.crypto?.randomUUID?.() ?? `r${Date.now()}${Math.random().toString(36).slice(2)}`;
}

export function Readout({ figures }: { figures: AnswerFiguresView }) {
  const parts: string[] = [];
  if (figures.ttftMs !== null) parts.push(`TTFT ${Math.round(figures.ttftMs)} ms`);
  if (figures.reusedBlocks !== null || figures.computedBlocks !== null) {
    parts.push(`blocks ${figures.reusedBlocks ?? 0} reused / ${figures.computedBlocks ?? 0} computed`);
  }
  if (figures.tokensPerSecond !== null) parts.push(`${figures.tokensPerSecond.toFixed(1)} tokens/s`);
  if (figures.provider) parts.push(figures.provider);
  if (figures.mode) parts.push(figures.mode);
  if (figures.passagesDropped || figures.passagesShortened) {
    parts.push(`passages ${figures.passagesUsed} used / ${figures.passagesDropped} left out${figures.passagesShortened ? ` / ${figures.passagesShortened} shortened` : ''} to fit the model`);
  }
  return (
    <p className="readout" aria-label="Answer figures" data-testid="readout">
      {parts.join(' · ')}
    </p>
  );
}

export function ChatView({
  api,
  modelReady,
  hasFolders,
  onOpenPassage,
  onGo,
}: {
  api: RendererApi;
  modelReady: boolean;
  hasFolders: boolean;
  onOpenPassage: (ref: PassageRef) => void;
  onGo: (view: 'library' | 'settings') => void;
}) {
  const [chats, setChats] = useState<ChatSummary[]>([]);
  const [chatId, setChatId] = useState<number | undefined>(undefined);
  const [turns, setTurns] = useState<Turn[]>([]);
  const [draft, setDraft] = useState('');
  const [running, setRunning] = useState<string | null>(null);
  const bottom = useRef<HTMLDivElement>(null);

  const refreshChats = useCallback(() => {
    api.request('chats.list', {}).then(setChats, () => undefined);
  }, [api]);
  useEffect(refreshChats, [refreshChats]);
  useEffect(() => {
    // (a block: newer Chromium returns a promise from scrollIntoView, which React would take for a cleanup)
    void bottom.current?.scrollIntoView?.({ block: 'end' });
  }, [turns]);

  const openChat = async (id: number) => {
    setChatId(id);
    const messages = await api.request('chats.messages', { chatId: id });
    let lastQuestion = '';
    setTurns(
      messages
        .filter((m) => m.role !== 'system')
        .map((m) => {
          if (m.role === 'user') lastQuestion = m.content;
          return {
            key: `m${m.id}`,
            role: m.role as 'user' | 'assistant',
            content: m.content,
            citations: m.citations,
            figures: m.figures,
            question: lastQuestion,
          };
        }),
    );
  };

  const newChat = () => {
    setChatId(undefined);
    setTurns([]);
  };

  const send = async () => {
    const question = draft.trim();
    if (!question || running) return;
    const requestId = newRequestId();
    const key = `a-${requestId}`;
    setDraft('');
    setRunning(requestId);
    setTurns((t) => [
      ...t,
      { key: `q-${requestId}`, role: 'user', content: question, citations: [], figures: null },
      { key, role: 'assistant', content: '', citations: [], figures: null, question, streaming: true },
    ]);
    const update = (patch: (turn: Turn) => Partial<Turn>) => setTurns((t) => t.map((x) => (x.key === key ? { ...x, ...patch(x) } : x)));
    const off = api.on('answer.text', (e) => {
      if (e.requestId === requestId) update((x) => ({ content: x.content + e.text }));
    });
    try {
      const answer = await api.request('ask', { requestId, question, chatId });
      update(() => ({ content: answer.answer, citations: answer.citations, sources: answer.sources, figures: answer.figures, streaming: false }));
      setChatId(answer.chatId);
      refreshChats();
    } catch (e) {
      update(() => ({ streaming: false, error: (e as Error).message }));
    } finally {
      off();
      setRunning(null);
    }
  };

  const stop = () => {
    if (running) void api.request('ask.cancel', { requestId: running });
  };

  const onKeyDown = (e: KeyboardEvent<HTMLTextAreaElement>) => {
    if (e.key === 'Enter' && !e.shiftKey && !e.nativeEvent.isComposing) {
      e.preventDefault();
      void send();
    }
  };

  return (
    <div className="chat-layout">
      <nav className="chat-history" aria-label="Chat history">
        <button type="button" onClick={newChat}>
          New chat
        </button>
        {chats.length === 0 ? (
          <p className="note">Your chats will appear here.</p>
        ) : (
          <ul>
            {chats.map((c) => (
              <li key={c.id}>
                <button type="button" className={c.id === chatId ? 'active' : ''} onClick={() => void openChat(c.id)}>
                  {c.title}
                </button>
              </li>
            ))}
          </ul>
        )}
      </nav>
      <section className="chat-main" aria-label="Chat">
        <div className="messages" aria-live="polite">
          {turns.length === 0 && (
            <div className="empty-state">
              <h2>Ask about your documents</h2>
              {!hasFolders && (
                <p>
                  First add a folder in the <button type="button" className="link" onClick={() => onGo('library')}>Library</button>; Quire indexes it
                  on this computer.
                </p>
              )}
              {!modelReady && (
                <p>
                  Answers need a model: choose one in <button type="button" className="link" onClick={() => onGo('settings')}>Settings</button>. Search
                  works without one.
                </p>
              )}
              {hasFolders && modelReady && <p>Type a question below. Answers cite the passages they use; click a number to read it.</p>}
            </div>
          )}
          {turns.map((t) =>
            t.role === 'user' ? (
              <div key={t.key} className="message user">
                {t.content}
              </div>
            ) : (
              <article key={t.key} className="message assistant" aria-busy={t.streaming}>
                <div className="markdown" data-testid="answer">
                  <Markdown>{t.content || (t.streaming ? '…' : '')}</Markdown>
                </div>
                {t.error && <p className="error" role="alert">{t.error}</p>}
                {(t.citations.length > 0 || (t.sources?.length ?? 0) > 0) && (
                  <ol className="citations" aria-label={t.citations.length > 0 ? 'Citations' : 'Sources'}>
                    {t.citations.length === 0 && <li className="note">Sources (not cited in the text):</li>}
                    {(t.citations.length > 0 ? t.citations : t.sources!).map((c) => (
                      <li key={c.ordinal}>
                        <button
                          type="button"
                          aria-label={`Citation ${c.ordinal}: ${c.documentPath}`}
                          onClick={() =>
                            onOpenPassage({
                              passageId: c.passageId,
                              documentPath: c.documentPath,
                              page: c.page,
                              quote: c.quote,
                              query: t.question,
                              label: `[${c.ordinal}] ${c.title ?? basename(c.documentPath)}`,
                            })
                          }
                        >
                          [{c.ordinal}] {c.title ?? basename(c.documentPath)}
                          {c.page ? `, p. ${c.page}` : ''}
                        </button>
                      </li>
                    ))}
                  </ol>
                )}
                {t.figures && <Readout figures={t.figures} />}
              </article>
            ),
          )}
          <div ref={bottom} />
        </div>
        <form
          className="composer"
          onSubmit={(e) => {
            e.preventDefault();
            void send();
          }}
        >
          <textarea
            aria-label="Ask a question"
            placeholder="Ask a question (Enter sends, Shift+Enter for a new line)"
            value={draft}
            rows={2}
            onChange={(e) => setDraft(e.target.value)}
            onKeyDown={onKeyDown}
          />
          {running ? (
            <button type="button" onClick={stop}>
              Stop
            </button>
          ) : (
            <button type="submit" disabled={!draft.trim()}>
              Send
            </button>
          )}
        </form>
      </section>
    </div>
  );
}

export function basename(p: string): string {
  return p.split(/[\\/]/).pop() ?? p;
}
