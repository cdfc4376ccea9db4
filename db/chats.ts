// Chats and their messages; an answer keeps its citations and the figures of how it was made.
import type { Db } from './open.ts';

export type MessageRole = 'system' | 'user' | 'assistant';

export interface Chat {
  id: number;
  title: string;
  createdAt: number;
  updatedAt: number;
  /** The folder the chat searches; null: every folder. */
  folderId: number | null;
}

/** How an answer was produced (assistant messages). */
export interface AnswerFigures {
  provider?: string | null;
  model?: string | null;
  blocksReused?: number | null;
  blocksComputed?: number | null;
  ttftMs?: number | null;
  totalMs?: number | null;
  outputTokens?: number | null;
  /** Generated tokens after the first over the time from the first to the last (native-models/decode.ts). */
  tokensPerSecond?: number | null;
  /** Passages in the answer's context (0: nothing was found, the model did not run). */
  contextPassages?: number | null;
}

/**
 * A cited passage. `documentPath`, `title`, `page` and `quote` are copies, so the citation still
 * reads right after the document is re-indexed and `passageId` has become null.
 */
export interface Citation {
  /** The number the answer cites it by ([1], [2], ...). */
  ordinal: number;
  passageId: number | null;
  documentPath: string;
  title?: string | null;
  page?: number | null;
  quote: string;
}

export interface MessageInput {
  role: MessageRole;
  content: string;
  citations?: readonly Citation[];
  figures?: AnswerFigures;
  /** An answer stopped by the user before its end. */
  stopped?: boolean;
}

export interface Message {
  id: number;
  chatId: number;
  role: MessageRole;
  content: string;
  createdAt: number;
  citations: Citation[];
  figures: Required<AnswerFigures>;
  stopped: boolean;
}

interface ChatRow {
  id: number;
  title: string;
  created_at: number;
  updated_at: number;
  folder_id: number | null;
}

interface MessageRow {
  id: number;
  chat_id: number;
  role: MessageRole;
  content: string;
  created_at: number;
  provider: string | null;
  model: string | null;
  blocks_reused: number | null;
  blocks_computed: number | null;
  ttft_ms: number | null;
  total_ms: number | null;
  output_tokens: number | null;
  tokens_per_second: number | null;
  stopped: number;
  context_passages: number | null;
}

interface CitationRow {
  message_id: number;
  ordinal: number;
  passage_id: number | null;
  document_path: string;
  title: string | null;
  page: number | null;
  quote: string;
}

const toChat = (r: ChatRow): Chat => ({ id: r.id, title: r.title, createdAt: r.created_at, updatedAt: r.updated_at, folderId: r.folder_id });

/** `folderId`: limits the chat to that folder. */
export function createChat(db: Db, title = '', now: number = Date.now(), folderId: number | null = null): Chat {
  const r = db
    .prepare('INSERT INTO chats(title, created_at, updated_at, folder_id) VALUES (?, ?, ?, ?) RETURNING *')
    .get(title, now, now, folderId) as ChatRow;
  return toChat(r);
}

export function getChat(db: Db, id: number): Chat | undefined {
  const r = db.prepare('SELECT * FROM chats WHERE id = ?').get(id) as ChatRow | undefined;
  return r && toChat(r);
}

/** Most recently active first. */
export function listChats(db: Db): Chat[] {
  return (db.prepare('SELECT * FROM chats ORDER BY updated_at DESC, id DESC').all() as ChatRow[]).map(toChat);
}

export function renameChat(db: Db, id: number, title: string): void {
  db.prepare('UPDATE chats SET title = ? WHERE id = ?').run(title, id);
}

/** Limits the chat to one folder, or (null) lets it search every folder. */
export function setChatFolder(db: Db, id: number, folderId: number | null): void {
  db.prepare('UPDATE chats SET folder_id = ? WHERE id = ?').run(folderId, id);
}

/**
 * The chat's last exchange, when it ends with one: its last assistant message and the user message
 * before it (a regenerated answer replaces them). Null otherwise.
 */
