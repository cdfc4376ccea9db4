// THE typed contract between the window and the engine: every request the renderer may make (its
// argument and result), every event it may receive, the names and the failure they share. What
// crosses a process line is one of these. Zod-free and Node-free, so the renderer bundles only this;
// the trust boundaries validate with schemas.ts, which is checked against these types.
//
// Enums come from the lowest layer that needs them and are re-exported here, never the reverse.
import { ATTENTION_MODES, type AttentionMode } from '../../native-models/attention-modes.ts';
import { PROVIDER_CHOICES, type ProviderChoice } from '../../native-models/provider-names.ts';
import { QUALITY_MODES, type QualityMode } from '../answering/quality-mode-names.ts';
import { KV_COVERAGE_LIMITS, type KvCoverageLimit, type PrefillLimit } from '../answering/kv-coverage-limits.ts';
import type { MessageRole } from '../../db/chats.ts';
import type { DocumentStatus } from '../../db/documents.ts';
import type { FolderCounts } from '../../db/folders.ts';

export {
  ATTENTION_MODES,
  KV_COVERAGE_LIMITS,
  PROVIDER_CHOICES,
  QUALITY_MODES,
  type AttentionMode,
  type KvCoverageLimit,
  type PrefillLimit,
  type ProviderChoice,
  type QualityMode,
};
export type { DocumentStatus, FolderCounts, MessageRole };

/** The Quality setting: 'auto' lets answering pick by model (quality-modes.ts defaultQualityMode). */
export const QUALITY_SETTINGS = ['auto', ...QUALITY_MODES] as const;
export type QualitySetting = (typeof QUALITY_SETTINGS)[number];

/** Who hosts the window: the renderer hides what a browser cannot do (folder dialog, open file). */
export type AppHost = 'electron' | 'serve';

export interface Settings {
  modelDir: string | null;
  provider: ProviderChoice;
  /** Byte budget of the stored passage KV. */
  kvBudgetBytes: number;
  /** Target tokens per passage (applies on the next indexing). */
  passageTokens: number;
  /**
   * Prefill passage KV in the background (what the last question will likely need next, then recently
   * modified documents, the folders you chat with and the rest, within the KV budget).
   */
  eagerPrefill: boolean;
  /** Passages retrieved per question. */
  k: number;
  /** 'block': prefilled passage blocks reused (fast); 'full': one causal prefill (reference quality). */
  mode: AttentionMode;
  /** How passage blocks are computed: 'auto' picks by model (see electron/answering/quality-modes.ts). */
  quality: QualitySetting;
  /** Byte cap of the chats' KV kept in memory for follow-ups (least recently used chats released first). */
  chatKvBytes: number;
  /** Sampling temperature of answers: 0 always picks the most likely word (repeatable answers). */
  temperature: number;
  /** Most tokens an answer may have. */
  maxAnswerTokens: number;
  /**
   * The system turn of every prompt ('' = Quire's own). It is part of the instruction block, so a
   * change makes stored passage KV of the shared-prefix quality mode a new variant (computed again).
   */
  systemPrompt: string;
  /** The desktop app serves the OpenAI-compatible API on 127.0.0.1 (off by default; `quire serve` always does). */
  apiServer: boolean;
  /** Its port. */
  apiPort: number;
  /** The key clients send as `Authorization: Bearer KEY`; '' until the API first starts (then generated). */
  apiKey: string;
}

/** What an API completion answers from: the whole library, one folder, or a plain chat without retrieval. */
export type CompletionScope = { kind: 'library' } | { kind: 'folder'; folderId: number } | { kind: 'chat' };

/** A message of an API conversation (OpenAI's chat messages, text only). */
export interface CompletionMessage {
  role: 'system' | 'user' | 'assistant';
  content: string;
}

/** The longest question a chat takes, in characters (the composer counts down to it). */
export const QUESTION_MAX_CHARS = 4000;
/** The longest custom system prompt, in characters. */
export const SYSTEM_PROMPT_MAX_CHARS = 2000;

/** A request that takes nothing. */
export type NoArgs = Record<string, never>;

