// Answers and chats: ask (streamed as answer.text events, one answer at a time in order), cancel (the
// partial answer is kept, stored as stopped), regenerate (the chat's last exchange replaced, its KV
// rewound to before it), the chat list, transcripts, rename, the folder a chat searches, Markdown
// export, and the chats' KV kept for follow-ups (ChatSessions: released when a chat is deleted, the
// model or the system prompt changes, capped by bytes). Owns the answers in flight.
// A question opens a new chat before it is asked (the answer streams into it); if the answer fails,
// that chat goes again, so no failed question leaves an empty chat behind. ask.prepare prepares the
// question being typed (answering/prepared-question.ts): one prepare held at a time, taken by the
// next question asked where it was prepared, released when a chat is deleted, the model unloads or
// a setting changes. A question too long for
// the model (prompt-fit.ts's QuestionTooLongError) is refused as invalid arguments (the bridge's
// 400) with its plain message; a refused regenerate leaves the chat's KV released, never half-rewound.
import {
  addMessage,
  createChat,
  deleteChat,
  deleteMessages,
  getChat,
  lastExchange,
  listChats,
  listMessages,
  renameChat,
  setChatFolder,
  type Chat,
  type Citation,
  type Message,
} from '../../db/chats.ts';
import { getFolder } from '../../db/folders.ts';
import type { Db } from '../../db/open.ts';
import { PromptTooLongError } from '../../native-models/errors.ts';
import { ask, type AskResult } from '../answering/ask.ts';
import type { ChatMark, ChatSession } from '../answering/chat-context.ts';
import { ChatSessions } from '../answering/chat-sessions.ts';
import { PreparedQuestions } from '../answering/prepared-question.ts';
import {
  QuireRequestError,
  type AnswerFiguresView,
  type AnswerView,
  type ChatView,
  type CitationView,
  type EmitEvent,
  type MessageView,
  type RequestArgs,
} from '../contract/types.ts';
import { chatMarkdown, exportFileName } from './chat-markdown.ts';
import type { AnsweredQuestion } from '../answering/background-prefill.ts';
import type { ModelService } from './model-service.ts';
import type { RequestHandlers } from './request-handlers.ts';
import type { SettingsStore } from './settings-store.ts';

export type AnswerRequest = 'ask' | 'ask.cancel' | 'ask.prepare' | 'chats.list' | 'chats.messages' | 'chats.delete' | 'chats.update' | 'chats.export';

/** With a temperature above 0, sampling keeps the tokens that make up 95% of the probability (nucleus). */
const TOP_P = 0.95;

export class AnswerService {
  /** The chats' KV for follow-ups. */
  readonly chats: ChatSessions;
  private readonly answers = new Map<string, AbortController>();
  /** The question being typed, prepared (ask.prepare). */
  private readonly prepared = new PreparedQuestions();
  /** Per chat: where its KV stood before its last turn, so a regenerated answer can replace that turn. */
  private readonly beforeLastTurn = new Map<number, ChatMark>();
  private chain: Promise<unknown> = Promise.resolve();
  private readonly unsubscribe: (() => void)[];

  constructor(
    private readonly db: Db,
    private readonly settings: SettingsStore,
    private readonly models: ModelService,
    private readonly emit: EmitEvent,
    /** Hears of each question answered from passages (kv-service.ts prefills what it predicts). */
    private readonly onAnswered: (q: AnsweredQuestion) => void = () => undefined,
  ) {
    this.chats = new ChatSessions(settings.get().chatKvBytes);
    this.unsubscribe = [
      // another model's KV is no use to a follow-up (ChatSession.useModel checks it again per turn)
      models.onDidUnload(() => {
        this.prepared.release();
        this.chats.releaseAll();
      }),
      settings.onDidChange((next, previous) => {
        // k, mode, quality, the answer length or the system prompt may plan the question otherwise
        this.prepared.release();
        this.chats.setCap(next.chatKvBytes);
        // a chat's KV starts with the old system turn: its follow-ups start the context over
        if (next.systemPrompt !== previous.systemPrompt) this.chats.releaseAll();
      }),
    ];
  }

