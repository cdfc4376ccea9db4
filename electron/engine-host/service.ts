// The engine service: implements the contract's engine requests over one SQLite connection and one
// loaded model. It runs inside the engine worker (worker.ts); the window's process never does this
// work. Indexing runs one folder at a time; answers run one at a time, in order.
import fs from 'node:fs';
import path from 'node:path';
import { listDocuments } from '../../db/documents.ts';
import { addFolder, getFolder, listFolders, removeFolder, type Folder } from '../../db/folders.ts';
import { openDatabase, type Db } from '../../db/open.ts';
import { getPassage } from '../../db/passages.ts';
import { highlightParts, searchPassages } from '../../db/search.ts';
import { deleteChat, listChats, listMessages, type Citation } from '../../db/chats.ts';
import { getDocument } from '../../db/documents.ts';
import { DEFAULT_KV_BUDGET_BYTES } from '../../db/kv-store.ts';
import { Engine } from '../../native-models/engine.ts';
import {
  parseRequest,
  QuireRequestError,
  settingsSchema,
  type AnswerView,
  type CitationView,
  type EventName,
  type EventPayloads,
  type FolderState,
  type FolderView,
  type ModelStatus,
  type RequestArgs,
  type RequestName,
  type RequestResults,
  type Settings,
} from '../contract.ts';
import { indexFolder, type FileProblem, type IndexProgress } from '../indexing/indexer.ts';
import { FolderWatcher } from '../indexing/watch.ts';
import { createAnswerContext, prefillPassages, type AnswerContext } from '../answering/passage-kv.ts';
import { KvStore } from '../../db/kv-store.ts';
import { ask } from '../answering/ask.ts';
import { ChatSession } from '../answering/chat-context.ts';
import {
  CATALOG,
  catalogModel,
  DEFAULT_MODEL_ID,
  modelDir as catalogModelDir,
  readSettings as readModelChoice,
  resolveModelDir,
  writeSettings as writeModelChoice,
} from '../models/catalog.ts';
import { downloadModel } from '../models/download.ts';
import { createChat, getChat } from '../../db/chats.ts';

export interface EngineServiceOptions {
  dbPath: string;
  dataDir: string;
  /** A model folder that overrides the saved setting (quire serve --model). */
  modelDir?: string;
  /** Override the saved settings for this run (quire serve --provider / --kv-budget). */
  provider?: Settings['provider'];
  kvBudgetBytes?: number;
  host: 'electron' | 'serve';
  version?: string;
  emit: <E extends EventName>(name: E, payload: EventPayloads[E]) => void;
}

export const DEFAULT_SETTINGS: Settings = {
  modelDir: null,
  provider: 'auto',
  kvBudgetBytes: DEFAULT_KV_BUDGET_BYTES,
  passageTokens: 256,
  eagerPrefill: true,
  k: 10,
  mode: 'block',
  quality: 'auto',
};

interface FolderRun {
  state: FolderState;
  parse: { done: number; total: number };
  prefill: { done: number; total: number };
  error: string | null;
  abort: AbortController | null;
  /** The last run's skipped and failed files (walk problems included), with reasons. */
  problems: { skipped: FileProblem[]; failed: FileProblem[] } | null;
}

type Handlers = { [N in RequestName]?: (args: RequestArgs<N>) => Promise<RequestResults[N]> | RequestResults[N] };

export class EngineService {
  readonly db: Db;
  private settings: Settings;
  private engine: Engine | null = null;
  private modelProblem: string | null = 'no model chosen yet';
  private modelLoading: Promise<void> = Promise.resolve();
  private readonly runs = new Map<number, FolderRun>();
  private indexQueue: number[] = [];
  private indexing: Promise<void> | null = null;
  private answerChain: Promise<unknown> = Promise.resolve();
  private readonly answers = new Map<string, AbortController>();
  private answerContext: AnswerContext | null = null;
  private readonly chatSessions = new Map<number, ChatSession>();
  private downloading: string | null = null;
  private closed = false;
  /** Re-indexes a library folder when its files change; restarted when the folder list changes. */
  private watcher: FolderWatcher | null = null;
  private watching: Promise<void> = Promise.resolve();

