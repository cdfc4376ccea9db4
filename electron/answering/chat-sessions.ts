// The chats' in-memory KV (ChatSession, chat-context.ts), bounded: a byte cap over every chat's KV,
// least recently used chats released first, and every chat released when the model changes. A
// released chat still answers: its next question starts the context over (chat-context.ts).
// Chats with an answer in flight are never released by the cap (their session is in use).
import { ChatSession } from './chat-context.ts';

export const DEFAULT_CHAT_KV_BYTES = 512 * 1024 ** 2;

export class ChatSessions {
  /** By chat id, least recently used first (a Map keeps insertion order; use re-inserts). */
  private readonly sessions = new Map<number, ChatSession>();
  /** Chat id -> answers in flight that hold its session. */
  private readonly inUse = new Map<number, number>();

  constructor(private capBytes: number = DEFAULT_CHAT_KV_BYTES) {}

  /** KV bytes held by every chat. */
  get bytes(): number {
    let total = 0;
    for (const s of this.sessions.values()) total += s.kvBytes;
    return total;
  }

  get size(): number {
    return this.sessions.size;
  }

  /**
   * The chat's session for one answer, marked most recently used and held until `done` is called
   * (then the cap applies again).
   */
  take(chatId: number): { session: ChatSession; done: () => void } {
    let session = this.sessions.get(chatId);
    if (session) this.sessions.delete(chatId);
    else session = new ChatSession(chatId);
    this.sessions.set(chatId, session);
    this.inUse.set(chatId, (this.inUse.get(chatId) ?? 0) + 1);
    let held = true;
    return {
      session,
      done: () => {
        if (!held) return;
        held = false;
        const n = this.inUse.get(chatId)! - 1;
        if (n > 0) this.inUse.set(chatId, n);
        else this.inUse.delete(chatId);
        this.enforceCap();
      },
    };
  }

  /** Whether the chat's KV is held in memory. */
  holds(chatId: number): boolean {
    return (this.sessions.get(chatId)?.kvBytes ?? 0) > 0;
  }

  /** A deleted chat: its KV goes. */
  release(chatId: number): void {
    this.sessions.get(chatId)?.release();
    if (!this.inUse.has(chatId)) this.sessions.delete(chatId);
  }

  /** The model changed (or the service closes): no chat's KV is any use now. */
  releaseAll(): void {
    for (const [chatId, session] of this.sessions) {
      session.release();
      if (!this.inUse.has(chatId)) this.sessions.delete(chatId);
    }
  }

  setCap(bytes: number): void {
    this.capBytes = bytes;
    this.enforceCap();
  }

  /** Releases least recently used chats not in use until the total fits the cap. */
  private enforceCap(): void {
    let total = this.bytes;
    for (const [chatId, session] of this.sessions) {
      if (total <= this.capBytes) return;
      if (this.inUse.has(chatId)) continue;
      total -= session.kvBytes;
      session.release();
      this.sessions.delete(chatId);
    }
  }
}