  readonly handlers: RequestHandlers<AnswerRequest> = {
    ask: (args) => this.ask(args),
    'ask.cancel': ({ requestId }) => {
      const controller = this.answers.get(requestId);
      controller?.abort();
      return { cancelled: controller !== undefined };
    },
    'ask.prepare': (args) => this.prepare(args),
    'chats.list': () => listChats(this.db).map(chatView),
    'chats.messages': ({ chatId }) => listMessages(this.db, chatId).map(messageView),
    'chats.delete': ({ chatId }) => {
      this.prepared.release();
      this.chats.release(chatId);
      this.beforeLastTurn.delete(chatId);
      return { deleted: deleteChat(this.db, chatId) };
    },
    'chats.update': ({ chatId, title, folderId }) => {
      this.chatOrThrow(chatId);
      if (folderId !== undefined && folderId !== null) this.folderOrThrow(folderId);
      this.db.transaction(() => {
        if (title !== undefined) renameChat(this.db, chatId, title.trim() || 'Untitled chat');
        if (folderId !== undefined) setChatFolder(this.db, chatId, folderId);
      })();
      return chatView(this.chatOrThrow(chatId));
    },
    'chats.export': ({ chatId }) => {
      const chat = this.chatOrThrow(chatId);
      const folderPath = chat.folderId !== null ? (getFolder(this.db, chat.folderId)?.path ?? null) : null;
      return { fileName: exportFileName(chat.title), markdown: chatMarkdown(chat, listMessages(this.db, chatId), { folderPath }) };
    },
  };

  private chatOrThrow(chatId: number): Chat {
    const chat = getChat(this.db, chatId);
    if (!chat) throw new QuireRequestError('failed', `no chat ${chatId}`);
    return chat;
  }

  private folderOrThrow(folderId: number): void {
    if (!getFolder(this.db, folderId)) throw new QuireRequestError('invalid-arguments', `no folder ${folderId} in the library`);
  }

  /**
   * Prepares `question` for the chat it will be asked in, with the settings ask will use; resolves
   * once its context is ready (prepared: true), or with false when there is nothing to prepare or the
   * prepare was replaced or gave way to a question. Never fails for the question's sake: a question
   * too long, a chat or folder gone, all leave it to ask to say so.
   */
  private async prepare({ question, chatId, folderId }: RequestArgs<'ask.prepare'>): Promise<{ prepared: boolean }> {
    const ctx = await this.models.ready();
    if (!ctx) return { prepared: false };
    const chat = chatId !== undefined ? getChat(this.db, chatId) : null;
    if (chatId !== undefined && !chat) return { prepared: false };
    const { k, mode, quality, maxAnswerTokens } = this.settings.get();
    let prepared;
    try {
      // the chat's session as it stands (planned on a copy: prepared-question.ts)
      const taken = chat ? this.chats.take(chat.id) : undefined;
      try {
        prepared = this.prepared.prepare(prepareKey(chatId, folderId), ctx, question, {
          k,
          mode,
          quality: quality === 'auto' ? undefined : quality,
          folderId: chat ? (chat.folderId ?? undefined) : folderId,
          chat: taken?.session,
          maxNewTokens: maxAnswerTokens,
        });
      } finally {
        taken?.done();
      }
    } catch {
      return { prepared: false }; // e.g. too long for the model: ask says so when it is sent
    }
    return { prepared: (await prepared?.ready) !== undefined };
  }

