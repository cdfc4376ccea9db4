// THE typed contract between the window and the engine: every request the renderer may make (its
// argument schema and result type) and every event it may receive. Imported by the preload, the
// Electron main process, the serve bridge, the engine host and the renderer; nothing else crosses a
// process line. Browser-safe: no Node imports.
import { z } from 'zod';

const id = z.number().int().positive();
const text = (max: number) => z.string().max(max);

export const PROVIDERS = ['auto', 'cpu', 'webgpu', 'cuda', 'dml', 'coreml'] as const;
export const ANSWER_MODES = ['block', 'full'] as const;
export const QUALITY_MODES = ['auto', 'shared-prefix', 'isolated'] as const;

export const settingsSchema = z.object({
  modelDir: z.string().max(4096).nullable(),
  provider: z.enum(PROVIDERS),
  /** Byte budget of the stored passage KV. */
  kvBudgetBytes: z.number().int().min(16 * 1024 ** 2).max(1024 ** 4),
  /** Target tokens per passage (applies on the next indexing). */
  passageTokens: z.number().int().min(32).max(2048),
  /** Prefill passage KV in the background after indexing (newest documents first, within the KV budget). */
  eagerPrefill: z.boolean(),
  /** Passages retrieved per question. */
  k: z.number().int().min(1).max(32),
  /** 'block': prefilled passage blocks reused (fast); 'full': one causal prefill (reference quality). */
  mode: z.enum(ANSWER_MODES),
  /** How passage blocks are computed: 'auto' picks by model (see electron/answering/quality-modes.ts). */
  quality: z.enum(QUALITY_MODES),
});
export type Settings = z.infer<typeof settingsSchema>;

/** Request name -> schema of its one argument. */
export const requestSchemas = {
  'app.info': z.object({}).strict(),
  'folders.list': z.object({}).strict(),
  'folders.add': z.object({ path: text(4096).min(1) }).strict(),
  'folders.remove': z.object({ folderId: id }).strict(),
  'folders.reindex': z.object({ folderId: id }).strict(),
  'folders.pause': z.object({ folderId: id }).strict(),
  'folders.resume': z.object({ folderId: id }).strict(),
  'folders.files': z.object({ folderId: id, problemsOnly: z.boolean().optional() }).strict(),
  search: z.object({ query: text(1000), folderId: id.optional(), limit: z.number().int().min(1).max(100).optional() }).strict(),
  'passage.get': z.object({ passageId: id, query: text(1000).optional() }).strict(),
  ask: z.object({ requestId: text(64).min(1), question: text(8000).min(1), chatId: id.optional() }).strict(),
  'ask.cancel': z.object({ requestId: text(64).min(1) }).strict(),
  'chats.list': z.object({}).strict(),
  'chats.messages': z.object({ chatId: id }).strict(),
  'chats.delete': z.object({ chatId: id }).strict(),
  'settings.get': z.object({}).strict(),
  'settings.set': settingsSchema.partial().strict(),
  'kv.stats': z.object({}).strict(),
  'models.catalog': z.object({}).strict(),
  'models.download': z.object({ modelId: text(200).min(1) }).strict(),
  'models.useFolder': z.object({ path: text(4096).min(1) }).strict(),
  /** Host requests (answered by the Electron main process or the serve bridge, not the engine). */
  'host.pickFolder': z.object({}).strict(),
  'host.openPath': z.object({ path: text(4096).min(1), page: z.number().int().positive().optional() }).strict(),
} as const;

export type RequestName = keyof typeof requestSchemas;
export type RequestArgs<N extends RequestName> = z.infer<(typeof requestSchemas)[N]>;
export const REQUEST_NAMES = Object.keys(requestSchemas) as RequestName[];
export const HOST_REQUESTS: readonly RequestName[] = ['host.pickFolder', 'host.openPath'];
export const isRequestName = (name: string): name is RequestName => Object.hasOwn(requestSchemas, name);

export type FolderState = 'queued' | 'scanning' | 'parsing' | 'prefilling' | 'paused' | 'done' | 'error';

export interface Progress {
  done: number;
  total: number;
}

export interface FolderView {
  id: number;
  path: string;
  state: FolderState;
  /** Parsing: files handled / files found. */
  parse: Progress;
  /** KV prefill of the folder's passages (blocks stored / passages). */
  prefill: Progress;
  files: number;
  indexed: number;
  failed: number;
  skipped: number;
  passages: number;
  /** Why the last indexing run stopped, when it failed as a whole. */
  error: string | null;
}

export interface FileView {
  path: string;
  status: 'pending' | 'indexed' | 'failed' | 'skipped';
  /** The reason a file failed or was skipped. */
  error: string | null;
}

/** Text cut into plain and highlighted runs (never HTML). */
export type TextParts = { text: string; highlighted: boolean }[];

export interface SearchHitView {
  passageId: number;
  documentId: number;
  path: string;
  title: string | null;
  page: number | null;
  snippet: TextParts;
}

export interface PassageView {
  passageId: number;
  documentPath: string;
  title: string | null;
  page: number | null;
  /** The whole passage; the query's words highlighted when a query was given. */
  parts: TextParts;
}

