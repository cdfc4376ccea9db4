// Completions for the OpenAI-compatible API (electron/serve/openai-api.ts): a whole conversation in,
// one answer out, its text streamed as completion.text events. Every scope goes through answering's
// ask: the library and folder scopes retrieve and reuse stored passage KV (the app's question path);
// the plain chat scope asks without retrieval.
//
// The API is stateless (each request carries the whole transcript), so a conversation's KV is found
// again by content: after an answer its chat session is filed under a hash of (scope, system prompt,
// every turn through that answer). A request whose earlier turns hash to a filed session continues
// it, computing only what is new, as a follow-up in the app does. Otherwise (an edited or replayed
// transcript, a session the byte cap released, another server run) the earlier turns are read from
// the messages (conversation.ts) and computed now. Sessions live in the app's ChatSessions under
// string keys: one byte cap for every chat's KV, all released when the model changes; nothing is
// recorded in the database.
import { createHash } from 'node:crypto';
import { getFolder } from '../../db/folders.ts';
import type { Db } from '../../db/open.ts';
import { PromptTooLongError } from '../../native-models/errors.ts';
import { ask, type AskResult } from '../answering/ask.ts';
import type { ChatSessions } from '../answering/chat-sessions.ts';
import type { ChatTurn } from '../answering/conversation.ts';
import { QuireRequestError, type CompletionScope, type CompletionView, type EmitEvent, type RequestArgs } from '../contract/types.ts';
import { askCitations } from './answer-service.ts';
import type { ModelService } from './model-service.ts';
import type { RequestHandlers } from './request-handlers.ts';
import type { SettingsStore } from './settings-store.ts';

export type CompletionRequest = 'completions.create' | 'completions.cancel';

/** Conversations whose sessions are remembered by content (their KV is capped by ChatSessions). */
const MAX_CONVERSATIONS = 256;

export class CompletionService {
  private readonly running = new Map<string, AbortController>();
  /** Conversation hash -> its session's key in `chats`, least recently answered first. */
  private readonly conversations = new Map<string, string>();
  private nextConversation = 1;
  private chain: Promise<unknown> = Promise.resolve();

  constructor(
    private readonly db: Db,
    private readonly settings: SettingsStore,
    private readonly models: ModelService,
    private readonly chats: ChatSessions,
    private readonly emit: EmitEvent,
  ) {}

  readonly handlers: RequestHandlers<CompletionRequest> = {
    'completions.create': (args) => this.create(args),
    'completions.cancel': ({ requestId }) => {
      const controller = this.running.get(requestId);
      controller?.abort();
      return { cancelled: controller !== undefined };
    },
  };