  private ask({ requestId, question, chatId, folderId, regenerate }: RequestArgs<'ask'>): Promise<AnswerView> {
    if (this.answers.has(requestId)) throw new QuireRequestError('invalid-arguments', `request ${requestId} is already running`);
    if (regenerate && chatId === undefined) throw new QuireRequestError('invalid-arguments', 'regenerate needs the chat whose answer it replaces');
    const controller = new AbortController();
    this.answers.set(requestId, controller);
    // the question prepared while it was typed, if it was prepared where it is asked (a regenerate
    // rewinds the chat first: no prepare matches it)
    const prepared = regenerate ? (this.prepared.release(), undefined) : this.prepared.take(prepareKey(chatId, folderId));
    const work = (async (): Promise<AnswerView> => {
      let releaseChat: (() => void) | undefined;
      let createdChat: number | undefined; // the chat this question created, removed again if it fails
      let failed = false;
      let session: ChatSession | undefined;
      let replaced: ReturnType<typeof lastExchange> = null;
      let text = '';
      try {
        const ctx = await this.models.ready();
        if (!ctx) throw new QuireRequestError('unavailable', `answers need a model: ${this.models.unavailableReason}`);
        if (folderId !== undefined) this.folderOrThrow(folderId);
        const chat = chatId !== undefined ? this.chatOrThrow(chatId) : createChat(this.db, question.slice(0, 80), Date.now(), folderId ?? null);
        if (chatId === undefined) createdChat = chat.id;
        const taken = this.chats.take(chat.id);
        ({ session } = taken);
        releaseChat = taken.done;
        if (regenerate) {
          replaced = lastExchange(this.db, chat.id);
          if (!replaced) throw new QuireRequestError('failed', 'this chat has no answer to regenerate');
          const mark = this.beforeLastTurn.get(chat.id);
          if (mark) session.rewind(mark);
          else session.release();
        }
        // where the KV stands before this turn: the chat's mark once the turn is stored (a refused
        // question leaves the last stored turn's mark in place)
        const before = session.mark();
        const { k, mode, quality, temperature, maxAnswerTokens } = this.settings.get();
        const out = await ask(ctx, question, {
          k,
          mode,
          quality: quality === 'auto' ? undefined : quality,
          folderId: chat.folderId ?? undefined,
          chat: session,
          sampling: temperature > 0 ? { temperature, topP: TOP_P } : undefined,
          maxNewTokens: maxAnswerTokens,
          signal: controller.signal,
          prepared,
          onText: (piece) => {
            text += piece;
            this.emit('answer.text', { requestId, text: piece });
          },
        }).catch((e: Error) => {
          // stopped by the user: keep what was written (stored below, marked stopped)
          if (controller.signal.aborted) return null;
          throw e;
        });
        if (out?.ranModel) this.onAnswered({ question, k, folderId: chat.folderId ?? undefined, passageIds: out.passages.map((p) => p.passageId) });
        let messageId = out?.messageId ?? null;
        if (!out) messageId = this.recordStopped(chat.id, question, text, ctx.engine.provider, replaced !== null);
        if (messageId !== null) {
          this.beforeLastTurn.set(chat.id, before);
          // the regenerated exchange goes once its replacement is stored
          if (replaced) deleteMessages(this.db, [replaced.questionId, replaced.answerId]);
        } else if (replaced) {
          // a regenerate stopped before any text keeps the old exchange, which the rewound KV no longer holds
          session.release();
        }
        const view = answerView(requestId, chat.id, messageId, out, text, ctx.engine.provider);
        this.emit('answer.done', view);
        return view;
      } catch (e) {
        prepared?.abort(); // refused before ask took it
        failed = true;
        // a refused regenerate leaves no half-rewound KV: the chat's next question starts the context over
        if (replaced) session?.release();
        // too long for the model (prompt-fit.ts's QuestionTooLongError): the user's to shorten
        const error = e instanceof PromptTooLongError ? new QuireRequestError('invalid-arguments', e.message) : (e as Error);
        this.emit('answer.error', { requestId, message: error.message });
        throw error;
      } finally {
        releaseChat?.();
        if (failed && createdChat !== undefined) this.dropEmptyChat(createdChat);
        this.answers.delete(requestId);
      }
    })();
    this.chain = Promise.allSettled([this.chain, work]);
    return work;
  }

  /**
   * Stores a stopped answer (what was written until the stop) with its question. A regenerate
   * stopped before any text stores nothing: the answer it would replace stays. Returns the id.
   */
  private recordStopped(chatId: number, question: string, text: string, provider: string, regenerating: boolean): number | null {
    if (regenerating && !text.trim()) return null;
    return this.db.transaction(() => {
      addMessage(this.db, chatId, { role: 'user', content: question });
      return addMessage(this.db, chatId, { role: 'assistant', content: text.trim(), stopped: true, figures: { provider } }).id;
    })();
  }

