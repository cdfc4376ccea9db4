// Answers and chats: ask (streamed as answer.text events, one answer at a time in order) and cancel,
// the chat list and transcripts, and the chats' KV kept for follow-ups (ChatSessions: released when
// a chat is deleted or the model changes, capped by bytes). Owns the answers in flight.
// A question opens a new chat before it is asked (the answer streams into it); if the answer fails,
// that chat goes again, so no failed question leaves an empty chat behind. A question too long for
// the model is refused as invalid arguments (the bridge's 400), with the plain message.
import { createChat, deleteChat, getChat, listChats, listMessages, type Citation } from '../../db/chats.ts';
import type { Db } from '../../db/open.ts';
import { PromptTooLongError } from '../../native-models/errors.ts';
import { ask, type AskResult } from '../answering/ask.ts';
import { ChatSessions } from '../answering/chat-sessions.ts';
import { QuireRequestError, type AnswerView, type CitationView, type EmitEvent, type RequestArgs } from '../contract/types.ts';
import type { ModelService } from './model-service.ts';
import type { RequestHandlers } from './request-handlers.ts';
import type { SettingsStore } from './settings-store.ts';

export type AnswerRequest = 'ask' | 'ask.cancel' | 'chats.list' | 'chats.messages' | 'chats.delete';

export class AnswerService {
  /** The chats' KV for follow-ups. */
  readonly chats: ChatSessions;
  private readonly answers = new Map<string, AbortController>();
  private chain: Promise<unknown> = Promise.resolve();
  private readonly unsubscribe: (() => void)[];

  constructor(
    private readonly db: Db,
    private readonly settings: SettingsStore,
    private readonly models: ModelService,
    private readonly emit: EmitEvent,
  ) {
    this.chats = new ChatSessions(settings.get().chatKvBytes);
    this.unsubscribe = [
      // another model's KV is no use to a follow-up (ChatSession.useModel checks it again per turn)
      models.onDidUnload(() => this.chats.releaseAll()),
      settings.onDidChange((next) => this.chats.setCap(next.chatKvBytes)),
    ];
  }

  readonly handlers: RequestHandlers<AnswerRequest> = {
    ask: (args) => this.ask(args),
    'ask.cancel': ({ requestId }) => {
      const controller = this.answers.get(requestId);
      controller?.abort();
      return { cancelled: controller !== undefined };
    },
    'chats.list': () => listChats(this.db).map((c) => ({ id: c.id, title: c.title || 'Untitled chat', updatedAt: c.updatedAt })),
    'chats.messages': ({ chatId }) =>
      listMessages(this.db, chatId).map((m) => ({
        id: m.id,
        role: m.role,
        content: m.content,
        citations: m.citations.map(citationView),
        figures:
          m.role === 'assistant'
            ? {
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
              }
            : null,
      })),
    'chats.delete': ({ chatId }) => {
      this.chats.release(chatId);
      return { deleted: deleteChat(this.db, chatId) };
    },
  };

  private ask({ requestId, question, chatId }: RequestArgs<'ask'>): Promise<AnswerView> {
    if (this.answers.has(requestId)) throw new QuireRequestError('invalid-arguments', `request ${requestId} is already running`);
    const controller = new AbortController();
    this.answers.set(requestId, controller);
    const work = (async (): Promise<AnswerView> => {
      let releaseChat: (() => void) | undefined;
      let opened: number | undefined; // the chat this question created, removed again if it fails
      let failed = false;
      try {
        const ctx = await this.models.ready();
        if (!ctx) throw new QuireRequestError('unavailable', `answers need a model: ${this.models.unavailableReason}`);
        const chat = chatId !== undefined ? getChat(this.db, chatId) : createChat(this.db, question.slice(0, 80));
        if (!chat) throw new QuireRequestError('failed', `no chat ${chatId}`);
        if (chatId === undefined) opened = chat.id;
        const { session, done } = this.chats.take(chat.id);
        releaseChat = done;
        const { k, mode, quality } = this.settings.get();
        let text = '';
        const out = await ask(ctx, question, {
          k,
          mode,
          quality: quality === 'auto' ? undefined : quality,
          chat: session,
          signal: controller.signal,
          onText: (piece) => {
            text += piece;
            this.emit('answer.text', { requestId, text: piece });
          },
        }).catch((e: Error) => {
          // stopped by the user: keep what was streamed
          if (controller.signal.aborted) return null;
          throw e;
        });
        const view = answerView(requestId, chat.id, out, text, ctx.engine.provider);
        this.emit('answer.done', view);
        return view;
      } catch (e) {
        failed = true;
        // too long for the model (prompt-fit.ts's QuestionTooLongError): the user's to shorten
        const error = e instanceof PromptTooLongError ? new QuireRequestError('invalid-arguments', e.message) : e;
        this.emit('answer.error', { requestId, message: (error as Error).message });
        throw error;
      } finally {
        releaseChat?.();
        if (failed && opened !== undefined) this.dropEmptyChat(opened);
        this.answers.delete(requestId);
      }
    })();
    this.chain = Promise.allSettled([this.chain, work]);
    return work;
  }

  /** A chat this service opened for a question that failed: deleted unless something was stored in it. */
  private dropEmptyChat(chatId: number): void {
    if (listMessages(this.db, chatId).length > 0) return;
    this.chats.release(chatId);
    deleteChat(this.db, chatId);
  }

  /** Stops the answers in flight, waits for them to settle, releases the chats' KV. */
  async dispose(): Promise<void> {
    for (const u of this.unsubscribe) u();
    for (const controller of this.answers.values()) controller.abort();
    await this.chain;
    this.chats.releaseAll();
  }
}

/** `out` null: stopped by the user, `streamed` is what was shown (nothing was stored). */
function answerView(requestId: string, chatId: number, out: AskResult | null, streamed: string, provider: string): AnswerView {
  return {
    requestId,
    chatId,
    messageId: out?.messageId ?? null,
    answer: out ? out.answer : streamed,
    ...(out ? askCitations(out) : { citations: [], sources: [] }),
    figures: {
      ttftMs: out?.figures.ttftMs ?? null,
      reusedBlocks: out?.figures.reusedBlocks ?? null,
      computedBlocks: out?.figures.computedBlocks ?? null,
      tokensPerSecond: out?.figures.tokensPerSecond ?? null,
      provider: out?.figures.provider ?? provider,
      mode: out ? `${out.figures.mode}/${out.figures.quality}` : 'stopped',
      passagesUsed: out?.figures.passagesUsed ?? null,
      passagesDropped: out?.figures.passagesDropped ?? null,
      passagesShortened: out?.figures.passagesShortened ?? null,
    },
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