export function lastExchange(db: Db, chatId: number): { questionId: number; answerId: number; question: string } | null {
  const last = db.prepare('SELECT id, role, content FROM messages WHERE chat_id = ? ORDER BY id DESC LIMIT 2').all(chatId) as {
    id: number;
    role: MessageRole;
    content: string;
  }[];
  if (last.length < 2 || last[0].role !== 'assistant' || last[1].role !== 'user') return null;
  return { questionId: last[1].id, answerId: last[0].id, question: last[1].content };
}

/** Deletes messages (with their citations) by id. */
export function deleteMessages(db: Db, ids: readonly number[]): number {
  return db.prepare('DELETE FROM messages WHERE id IN (SELECT value FROM json_each(?))').run(JSON.stringify(ids)).changes;
}

/** Deletes a chat with its messages and citations; returns whether it existed. */
export function deleteChat(db: Db, id: number): boolean {
  return db.prepare('DELETE FROM chats WHERE id = ?').run(id).changes > 0;
}

/** Appends a message (with its citations, in one transaction) and bumps the chat's updatedAt. */
export function addMessage(db: Db, chatId: number, input: MessageInput, now: number = Date.now()): Message {
  const f = input.figures ?? {};
  return db.transaction(() => {
    const row = db
      .prepare(
        `INSERT INTO messages(chat_id, role, content, created_at, provider, model, blocks_reused, blocks_computed,
           ttft_ms, total_ms, output_tokens, tokens_per_second, stopped, context_passages)
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING *`,
      )
      .get(
        chatId,
        input.role,
        input.content,
        now,
        f.provider ?? null,
        f.model ?? null,
        f.blocksReused ?? null,
        f.blocksComputed ?? null,
        f.ttftMs ?? null,
        f.totalMs ?? null,
        f.outputTokens ?? null,
        f.tokensPerSecond ?? null,
        input.stopped ? 1 : 0,
        f.contextPassages ?? null,
      ) as MessageRow;
    const cite = db.prepare(
      `INSERT INTO message_citations(message_id, ordinal, passage_id, document_path, title, page, quote)
       VALUES (?, ?, ?, ?, ?, ?, ?)`,
    );
    for (const c of input.citations ?? []) {
      cite.run(row.id, c.ordinal, c.passageId, c.documentPath, c.title ?? null, c.page ?? null, c.quote);
    }
    db.prepare('UPDATE chats SET updated_at = MAX(updated_at, ?) WHERE id = ?').run(now, chatId);
    return toMessage(row, citationsOf(db, [row.id]).get(row.id) ?? []);
  }).immediate();
}

/** A chat's messages, oldest first, with their citations. */
export function listMessages(db: Db, chatId: number): Message[] {
  const rows = db.prepare('SELECT * FROM messages WHERE chat_id = ? ORDER BY id').all(chatId) as MessageRow[];
  const cites = citationsOf(db, rows.map((r) => r.id));
  return rows.map((r) => toMessage(r, cites.get(r.id) ?? []));
}

function citationsOf(db: Db, messageIds: number[]): Map<number, Citation[]> {
  const out = new Map<number, Citation[]>();
  if (messageIds.length === 0) return out;
  const rows = db
    .prepare(
      `SELECT * FROM message_citations WHERE message_id IN (SELECT value FROM json_each(?)) ORDER BY message_id, ordinal`,
    )
    .all(JSON.stringify(messageIds)) as CitationRow[];
  for (const r of rows) {
    const list = out.get(r.message_id) ?? [];
    list.push({ ordinal: r.ordinal, passageId: r.passage_id, documentPath: r.document_path, title: r.title, page: r.page, quote: r.quote });
    out.set(r.message_id, list);
  }
  return out;
}

function toMessage(r: MessageRow, citations: Citation[]): Message {
  return {
    id: r.id,
    chatId: r.chat_id,
    role: r.role,
    content: r.content,
    createdAt: r.created_at,
    citations,
    figures: {
      provider: r.provider,
      model: r.model,
      blocksReused: r.blocks_reused,
      blocksComputed: r.blocks_computed,
      ttftMs: r.ttft_ms,
      totalMs: r.total_ms,
      outputTokens: r.output_tokens,
      tokensPerSecond: r.tokens_per_second,
      contextPassages: r.context_passages,
    },
    stopped: r.stopped === 1,
  };
}