  private constructor(private readonly options: EngineServiceOptions) {
    fs.mkdirSync(options.dataDir, { recursive: true });
    this.db = openDatabase(options.dbPath);
    this.settings = this.readSettings();
    if (options.provider) this.settings = { ...this.settings, provider: options.provider };
    if (options.kvBudgetBytes !== undefined) this.settings = { ...this.settings, kvBudgetBytes: options.kvBudgetBytes };
    if (options.modelDir) this.settings = { ...this.settings, modelDir: path.resolve(options.modelDir) };
    else if (!this.settings.modelDir) {
      // a model chosen or downloaded with the CLI (quire models use / download)
      try {
        this.settings = { ...this.settings, modelDir: resolveModelDir() };
      } catch {
        // none yet: the welcome view offers one
      }
    }
  }

  static async start(options: EngineServiceOptions): Promise<EngineService> {
    const service = new EngineService(options);
    service.rewatch();
    service.loadModel();
    await service.modelLoading;
    return service;
  }

  // ---- requests -------------------------------------------------------------------------------

  async handle<N extends RequestName>(name: N, rawArgs: unknown): Promise<RequestResults[N]> {
    const args = parseRequest(name, rawArgs);
    const handler = this.handlers[name] as ((a: RequestArgs<N>) => Promise<RequestResults[N]> | RequestResults[N]) | undefined;
    if (!handler) throw new QuireRequestError('unknown-request', `${name} is not handled by the engine`);
    return await handler(args);
  }

