// Follow-up questions: a chat keeps its earlier turns in the context. Its KV (instruction, passages,
// each question's final block, each answer, and the template text that closes the answer and opens
// the next user turn) stays in memory for the chat, so a follow-up computes only what is new:
// an intro line, the passage blocks not already in the chat (loaded or prefilled as usual, re-encoded
// after the chat's past, numbered on from the last), and its final block.
//
// That KV belongs to the model that computed it. A released session (chat deleted, model changed,
// evicted by ChatSessions' byte cap) or one asked on another model starts over as a new context:
// the follow-up is answered from its own retrieval on the current model, like a first question;
// the transcript stays in the database and on screen, but the model no longer sees earlier turns.
// (Recomputing the earlier turns from the transcript would cost a whole prefill of the chat.)
import { Template } from '@huggingface/jinja';
import { sliceKv, type KvCache } from '../../native-models/kv.ts';
import type { ModelFolder } from '../../native-models/model-folder.ts';
import type { RetrievedPassage } from './retrieve.ts';

/** A chat's state between turns (ChatSession.mark). */
export interface ChatMark {
  tokens: number;
  passages: number;
  turns: number;
  model: string | undefined;
}

export const FOLLOW_UP_INTRO = 'Below are more reference documents that may help.\n\n';

export class ChatSession {
  /** Everything so far, through the next user turn's header; undefined before the first answer. */
  past: KvCache | undefined;
  /** Passages in the chat, numbered [1]..[n] in the order they joined. */
  passages: RetrievedPassage[] = [];
  turns = 0;
  /** The fingerprint of the model that computed `past`. */
  private model: string | undefined;

  /** `chatId`: a chat in the database (chats.ts) to record the messages in, if any. */
  constructor(readonly chatId?: number) {}

  /** Called before a turn: a past computed by another model is released (the chat starts over). */
  useModel(fingerprint: string): void {
    if (this.model !== undefined && this.model !== fingerprint) this.release();
    this.model = fingerprint;
  }

  /** Where the chat stands before a turn, to come back to it (rewind) if the turn is replaced. */
  mark(): ChatMark {
    return { tokens: this.past?.tokens ?? 0, passages: this.passages.length, turns: this.turns, model: this.model };
  }

  /**
   * Back to `mark`, taken just before the last turn (a regenerated answer replaces that turn). A
   * turn only appends to the KV and to the passages, so the state before it is a prefix of both.
   * When the chat has moved on otherwise since (released, another model, more turns), it starts over.
   * (A mark the chat never moved past, as after a stopped answer, leaves it as it is.)
   */
  rewind(mark: ChatMark): void {
    // the last turn left the KV as it was (stopped, or nothing found): nothing to undo
    if (this.turns === mark.turns && this.model === mark.model && (this.past?.tokens ?? 0) === mark.tokens) return;
    if (this.turns !== mark.turns + 1 || this.model !== mark.model || !this.past) {
      this.release();
      return;
    }
    this.past = mark.tokens > 0 ? sliceKv(this.past, 0, mark.tokens) : undefined;
    this.passages = this.passages.slice(0, mark.passages);
    this.turns = mark.turns;
  }

  /**
   * Where the chat stands, as a separate session holding the same KV (not copied): a turn planned
   * on it ahead of the question (prepared-question.ts) changes nothing of this chat.
   */
  copy(): ChatSession {
    const c = new ChatSession(this.chatId);
    c.past = this.past;
    c.passages = [...this.passages];
    c.turns = this.turns;
    c.model = this.model;
    return c;
  }

  /** Frees the chat's KV and starts the context over (the transcript stays in the database). */
  release(): void {
    this.past = undefined;
    this.passages = [];
    this.turns = 0;
    this.model = undefined;
  }

  /** Memory held by the chat's KV. */
  get kvBytes(): number {
    if (!this.past) return 0;
    let bytes = 0;
    for (const data of [...this.past.keys, ...this.past.values]) bytes += data.byteLength;
    return bytes;
  }
}

const A = '\u2063QUIRE-A\u2063';
const B = '\u2063QUIRE-B\u2063';

function special(value: unknown): string {
  if (typeof value === 'string') return value;
  const content = (value as { content?: unknown } | null)?.content;
  return typeof content === 'string' ? content : '';
}

/**
 * The template's text between an assistant message's content and the next user message's content
 * (e.g. ChatML: "<|im_end|>\n<|im_start|>user\n"); "\n\n" without a template.
 */
export function turnSeparator(model: Pick<ModelFolder, 'chatTemplate' | 'tokenizerConfig'>, system: string): string {
  if (!model.chatTemplate) return '\n\n';
  const cfg = model.tokenizerConfig;
  const rendered = new Template(model.chatTemplate).render({
    messages: [
      { role: 'system', content: system },
      { role: 'user', content: 'q' },
      { role: 'assistant', content: A },
      { role: 'user', content: B },
    ],
    add_generation_prompt: true,
    bos_token: special(cfg.bos_token),
    eos_token: special(cfg.eos_token),
    pad_token: special(cfg.pad_token),
    unk_token: special(cfg.unk_token),
  });
  const a = rendered.indexOf(A);
  const b = rendered.indexOf(B);
  if (a < 0 || b < a) throw new Error('chat template does not render a follow-up turn');
  return rendered.slice(a + A.length, b);
}