/** Request name -> its one argument. */
export interface RequestArgsByName {
  'app.info': NoArgs;
  'folders.list': NoArgs;
  'folders.add': { path: string };
  'folders.remove': { folderId: number };
  'folders.reindex': { folderId: number };
  'folders.pause': { folderId: number };
  'folders.resume': { folderId: number };
  'folders.files': { folderId: number; problemsOnly?: boolean };
  search: { query: string; folderId?: number; limit?: number };
  /** `query`: a search's words to highlight; `question`: a question's, its content words only (retrieve.ts). */
  'passage.get': { passageId: number; query?: string; question?: string };
  /**
   * `folderId`: a new chat limited to that folder (an existing chat keeps its own, chats.update);
   * `regenerate`: the chat's last exchange is replaced by this question's new answer.
   */
  ask: { requestId: string; question: string; chatId?: number; folderId?: number; regenerate?: boolean };
  'ask.cancel': { requestId: string };
  /**
   * Prefetch while typing: prepares the question being typed (retrieval, its passages' KV loaded and
   * assembled) for the chat it will be asked in (`chatId`, or a new chat over `folderId`), so that
   * `ask` with the same passages runs only the final block. Replaces the prepare made before.
   */
  'ask.prepare': { question: string; chatId?: number; folderId?: number };
  /** The OpenAI-compatible API's chat completion (electron/serve/openai-api.ts): text streamed as completion.text. */
  'completions.create': {
    requestId: string;
    scope: CompletionScope;
    /** The whole conversation; the last message is the user's. */
    messages: CompletionMessage[];
    temperature?: number;
    topP?: number;
    /** Default: up to the model's context. */
    maxTokens?: number;
    stop?: string[];
    seed?: number;
  };
  'completions.cancel': { requestId: string };
  'chats.list': NoArgs;
  'chats.messages': { chatId: number };
  'chats.delete': { chatId: number };
  /** Renames a chat and/or limits it to one folder (null: every folder). */
  'chats.update': { chatId: number; title?: string; folderId?: number | null };
  /** The chat as a Markdown document. */
  'chats.export': { chatId: number };
  'settings.get': NoArgs;
  'settings.set': Partial<Settings>;
  /** With folderId: that folder's coverage only. */
  'kv.stats': { folderId?: number };
  'models.catalog': NoArgs;
  'models.download': { modelId: string };
  'models.useFolder': { path: string };
  /** Host requests (answered by the Electron main process or the serve bridge, not the engine). */
  'host.pickFolder': NoArgs;
  'host.openPath': { path: string; page?: number };
}

export type RequestName = keyof RequestArgsByName;
export type RequestArgs<N extends RequestName> = RequestArgsByName[N];

// Every name once: a missing or unknown one is a compile error (Record<RequestName, ...> literal).
const requestNameSet: Record<RequestName, true> = {
  'app.info': true,
  'folders.list': true,
  'folders.add': true,
  'folders.remove': true,
  'folders.reindex': true,
  'folders.pause': true,
  'folders.resume': true,
  'folders.files': true,
  search: true,
  'passage.get': true,
  ask: true,
  'ask.cancel': true,
  'ask.prepare': true,
  'completions.create': true,
  'completions.cancel': true,
  'chats.list': true,
  'chats.messages': true,
  'chats.delete': true,
  'chats.update': true,
  'chats.export': true,
  'settings.get': true,
  'settings.set': true,
  'kv.stats': true,
  'models.catalog': true,
  'models.download': true,
  'models.useFolder': true,
  'host.pickFolder': true,
  'host.openPath': true,
};
export const REQUEST_NAMES = Object.keys(requestNameSet) as RequestName[];
export const isRequestName = (name: string): name is RequestName => Object.hasOwn(requestNameSet, name);

export const HOST_REQUESTS = ['host.pickFolder', 'host.openPath'] as const satisfies readonly RequestName[];
export type HostRequestName = (typeof HOST_REQUESTS)[number];
/** The requests the engine answers. */
export type EngineRequestName = Exclude<RequestName, HostRequestName>;
export const isHostRequest = (name: RequestName): name is HostRequestName => (HOST_REQUESTS as readonly string[]).includes(name);

export type FolderState = 'queued' | 'scanning' | 'parsing' | 'prefilling' | 'paused' | 'done' | 'error';

export interface Progress {
  done: number;
  total: number;
  /** Estimated time left, from the rate so far; absent until there is a rate. */
  etaMs?: number | null;
}

/** A folder as the Library view shows it: its stored counts (db/folders.ts) and its run's progress. */
export interface FolderView extends FolderCounts {
  id: number;
  path: string;
  state: FolderState;
  /** Parsing: files handled / files found. */
  parse: Progress;
  /**
   * KV prefill in the folder's run: passages whose block is stored (done) out of those that will be
   * (total: stored when the run began plus the folder's passages queued), with the background
   * prefill's ETA (kv-service.ts).
   */
  prefill: Progress;
  /** The file being parsed now. */
  currentFile: string | null;
  /**
   * Set when background prefill leaves passages out, and why: from the KV service's coverage of the
   * folder, the same state kv.stats' limitedBy is read from.
   */
  prefillLimit: PrefillLimit | null;
  /** Why the last indexing run stopped, when it failed as a whole. */
  error: string | null;
}

export interface FileView {
  path: string;
  status: DocumentStatus;
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
  /** Passages in the answer's context (0: nothing was found and the model did not run). */
  contextPassages: number | null;
  ttftMs: number | null;
  reusedBlocks: number | null;
  computedBlocks: number | null;
  tokensPerSecond: number | null;
  provider: string | null;
  mode: string | null;
  /** Passages the answer added to its context, left out (lowest ranked first) and cut short to fit the model; null on stored answers. */
  passagesUsed: number | null;
  passagesDropped: number | null;
  passagesShortened: number | null;
  /** The context was prepared while the question was typed (ask.prepare): only the final block ran; null on stored answers. */
  prefetched: boolean | null;
}