export interface CitationView {
  ordinal: number;
  passageId: number | null;
  documentPath: string;
  title: string | null;
  page: number | null;
  quote: string;
}

export interface AnswerFiguresView {
  ttftMs: number | null;
  reusedBlocks: number | null;
  computedBlocks: number | null;
  tokensPerSecond: number | null;
  provider: string | null;
  mode: string | null;
}

export interface AnswerView {
  requestId: string;
  chatId: number;
  messageId: number | null;
  answer: string;
  /** The passages the answer cites ([n] in its text). */
  citations: CitationView[];
  /** Every passage in the answer's context, numbered as the model saw them (shown when none is cited). */
  sources: CitationView[];
  figures: AnswerFiguresView;
  cancelled: boolean;
}

export interface ChatView {
  id: number;
  title: string;
  updatedAt: number;
}

export interface MessageView {
  id: number;
  role: 'system' | 'user' | 'assistant';
  content: string;
  citations: CitationView[];
  figures: AnswerFiguresView | null;
}

export interface ModelStatus {
  ready: boolean;
  dir: string | null;
  /** Why the model is not loaded (none chosen, failed to load...). */
  problem: string | null;
  provider: string | null;
}

export interface CatalogModel {
  id: string;
  name: string;
  sizeBytes: number;
  isDefault: boolean;
  installed: boolean;
}

export interface AppInfo {
  version: string;
  dataDir: string;
  /** 'electron' or 'serve': the renderer hides what a browser cannot do (folder dialog, open file). */
  host: 'electron' | 'serve';
  model: ModelStatus;
  folders: number;
  /** Indexer / answering modules present in this build (false while they are missing). */
  features: { indexing: boolean; answering: boolean; downloads: boolean };
}

export interface KvStatsView {
  entries: number;
  bytes: number;
  budgetBytes: number;
}

/** Request name -> result type. */
export interface RequestResults {
  'app.info': AppInfo;
  'folders.list': FolderView[];
  'folders.add': FolderView;
  'folders.remove': { removed: boolean };
  'folders.reindex': FolderView;
  'folders.pause': FolderView;
  'folders.resume': FolderView;
  'folders.files': FileView[];
  search: SearchHitView[];
  'passage.get': PassageView;
  ask: AnswerView;
  'ask.cancel': { cancelled: boolean };
  'chats.list': ChatView[];
  'chats.messages': MessageView[];
  'chats.delete': { deleted: boolean };
  'settings.get': Settings;
  'settings.set': Settings;
  'kv.stats': KvStatsView;
  'models.catalog': CatalogModel[];
  'models.download': ModelStatus;
  'models.useFolder': ModelStatus;
  'host.pickFolder': { path: string | null };
  'host.openPath': { opened: boolean; reason?: string };
}

/** Event name -> payload. */
export interface EventPayloads {
  'folder.progress': FolderView;
  'folders.changed': Record<string, never>;
  'answer.text': { requestId: string; text: string };
  'answer.done': AnswerView;
  'answer.error': { requestId: string; message: string };
  'model.download': { modelId: string; receivedBytes: number; totalBytes: number; done: boolean; error: string | null };
  'model.changed': ModelStatus;
  /** The engine worker died (reason in words); `restarted` when the host brought it back. */
  'engine.stopped': { reason: string; restarted: boolean };
}
export type EventName = keyof EventPayloads;
export const EVENT_NAMES: readonly EventName[] = [
  'folder.progress',
  'folders.changed',
  'answer.text',
  'answer.done',
  'answer.error',
  'model.download',
  'model.changed',
  'engine.stopped',
];

/** What a failed request carries back (the renderer shows `message`). */
export interface RequestFailure {
  code: 'invalid-arguments' | 'unknown-request' | 'failed' | 'unavailable';
  message: string;
}

export class QuireRequestError extends Error {
  constructor(
    readonly code: RequestFailure['code'],
    message: string,
  ) {
    super(message);
    this.name = 'QuireRequestError';
  }
}

/** The one API the window sees: window.quire in Electron, the HTTP bridge in serve mode. */
export interface QuireApi {
  request<N extends RequestName>(name: N, args: RequestArgs<N>): Promise<RequestResults[N]>;
  /** Subscribes to an event; returns the unsubscribe function. */
  on<E extends EventName>(name: E, listener: (payload: EventPayloads[E]) => void): () => void;
}

/** Validates a request's argument; throws QuireRequestError('invalid-arguments') with the reasons. */
export function parseRequest<N extends RequestName>(name: N, args: unknown): RequestArgs<N> {
  const result = requestSchemas[name].safeParse(args ?? {});
  if (!result.success) {
    const why = result.error.issues.map((i) => `${i.path.join('.') || '(argument)'}: ${i.message}`).join('; ');
    throw new QuireRequestError('invalid-arguments', `${name}: ${why}`);
  }
  return result.data as RequestArgs<N>;
}

/** IPC channel names in Electron. */
export const IPC_REQUEST_CHANNEL = 'quire:request';
export const IPC_EVENT_CHANNEL = 'quire:event';
