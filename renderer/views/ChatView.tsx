import { useCallback, useEffect, useRef, useState } from 'react';
import Markdown from 'react-markdown';
import { QUESTION_MAX_CHARS, type AnswerFiguresView, type ChatView as ChatSummary, type CitationView, type FolderView } from '../../electron/contract/types.ts';
import type { RendererApi } from '../api.ts';
import { copyText, downloadText } from '../clipboard.ts';
import { Composer } from '../components/Composer.tsx';
import { ConfirmButton } from '../components/ConfirmButton.tsx';
import type { PassageRef } from '../components/PassagePanel.tsx';
import { Readout } from '../components/Readout.tsx';
import { SourceList } from '../components/SourceList.tsx';
import { basename } from '../format.ts';

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
  /** Stopped by the user: the content is what was written until then. */
  stopped?: boolean;
}

/**
 * Prefetch while typing: a question this long (trimmed characters) is prepared (ask.prepare) this
 * long after the last keystroke; shorter ones retrieve too little to be worth preparing.
 */
export const PREPARE_MIN_CHARS = 12;
export const PREPARE_AFTER_MS = 300;

/** Where a question would be asked and what it is: a prepare's result counts only for this. */
function prepareTarget(question: string, chatId: number | undefined, scope: number | undefined): string {
  return JSON.stringify([question, chatId ?? null, chatId === undefined ? (scope ?? null) : null]);
}

/** The chat opened last, reopened at the next start (localStorage: per window origin). */
const LAST_CHAT_KEY = 'quire.lastChat';

function newRequestId(): string {
  return globalThis.crypto?.randomUUID?.() ?? `r${Date.now()}${Math.random().toString(36).slice(2)}`;
}

function remember(chatId: number | undefined): void {
  try {
    if (chatId === undefined) localStorage.removeItem(LAST_CHAT_KEY);
    else localStorage.setItem(LAST_CHAT_KEY, String(chatId));
  } catch {
    // storage refused (private mode): the most recent chat opens instead
  }
}

function remembered(): number | null {
  try {
    const id = Number(localStorage.getItem(LAST_CHAT_KEY));
    return Number.isInteger(id) && id > 0 ? id : null;
  } catch {
    return null;
  }
}