  private readonly handlers: Handlers = {
    'app.info': async () => {
      await this.modelLoading;
      return {
        version: this.options.version ?? '0.0.0',
        dataDir: this.options.dataDir,
        host: this.options.host,
        model: this.modelStatus(),
        folders: listFolders(this.db).length,
        features: { indexing: true, answering: true, downloads: true },
      };
    },
    'folders.list': () => listFolders(this.db).map((f) => this.folderView(f)),
    'folders.add': ({ path: p }) => {
      const root = path.resolve(p);
      let stat: fs.Stats;
      try {
        stat = fs.statSync(root);
      } catch {
        throw new QuireRequestError('failed', `no such folder: ${root}`);
      }
      if (!stat.isDirectory()) throw new QuireRequestError('failed', `not a folder: ${root}`);
      const folder = addFolder(this.db, root);
      this.enqueue(folder.id);
      this.rewatch();
      this.options.emit('folders.changed', {});
      return this.folderView(folder);
    },
    'folders.remove': async ({ folderId }) => {
      const run = this.runs.get(folderId);
      run?.abort?.abort();
      this.indexQueue = this.indexQueue.filter((id) => id !== folderId);
      // let the run stop (its current transaction finishes) before the rows go
      if (this.indexing) await this.indexing.catch(() => undefined);
      this.runs.delete(folderId);
      const removed = removeFolder(this.db, folderId);
      this.rewatch();
      this.options.emit('folders.changed', {});
      return { removed };
    },
    'folders.reindex': ({ folderId }) => {
      const folder = this.folderOrThrow(folderId);
      this.enqueue(folder.id);
      return this.folderView(folder);
    },
    'folders.pause': ({ folderId }) => {
      const folder = this.folderOrThrow(folderId);
      const run = this.run(folderId);
      this.indexQueue = this.indexQueue.filter((id) => id !== folderId);
      run.abort?.abort();
      run.state = 'paused';
      this.progress(folder);
      return this.folderView(folder);
    },
    'folders.resume': ({ folderId }) => {
      const folder = this.folderOrThrow(folderId);
      this.enqueue(folderId);
      return this.folderView(folder);
    },
    'folders.files': ({ folderId, problemsOnly }) => {
      const problems = this.runs.get(folderId)?.problems;
      const files = listDocuments(this.db, { folderId })
        .filter((d) => !problemsOnly || d.status === 'failed' || d.status === 'skipped')
        .map((d) => ({ path: d.path, status: d.status, error: d.error }));
      const known = new Set(files.map((f) => f.path));
      // walk problems (unreadable directories, symlink loops) have no document row
      for (const p of problems?.failed ?? []) if (!known.has(p.path)) files.push({ path: p.path, status: 'failed', error: p.reason });
      return files;
    },
    search: ({ query, folderId, limit }) =>
      searchPassages(this.db, query, { folderId, limit: limit ?? 20 }).map((h) => ({
        passageId: h.passageId,
        documentId: h.documentId,
        path: h.path,
        title: h.passageTitle ?? h.title,
        page: h.page,
        snippet: highlightParts(h.snippet),
      })),
    'passage.get': ({ passageId, query }) => {
      const passage = getPassage(this.db, passageId);
      if (!passage) throw new QuireRequestError('failed', `passage ${passageId} is gone (its file was re-indexed or removed)`);
      const doc = getDocument(this.db, passage.documentId);
      let parts = [{ text: passage.text, highlighted: false }];
      if (query) {
        const hit = searchPassages(this.db, query, { match: 'any', limit: 200 }).find((h) => h.passageId === passageId);
        if (hit) parts = highlightParts(hit.highlighted);
      }
      return { passageId, documentPath: doc?.path ?? '', title: passage.title ?? doc?.title ?? null, page: passage.page, parts };
    },
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
                tokensPerSecond:
                  m.figures.outputTokens && m.figures.totalMs ? (m.figures.outputTokens * 1000) / m.figures.totalMs : null,
                provider: m.figures.provider,
                mode: null,
              }
            : null,
      })),
    'chats.delete': ({ chatId }) => ({ deleted: deleteChat(this.db, chatId) }),
    'settings.get': () => this.settings,
    'settings.set': (patch) => {
      const next = settingsSchema.parse({ ...this.settings, ...patch });
      const modelChanged = next.modelDir !== this.settings.modelDir || next.provider !== this.settings.provider;
      this.settings = next;
      this.writeSettings();
      if (modelChanged) this.loadModel();
      return this.settings;
    },
    'kv.stats': () => {
      const row = this.db.prepare('SELECT COUNT(*) AS entries, COALESCE(SUM(bytes), 0) AS bytes FROM kv_blocks').get() as {
        entries: number;
        bytes: number;
      };
      return { entries: row.entries, bytes: row.bytes, budgetBytes: this.settings.kvBudgetBytes };
    },
    'models.catalog': () =>
      CATALOG.map((m) => ({
        id: m.id,
        name: m.description,
        sizeBytes: m.approxBytes,
        isDefault: m.id === DEFAULT_MODEL_ID,
        installed: fs.existsSync(path.join(catalogModelDir(m.id), '.complete')),
      })),
    'models.download': ({ modelId }) => {
      const model = catalogModel(modelId);
      if (!model) throw new QuireRequestError('invalid-arguments', `no model "${modelId}" in the catalog`);
      if (this.downloading) throw new QuireRequestError('failed', `already downloading ${this.downloading}`);
      this.downloading = modelId;
      const dir = catalogModelDir(modelId);
      const emit = (receivedBytes: number, totalBytes: number, done: boolean, error: string | null) =>
        this.options.emit('model.download', { modelId, receivedBytes, totalBytes, done, error });
      emit(0, model.approxBytes, false, null);
      void downloadModel(model, dir, { onProgress: (p) => emit(p.bytes, p.total, false, null) })
        .then(() => {
          emit(1, 1, true, null);
          this.settings = { ...this.settings, modelDir: dir };
          this.writeSettings();
          this.loadModel();
        })
        .catch((e: Error) => emit(0, 0, true, e.message))
        .finally(() => {
          this.downloading = null;
        });
      return this.modelStatus();
    },
    'models.useFolder': async ({ path: dir }) => {
      this.settings = { ...this.settings, modelDir: path.resolve(dir) };
      this.writeSettings();
      this.loadModel();
      await this.modelLoading;
      return this.modelStatus();
    },
  };

  // ---- model ----------------------------------------------------------------------------------

  private loadModel(): void {
    const dir = this.settings.modelDir;
    const previous = this.engine;
    this.engine = null;
    this.answerContext = null;
    this.modelLoading = (async () => {
      await previous?.release().catch(() => undefined);
      if (!dir) {
        this.modelProblem = 'no model chosen yet';
        return;
      }
      try {
        const engine = await Engine.load(dir, { provider: this.settings.provider });
        this.answerContext = await createAnswerContext(this.db, engine, {
          store: new KvStore(this.db, { budgetBytes: this.settings.kvBudgetBytes }),
        });
        this.engine = engine;
        this.modelProblem = null;
      } catch (e) {
        this.modelProblem = `the model at ${dir} did not load: ${(e as Error).message}`;
      }
    })().finally(() => {
      if (!this.closed) this.options.emit('model.changed', this.modelStatus());
    });
  }

  private async answerContextReady(): Promise<AnswerContext | null> {
    await this.modelLoading;
    return this.answerContext;
  }

  private modelStatus(): ModelStatus {
    return {
      ready: this.engine !== null,
      dir: this.settings.modelDir,
      problem: this.engine ? null : this.modelProblem,
      provider: this.engine?.provider ?? null,
    };
  }

  private countTokens = (text: string): number =>
    this.engine ? this.engine.tokenizer.encode(text).length : Math.ceil(text.length / 4);

  // ---- indexing -------------------------------------------------------------------------------

  private run(folderId: number): FolderRun {
    let run = this.runs.get(folderId);
    if (!run) {
      run = { state: 'done', parse: { done: 0, total: 0 }, prefill: { done: 0, total: 0 }, error: null, abort: null, problems: null };
      this.runs.set(folderId, run);
    }
    return run;
  }

  private folderOrThrow(folderId: number): Folder {
    const folder = getFolder(this.db, folderId);
    if (!folder) throw new QuireRequestError('failed', `no folder ${folderId}`);
    return folder;
  }

  /** Watches the library's folders (debounced); a change re-queues its folder unless it is paused. */
  private rewatch(): void {
    this.watching = this.watching.then(async () => {
      await this.watcher?.close();
      this.watcher = null;
      const roots = listFolders(this.db).map((f) => f.path);
      if (this.closed || roots.length === 0) return;
      this.watcher = await FolderWatcher.start(roots, {
        // the database may live inside a watched folder: its own writes are not changes to index
        ignorePaths: [this.options.dbPath],
        reindex: async (root) => {
          const folder = listFolders(this.db).find((f) => path.resolve(f.path) === root);
          if (folder && !this.closed && this.runs.get(folder.id)?.state !== 'paused') this.enqueue(folder.id);
        },
        onError: () => undefined, // an unwatchable folder is still indexed on demand
      });
    }).catch(() => undefined);
  }

  private enqueue(folderId: number): void {
    const run = this.run(folderId);
    if (run.abort || this.indexQueue.includes(folderId)) return;
    run.state = 'queued';
    run.error = null;
    this.indexQueue.push(folderId);
    this.progress(this.folderOrThrow(folderId));
    this.indexing ??= this.drainIndexQueue().finally(() => {
      this.indexing = null;
    });
  }

  private async drainIndexQueue(): Promise<void> {
    while (!this.closed && this.indexQueue.length > 0) {
      const folderId = this.indexQueue.shift()!;
      const folder = getFolder(this.db, folderId);
      if (!folder) continue;
      const run = this.run(folderId);
      const abort = new AbortController();
      run.abort = abort;
      run.state = 'scanning';
      this.progress(folder);
      try {
        const summary = await indexFolder(this.db, folder.path, {
          countTokens: this.countTokens,
          passageTokens: this.settings.passageTokens,
          signal: abort.signal,
          onProgress: (p: IndexProgress) => {
            run.parse = { done: p.filesDone, total: Math.max(p.filesFound, p.filesDone) };
            run.state = p.phase === 'scanning' ? 'scanning' : 'parsing';
            this.progress(folder);
          },
        });
        run.problems = { skipped: summary.skipped, failed: summary.failed };
        run.parse = { done: summary.files, total: summary.files };
        await this.prefillFolder(folder, run, abort.signal);
        run.state = 'done';
      } catch (e) {
        if (!abort.signal.aborted) {
          run.state = 'error';
          run.error = (e as Error).message;
        }
      } finally {
        run.abort = null;
        if (abort.signal.aborted) run.state = 'paused';
      }
      if (getFolder(this.db, folderId)) this.progress(folder);
    }
  }

  /**
   * Background KV prefill of the folder's passages (yields to questions; needs a loaded model):
   * most recently modified documents first, and only as many as fit the KV budget's free room, so
   * eager work never evicts blocks that questions stored. Passages left out get KV at first use.
   */
  private async prefillFolder(folder: Folder, run: FolderRun, signal: AbortSignal): Promise<void> {
    const ctx = this.settings.eagerPrefill ? await this.answerContextReady() : null;
    const rows = this.db
      .prepare(
        `SELECT p.id, COALESCE(p.token_count, 0) AS tokens FROM passages p JOIN documents d ON d.id = p.document_id
         WHERE d.folder_id = ? ORDER BY d.mtime_ms DESC, d.id, p.ordinal`,
      )
      .all(folder.id) as { id: number; tokens: number }[];
    let ids = rows.map((r) => r.id);
    if (ctx) {
      const { layers, kvHeads, headDim } = ctx.engine.runner.kvShape;
      // stored as float16 (db/kv-codec.ts): 2 bytes an element, keys and values; +8 tokens for the title line
      const bytesPerToken = 2 * 2 * layers * kvHeads * headDim;
      let room = this.settings.kvBudgetBytes - ctx.store.stats().bytes;
      const fitting = rows.findIndex((r) => (room -= (r.tokens + 8) * bytesPerToken) < 0);
      if (fitting >= 0) ids = ids.slice(0, fitting);
    }
    run.prefill = { done: 0, total: ids.length };
    if (!ctx || ids.length === 0) return;
    run.state = 'prefilling';
    this.progress(folder);
    await prefillPassages(ctx, ids, {
      signal,
      mode: this.settings.quality === 'auto' ? undefined : this.settings.quality,
      onProgress: (done, total) => {
        run.prefill = { done, total };
        this.progress(folder);
      },
    });
  }

  private progress(folder: Folder): void {
    if (!this.closed) this.options.emit('folder.progress', this.folderView(folder));
  }

  private folderView(folder: Folder): FolderView {
    const counts = this.db
      .prepare(
        `SELECT COUNT(*) AS files,
           SUM(status = 'indexed') AS indexed, SUM(status = 'failed') AS failed, SUM(status = 'skipped') AS skipped,
           (SELECT COUNT(*) FROM passages p JOIN documents d2 ON d2.id = p.document_id WHERE d2.folder_id = @id) AS passages
         FROM documents WHERE folder_id = @id`,
      )
      .get({ id: folder.id }) as { files: number; indexed: number | null; failed: number | null; skipped: number | null; passages: number };
    const run = this.run(folder.id);
    return {
      id: folder.id,
      path: folder.path,
      state: run.state,
      parse: { ...run.parse },
      prefill: { ...run.prefill },
      files: counts.files,
      indexed: counts.indexed ?? 0,
      failed: counts.failed ?? 0,
      skipped: counts.skipped ?? 0,
      passages: counts.passages,
      error: run.error,
    };
  }

  // ---- answering ------------------------------------------------------------------------------

  private ask({ requestId, question, chatId }: RequestArgs<'ask'>): Promise<AnswerView> {
    if (this.answers.has(requestId)) throw new QuireRequestError('invalid-arguments', `request ${requestId} is already running`);
    const controller = new AbortController();
    this.answers.set(requestId, controller);
    const work = (async (): Promise<AnswerView> => {
      try {
        const ctx = await this.answerContextReady();
        if (!ctx) throw new QuireRequestError('unavailable', `answers need a model: ${this.modelProblem ?? 'none loaded'}`);
        const chat = chatId !== undefined ? getChat(this.db, chatId) : createChat(this.db, question.slice(0, 80));
        if (!chat) throw new QuireRequestError('failed', `no chat ${chatId}`);
        let session = this.chatSessions.get(chat.id);
        if (!session) {
          session = new ChatSession(chat.id);
          this.chatSessions.set(chat.id, session);
        }
        let text = '';
        const out = await ask(ctx, question, {
          k: this.settings.k,
          mode: this.settings.mode,
          quality: this.settings.quality === 'auto' ? undefined : this.settings.quality,
          chat: session,
          signal: controller.signal,
          onText: (piece) => {
            text += piece;
            this.options.emit('answer.text', { requestId, text: piece });
          },
        }).catch((e: Error) => {
          // stopped by the user: keep what was streamed
          if (controller.signal.aborted) return null;
          throw e;
        });
        const messageId = this.db.prepare('SELECT MAX(id) FROM messages WHERE chat_id = ?').pluck().get(chat.id) as number | null;
        const view: AnswerView = {
          requestId,
          chatId: chat.id,
          messageId: out ? messageId : null,
          answer: out ? out.answer : text,
          citations: out
            ? out.citations.map((c) => ({ ordinal: c.n, passageId: c.passageId, documentPath: c.path, title: c.title, page: c.page, quote: '' }))
            : [],
          sources: (out?.passages ?? []).map((p, i) => ({
            ordinal: i + 1,
            passageId: p.passageId,
            documentPath: p.path,
            title: p.title,
            page: p.page,
            quote: p.text.slice(0, 300),
          })),
          figures: {
            ttftMs: out?.figures.ttftMs ?? null,
            reusedBlocks: out?.figures.reusedBlocks ?? null,
            computedBlocks: out?.figures.computedBlocks ?? null,
            tokensPerSecond: out?.figures.tokensPerSecond ?? null,
            provider: out?.figures.provider ?? this.engine?.provider ?? null,
            mode: out ? `${out.figures.mode}/${out.figures.quality}` : 'stopped',
          },
          cancelled: out === null,
        };
        this.options.emit('answer.done', view);
        return view;
      } catch (e) {
        this.options.emit('answer.error', { requestId, message: (e as Error).message });
        throw e;
      } finally {
        this.answers.delete(requestId);
      }
    })();
    this.answerChain = Promise.allSettled([this.answerChain, work]);
    return work;
  }

  // ---- settings -------------------------------------------------------------------------------

  private get settingsFile(): string {
    return path.join(this.options.dataDir, 'app-settings.json');
  }

  // The chosen model lives in the CLI's settings (quire models use), so the app and the CLI agree on
  // it; everything else the app shows in Settings lives in app-settings.json.
  private readSettings(): Settings {
    let saved: Partial<Settings> = {};
    try {
      const parsed = settingsSchema.partial().safeParse(JSON.parse(fs.readFileSync(this.settingsFile, 'utf8')));
      if (parsed.success) saved = parsed.data;
    } catch {
      // no settings yet
    }
    return { ...DEFAULT_SETTINGS, ...saved, modelDir: null };
  }

  private writeSettings(): void {
    const { modelDir, ...rest } = this.settings;
    const tmp = `${this.settingsFile}.tmp`;
    fs.writeFileSync(tmp, JSON.stringify(rest, null, 2));
    fs.renameSync(tmp, this.settingsFile);
    if (modelDir && readModelChoice().model !== modelDir) writeModelChoice({ ...readModelChoice(), model: modelDir });
  }

  // ---- shutdown -------------------------------------------------------------------------------

  /** Stops indexing and answering, lets the current database transaction finish, closes the db. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.rewatch(); // closes the watcher (closed: no new one)
    await this.watching;
    this.indexQueue = [];
    for (const run of this.runs.values()) run.abort?.abort();
    for (const c of this.answers.values()) c.abort();
    await Promise.allSettled([this.indexing, this.answerChain]);
    await this.engine?.release().catch(() => undefined);
    this.db.close();
  }
}

function citationView(c: Citation | CitationView): CitationView {
  return { ordinal: c.ordinal, passageId: c.passageId, documentPath: c.documentPath, title: c.title ?? null, page: c.page ?? null, quote: c.quote };
}