export interface AnswerView {
  requestId: string;
  chatId: number;
  /** The stored assistant message (a stopped answer is stored too, marked stopped). */
  messageId: number | null;
  answer: string;
  /** The passages the answer cites ([n] in its text). */
  citations: CitationView[];
  /** Every passage in the answer's context, numbered as the model saw them (shown when none is cited). */
  sources: CitationView[];
  figures: AnswerFiguresView;
  /** Stopped by the user: `answer` is what was written until then. */
  cancelled: boolean;
}

export interface CompletionView {
  requestId: string;
  /** The answer (what was streamed, when cancelled). */
  content: string;
  /** 'length': stopped by the token limit or the model's context. */
  finishReason: 'stop' | 'length';
  /** Tokens the model read (a follow-up: the whole conversation so far) and generated; 0 when it did not run. */
  promptTokens: number;
  completionTokens: number;
  citations: CitationView[];
  sources: CitationView[];
  /**
   * Where the earlier turns came from: 'continued' a conversation whose KV was kept, 'transcript'
   * read from the messages (prefilled now), 'new' without earlier turns.
   */
  context: 'new' | 'continued' | 'transcript';
  cancelled: boolean;
}

export interface ChatView {
  id: number;
  title: string;
  updatedAt: number;
  /** The folder the chat searches, or null for every folder. */
  folderId: number | null;
}

export interface MessageView {
  id: number;
  role: MessageRole;
  content: string;
  citations: CitationView[];
  figures: AnswerFiguresView | null;
  /** An answer stopped by the user before its end. */
  stopped: boolean;
}

export interface ModelStatus {
  ready: boolean;
  /** A model is being loaded (the header shows a spinner). */
  loading: boolean;
  dir: string | null;
  /** The model's name for people (the catalog's, else the folder's). */
  name: string | null;
  /** Why the model is not loaded (none chosen, failed to load...). */
  problem: string | null;
  provider: string | null;
  /** Why that provider runs the model (e.g. "webgpu adapter is a CPU (llvmpipe ...): using cpu"). */
  providerReason?: string | null;
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
  host: AppHost;
  model: ModelStatus;
  folders: number;
  /** Indexer / answering modules present in this build (false while they are missing). */
  features: { indexing: boolean; answering: boolean; downloads: boolean };
}

/** A folder's share of passages that answer without prefill, for the loaded model and quality mode. */
export interface FolderKvCoverageView {
  folderId: number;
  passages: number;
  /** Passages whose block KV is stored (exact: each passage's block key is recorded). */
  stored: number;
  /** Why not every passage is stored; null when every one is. */
  limitedBy: KvCoverageLimit | null;
  /** limitedBy 'prefilling': time until its queued passages are stored, at the measured prefill rate; else null. */
  etaMs: number | null;
}

export interface KvStatsView {
  entries: number;
  bytes: number;
  budgetBytes: number;
  /** The codec new blocks are stored with (db/kv-codec.ts). */
  codec: string;
  /** Per folder (one with kv.stats' folderId); stored counts 0 without a model. */
  folders: FolderKvCoverageView[];
  prefill: {
    /** Passages waiting in the background prefill queue. */
    queued: number;
    /** The measured prefill time per block (ms; null before the first block). */
    msPerBlock: number | null;
  };
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
  /** `prepared`: the question's context is ready (false: nothing to prepare, no model, or replaced or stopped by another request). */
  'ask.prepare': { prepared: boolean };
  'completions.create': CompletionView;
  'completions.cancel': { cancelled: boolean };
  'chats.list': ChatView[];
  'chats.messages': MessageView[];
  'chats.delete': { deleted: boolean };
  'chats.update': ChatView;
  'chats.export': { fileName: string; markdown: string };
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
  /** A piece of an API completion's text (consumed by the API server, never sent to the window). */
  'completion.text': { requestId: string; text: string };
  'model.download': { modelId: string; receivedBytes: number; totalBytes: number; done: boolean; error: string | null };
  'model.changed': ModelStatus;
  /** The engine worker died (reason in words); `restarted` when the host brought it back. */
  'engine.stopped': { reason: string; restarted: boolean };
}
export type EventName = keyof EventPayloads;
const eventNameSet: Record<EventName, true> = {
  'folder.progress': true,
  'folders.changed': true,
  'answer.text': true,
  'answer.done': true,
  'answer.error': true,
  'completion.text': true,
  'model.download': true,
  'model.changed': true,
  'engine.stopped': true,
};
export const EVENT_NAMES = Object.keys(eventNameSet) as EventName[];
/** Whether a host passes the event to the window (an API completion's text is for the API server only). */
export const isWindowEvent = (name: EventName): boolean => name !== 'completion.text';

/** Posts a contract event (the engine service's outlet; the host fans it out to the window). */
export type EmitEvent = <E extends EventName>(name: E, payload: EventPayloads[E]) => void;

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

/** IPC channel names in Electron. */
export const IPC_REQUEST_CHANNEL = 'quire:request';
export const IPC_EVENT_CHANNEL = 'quire:event';