export function ChatView({
  api,
  modelReady,
  folders,
  onOpenPassage,
  onGo,
}: {
  api: RendererApi;
  modelReady: boolean;
  folders: FolderView[];
  onOpenPassage: (ref: PassageRef) => void;
  onGo: (view: 'library' | 'settings') => void;
}) {
  /** null until the first list arrives. */
  const [chats, setChats] = useState<ChatSummary[] | null>(null);
  const [chatId, setChatId] = useState<number | undefined>(undefined);
  const [turns, setTurns] = useState<Turn[]>([]);
  const [draft, setDraft] = useState('');
  const [running, setRunning] = useState<string | null>(null);
  const [composerError, setComposerError] = useState<string | null>(null);
  /** The folder a new chat will search (undefined: every folder). */
  const [scope, setScope] = useState<number | undefined>(undefined);
  const [renaming, setRenaming] = useState<string | null>(null);
  const [copied, setCopied] = useState<string | null>(null);
  const [note, setNote] = useState<string | null>(null);
  /** The question (and chat) whose context the engine has prepared (prepareTarget). */
  const [prepared, setPrepared] = useState<string | null>(null);
  /** Counts prepares: only the latest one's result is kept (older ones were replaced). */
  const prepareSeq = useRef(0);
  const bottom = useRef<HTMLDivElement>(null);
  const reopened = useRef(false);

  const refreshChats = useCallback(() => api.request('chats.list', {}).then(setChats, () => setChats((c) => c ?? [])), [api]);

  const openChat = useCallback(
    async (id: number) => {
      setChatId(id);
      remember(id);
      setComposerError(null);
      setRenaming(null);
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
              stopped: m.stopped,
            };
          }),
      );
    },
    [api],
  );

  useEffect(() => {
    void refreshChats().then(() => undefined);
  }, [refreshChats]);

  // the last chat reopens at start (the one opened last, else the most recent)
  useEffect(() => {
    if (reopened.current || chats === null) return;
    reopened.current = true;
    const last = remembered();
    const target = chats.find((c) => c.id === last) ?? chats[0];
    if (target) void openChat(target.id);
  }, [chats, openChat]);

  useEffect(() => {
    // (a block: newer Chromium returns a promise from scrollIntoView, which React would take for a cleanup)
    void bottom.current?.scrollIntoView?.({ block: 'end' });
  }, [turns]);

  // prefetch while typing: PREPARE_AFTER_MS after the last keystroke, the question's context is
  // prepared for where it will be asked, so Enter runs only its final block (the answer's figures
  // say "prefetched while typing" when it did); a newer prepare or a question replaces it
  useEffect(() => {
    const question = draft.trim();
    if (!modelReady || running !== null || question.length < PREPARE_MIN_CHARS || question.length > QUESTION_MAX_CHARS) return;
    const seq = ++prepareSeq.current;
    const target = prepareTarget(question, chatId, scope);
    const timer = setTimeout(() => {
      setPrepared(null); // the engine holds this prepare from now on, ready or not
      api.request('ask.prepare', { question, ...(chatId !== undefined ? { chatId } : scope !== undefined ? { folderId: scope } : {}) }).then(
        (r) => {
          if (seq === prepareSeq.current && r.prepared) setPrepared(target);
        },
        () => undefined, // a failed prepare costs only the prefetch: the question is asked as usual
      );
    }, PREPARE_AFTER_MS);
    return () => clearTimeout(timer);
  }, [api, draft, chatId, scope, modelReady, running]);

  const current = chats?.find((c) => c.id === chatId);
  const folderOf = (id: number | null | undefined) => folders.find((f) => f.id === id);

  const newChat = () => {
    setChatId(undefined);
    setTurns([]);
    setComposerError(null);
    setRenaming(null);
    remember(undefined);
  };

  const send = async (text: string, regenerate = false) => {
    const question = text.trim();
    if (!question || running) return;
    const requestId = newRequestId();
    const key = `a-${requestId}`;
    const before = turns;
    prepareSeq.current++; // a prepare still on its way is not this question's
    if (!regenerate) setDraft('');
    setComposerError(null);
    setRunning(requestId);
    setTurns((t) => [
      ...(regenerate ? t.slice(0, -2) : t),
      { key: `q-${requestId}`, role: 'user', content: question, citations: [], figures: null },
      { key, role: 'assistant', content: '', citations: [], figures: null, question, streaming: true },
    ]);
    const update = (patch: (turn: Turn) => Partial<Turn>) => setTurns((t) => t.map((x) => (x.key === key ? { ...x, ...patch(x) } : x)));
    const off = api.on('answer.text', (e) => {
      if (e.requestId === requestId) update((x) => ({ content: x.content + e.text }));
    });
    try {
      const answer = await api.request('ask', {
        requestId,
        question,
        ...(chatId !== undefined ? { chatId } : scope !== undefined ? { folderId: scope } : {}),
        ...(regenerate ? { regenerate: true } : {}),
      });
      update(() => ({
        content: answer.answer,
        citations: answer.citations,
        sources: answer.sources,
        figures: answer.figures,
        streaming: false,
        stopped: answer.cancelled,
      }));
      setChatId(answer.chatId);
      remember(answer.chatId);
      void refreshChats();
    } catch (e) {
      // refused: nothing was stored, so nothing stays in the chat; the question goes back in the box
      setTurns(before);
      if (!regenerate) setDraft((d) => (d.trim() ? d : question));
      setComposerError((e as Error).message);
    } finally {
      off();
      setRunning(null);
    }
  };

  const stop = () => {
    if (running) void api.request('ask.cancel', { requestId: running });
  };

  const copy = async (turn: Turn) => {
    const ok = await copyText(turn.content);
    setCopied(ok ? turn.key : null);
    setNote(ok ? null : 'Copy failed: select the text and copy it with the keyboard.');
    if (ok) setTimeout(() => setCopied((k) => (k === turn.key ? null : k)), 2000);
  };

  const changeScope = async (value: string) => {
    const folderId = value ? Number(value) : null;
    if (chatId === undefined) {
      setScope(folderId ?? undefined);
      return;
    }
    await api.request('chats.update', { chatId, folderId });
    await refreshChats();
  };

  const rename = async (title: string) => {
    if (chatId === undefined || !title.trim()) return;
    await api.request('chats.update', { chatId, title: title.trim() });
    setRenaming(null);
    await refreshChats();
  };

  const exportChat = async () => {
    if (chatId === undefined) return;
    const { fileName, markdown } = await api.request('chats.export', { chatId });
    downloadText(fileName, markdown);
  };

  const deleteCurrent = async () => {
    if (chatId === undefined) return;
    await api.request('chats.delete', { chatId });
    // off the list in the same render as the new chat opens (the list is re-read after)
    setChats((cs) => cs?.filter((c) => c.id !== chatId) ?? cs);
    newChat();
    await refreshChats();
  };

  const lastAnswer = turns.at(-1)?.role === 'assistant' ? turns.at(-1) : undefined;
  const scopeValue = chatId !== undefined ? (current?.folderId ?? '') : (scope ?? '');
  const scopeFolder = folderOf(chatId !== undefined ? current?.folderId : scope);

  return (
    <div className="chat-layout">
      <nav className="chat-history" aria-label="Chat history">
        <button type="button" className="new-chat" onClick={newChat}>
          New chat
        </button>
        {chats === null ? (
          <p className="note">Loading chats…</p>
        ) : chats.length === 0 ? (
          <p className="note">No chats yet: your first question starts one.</p>
        ) : (
          <ul>
            {chats.map((c) => (
              <li key={c.id}>
                <button type="button" className={c.id === chatId ? 'active' : ''} aria-current={c.id === chatId ? 'true' : undefined} title={c.title} onClick={() => void openChat(c.id)}>
                  {c.title}
                </button>
              </li>
            ))}
          </ul>
        )}
      </nav>
      <section className="chat-main" aria-label="Chat">
        <header className="chat-header">
          {renaming !== null ? (
            <form
              className="rename"
              onSubmit={(e) => {
                e.preventDefault();
                void rename(renaming);
              }}
            >
              <input
                aria-label="Chat title"
                value={renaming}
                autoFocus
                maxLength={200}
                onChange={(e) => setRenaming(e.target.value)}
                onKeyDown={(e) => {
                  if (e.key === 'Escape') {
                    e.preventDefault();
                    setRenaming(null);
                  }
                }}
              />
              <button type="submit" disabled={!renaming.trim()}>
                Save
              </button>
              <button type="button" onClick={() => setRenaming(null)}>
                Cancel
              </button>
            </form>
          ) : (
            <h2 className="chat-title" title={current?.title}>
              {current?.title ?? 'New chat'}
            </h2>
          )}
          <label className="scope">
            <span>Search in</span>
            <select aria-label="Folders this chat searches" value={scopeValue} onChange={(e) => void changeScope(e.target.value)}>
              <option value="">All folders</option>
              {folders.map((f) => (
                <option key={f.id} value={f.id} title={f.path}>
                  {basename(f.path)}
                </option>
              ))}
            </select>
          </label>
          {chatId !== undefined && renaming === null && (
            <div className="chat-actions">
              <button type="button" onClick={() => setRenaming(current?.title ?? '')}>
                Rename
              </button>
              <button type="button" onClick={() => void exportChat()}>
                Export
              </button>
              <ConfirmButton label="Delete" question="Delete this chat?" confirmLabel="Delete chat" onConfirm={() => void deleteCurrent()} />
            </div>
          )}
        </header>
        <div className="messages" aria-live="polite">
          {turns.length === 0 && (
            <div className="empty-state">
              <h2>Ask about your documents</h2>
              {folders.length === 0 && (
                <p>
                  First add a folder in the{' '}
                  <button type="button" className="link" onClick={() => onGo('library')}>
                    Library
                  </button>
                  ; Quire indexes it on this computer.
                </p>
              )}
              {!modelReady && (
                <p>
                  Answers need a model: choose one in{' '}
                  <button type="button" className="link" onClick={() => onGo('settings')}>
                    Settings
                  </button>
                  . Search works without one.
                </p>
              )}
              {folders.length > 0 && modelReady && (
                <p>
                  Type a question below{scopeFolder ? ` about ${basename(scopeFolder.path)}` : ''}. Answers cite the passages they use; click a number
                  to read it.
                </p>
              )}
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
                {t.stopped && (
                  <p className="stopped" data-testid="stopped">
                    {t.content ? 'Stopped: the answer was cut short here.' : 'Stopped before the answer began.'}
                  </p>
                )}
                {(t.citations.length > 0 || (t.sources?.length ?? 0) > 0) && (
                  <SourceList
                    items={t.citations.length > 0 ? t.citations : t.sources!}
                    cited={t.citations.length > 0}
                    onOpen={(c) =>
                      onOpenPassage({
                        passageId: c.passageId,
                        documentPath: c.documentPath,
                        page: c.page,
                        title: c.title,
                        ordinal: c.ordinal,
                        quote: c.quote,
                        question: t.question,
                      })
                    }
                  />
                )}
                {t.figures && <Readout figures={t.figures} />}
                {!t.streaming && (
                  <div className="answer-actions">
                    <button type="button" onClick={() => void copy(t)} disabled={!t.content}>
                      {copied === t.key ? 'Copied' : 'Copy'}
                    </button>
                    {t === lastAnswer && chatId !== undefined && t.question && (
                      <button type="button" disabled={running !== null || !modelReady} onClick={() => void send(t.question!, true)}>
                        Regenerate
                      </button>
                    )}
                  </div>
                )}
              </article>
            ),
          )}
          {note && (
            <p className="note" role="status">
              {note}
            </p>
          )}
          <div ref={bottom} />
        </div>
        <Composer
          draft={draft}
          onDraft={setDraft}
          onSend={() => void send(draft)}
          onStop={stop}
          running={running !== null}
          prepared={prepared !== null && prepared === prepareTarget(draft.trim(), chatId, scope)}
          disabledReason={modelReady ? undefined : 'Answers need a model (Settings); search works without one'}
          error={composerError}
        />
      </section>
    </div>
  );
}