  /** A chat this service opened for a question that failed: deleted unless something was stored in it. */
  private dropEmptyChat(chatId: number): void {
    if (listMessages(this.db, chatId).length > 0) return;
    this.chats.release(chatId);
    this.beforeLastTurn.delete(chatId);
    deleteChat(this.db, chatId);
  }

  /** Stops the answers in flight, waits for them to settle, releases the chats' KV. */
  async dispose(): Promise<void> {
    for (const u of this.unsubscribe) u();
    this.prepared.release();
    for (const controller of this.answers.values()) controller.abort();
    await this.chain;
    this.chats.releaseAll();
  }
}

/** Where a question is asked, as the prepared question is keyed: a chat, or a new chat over a folder (or every folder). */
function prepareKey(chatId: number | undefined, folderId: number | undefined): string {
  return chatId !== undefined ? `chat ${chatId}` : `new ${folderId ?? 'all'}`;
}

function chatView(c: Chat): ChatView {
  return { id: c.id, title: c.title || 'Untitled chat', updatedAt: c.updatedAt, folderId: c.folderId };
}

function messageView(m: Message): MessageView {
  return {
    id: m.id,
    role: m.role,
    content: m.content,
    citations: m.citations.map(citationView),
    figures:
      m.role === 'assistant'
        ? {
            contextPassages: m.figures.contextPassages,
            ttftMs: m.figures.ttftMs,
            reusedBlocks: m.figures.blocksReused,
            computedBlocks: m.figures.blocksComputed,
            // the figure decode measured (native-models/decode.ts), as the live answer showed it
            tokensPerSecond: m.figures.tokensPerSecond ?? null,
            provider: m.figures.provider,
            mode: null,
            // not stored with the message
            passagesUsed: null,
            passagesDropped: null,
            passagesShortened: null,
            prefetched: null,
          }
        : null,
    stopped: m.stopped,
  };
}

/** `out` null: stopped by the user, `streamed` is what was written until then. */
function answerView(requestId: string, chatId: number, messageId: number | null, out: AskResult | null, streamed: string, provider: string): AnswerView {
  const figures: AnswerFiguresView = out
    ? {
        contextPassages: out.passages.length,
        ttftMs: out.ranModel ? out.figures.ttftMs : null,
        reusedBlocks: out.ranModel ? out.figures.reusedBlocks : null,
        computedBlocks: out.ranModel ? out.figures.computedBlocks : null,
        tokensPerSecond: out.ranModel ? out.figures.tokensPerSecond : null,
        provider: out.figures.provider,
        mode: `${out.figures.mode}/${out.figures.quality}`,
        passagesUsed: out.figures.passagesUsed,
        passagesDropped: out.figures.passagesDropped,
        passagesShortened: out.figures.passagesShortened,
        prefetched: out.ranModel ? out.figures.prefetched : null,
      }
    : {
        contextPassages: null,
        ttftMs: null,
        reusedBlocks: null,
        computedBlocks: null,
        tokensPerSecond: null,
        provider,
        mode: null,
        passagesUsed: null,
        passagesDropped: null,
        passagesShortened: null,
        prefetched: null,
      };
  return {
    requestId,
    chatId,
    messageId,
    answer: out ? out.answer : streamed.trim(),
    ...(out ? askCitations(out) : { citations: [], sources: [] }),
    figures,
    cancelled: out === null,
  };
}

/** An answer's cited passages ([n] in its text) and every passage in its context, numbered as the model saw them. */
export function askCitations(out: AskResult): { citations: CitationView[]; sources: CitationView[] } {
  return {
    citations: out.citations.map((c) => ({ ordinal: c.n, passageId: c.passageId, documentPath: c.path, title: c.title, page: c.page, quote: '' })),
    sources: out.passages.map((p, i) => ({
      ordinal: i + 1,
      passageId: p.passageId,
      documentPath: p.path,
      title: p.title,
      page: p.page,
      quote: p.text.slice(0, 300),
    })),
  };
}

function citationView(c: Citation): CitationView {
  return { ordinal: c.ordinal, passageId: c.passageId, documentPath: c.documentPath, title: c.title ?? null, page: c.page ?? null, quote: c.quote };
}