  private create(args: RequestArgs<'completions.create'>): Promise<CompletionView> {
    const { requestId, scope } = args;
    if (this.running.has(requestId)) throw new QuireRequestError('invalid-arguments', `request ${requestId} is already running`);
    const { system, history, question } = splitConversation(args.messages);
    if (scope.kind === 'folder' && !getFolder(this.db, scope.folderId)) {
      throw new QuireRequestError('invalid-arguments', `no folder ${scope.folderId}`);
    }
    const controller = new AbortController();
    this.running.set(requestId, controller);
    const work = (async (): Promise<CompletionView> => {
      const plain = scope.kind === 'chat';
      // the library scopes' instruction block is the stored passages' fixed prefix: a system message cannot change it
      const instruction = plain ? system : '';
      const before = conversationKey(scope, instruction, history);
      const known = this.conversations.get(before);
      this.conversations.delete(before); // the session moves on with this answer
      const key = known ?? `api:${this.nextConversation++}`;
      const { session, done } = this.chats.take(key);
      try {
        const ctx = await this.models.ready();
        if (!ctx) throw new QuireRequestError('unavailable', `answers need a model: ${this.models.unavailableReason}`);
        const continued = session.past !== undefined;
        const { k, mode, quality } = this.settings.get();
        let streamed = '';
        const out = await ask(ctx, question, {
          k,
          mode,
          quality: quality === 'auto' ? undefined : quality,
          folderId: scope.kind === 'folder' ? scope.folderId : undefined,
          plainChat: plain ? { system: system || undefined } : undefined,
          chat: session,
          history,
          // top_p 0 keeps only the most likely token
          sampling: { temperature: args.temperature ?? 0, topP: args.topP || undefined, topK: args.topP === 0 ? 1 : undefined, seed: args.seed },
          // OpenAI's default: up to the context (ask caps it at the room left)
          maxNewTokens: args.maxTokens ?? Number.MAX_SAFE_INTEGER,
          stopStrings: args.stop,
          signal: controller.signal,
          onText: (text) => {
            streamed += text;
            this.emit('completion.text', { requestId, text });
          },
        }).catch((e: Error) => {
          if (controller.signal.aborted) return null; // the client went away
          if (e instanceof PromptTooLongError) throw new QuireRequestError('invalid-arguments', e.message); // the client's to shorten
          throw e;
        });
        if (!out) {
          if (known) this.remember(before, key); // the session did not move
          return cancelledCompletion(requestId, streamed);
        }
        const through: ChatTurn[] = [...history, { role: 'user', content: question }, { role: 'assistant', content: out.answer }];
        this.remember(conversationKey(scope, instruction, through), key);
        return completionView(requestId, out, continued ? 'continued' : history.length > 0 ? 'transcript' : 'new');
      } catch (e) {
        if (known) this.remember(before, key);
        throw e;
      } finally {
        done();
        this.running.delete(requestId);
      }
    })();
    this.chain = Promise.allSettled([this.chain, work]);
    return work;
  }

  private remember(conversation: string, key: string): void {
    this.conversations.set(conversation, key);
    for (const [oldest, oldKey] of this.conversations) {
      if (this.conversations.size <= MAX_CONVERSATIONS) break;
      this.conversations.delete(oldest);
      this.chats.release(oldKey);
    }
  }

  /** Stops the completions in flight and waits for them to settle. */
  async dispose(): Promise<void> {
    for (const controller of this.running.values()) controller.abort();
    await this.chain;
  }
}

/** System messages (joined), the earlier turns, and the last message: the user's question. */
function splitConversation(messages: readonly { role: 'system' | 'user' | 'assistant'; content: string }[]): {
  system: string;
  history: ChatTurn[];
  question: string;
} {
  const system = messages
    .filter((m) => m.role === 'system')
    .map((m) => m.content.trim())
    .filter(Boolean)
    .join('\n\n');
  const turns = messages.filter((m): m is ChatTurn => m.role !== 'system');
  const last = turns.at(-1);
  if (last?.role !== 'user') throw new QuireRequestError('invalid-arguments', 'messages: the last message must be the user\'s');
  if (!last.content.trim()) throw new QuireRequestError('invalid-arguments', 'messages: the user\'s message is empty');
  return { system, history: turns.slice(0, -1), question: last.content };
}

/** A conversation's identity: its scope, system prompt and turns (whitespace at the ends of a message ignored). */
function conversationKey(scope: CompletionScope, system: string, turns: readonly ChatTurn[]): string {
  const where = scope.kind === 'folder' ? `folder:${scope.folderId}` : scope.kind;
  const text = JSON.stringify([where, system, turns.map((t) => [t.role, t.content.trim()])]);
  return createHash('sha256').update(text).digest('hex');
}

function completionView(requestId: string, out: AskResult, context: CompletionView['context']): CompletionView {
  return {
    requestId,
    content: out.answer,
    finishReason: out.stopReason === 'max-tokens' ? 'length' : 'stop',
    promptTokens: out.figures.promptTokens,
    completionTokens: out.figures.outputTokens,
    ...askCitations(out),
    context,
    cancelled: false,
  };
}

function cancelledCompletion(requestId: string, streamed: string): CompletionView {
  return {
    requestId,
    content: streamed,
    finishReason: 'stop',
    promptTokens: 0,
    completionTokens: 0,
    citations: [],
    sources: [],
    context: 'new',
    cancelled: true,
  };
}
