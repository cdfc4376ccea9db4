// The engine service: answers the contract's engine requests over one SQLite connection and one
// loaded model. It runs inside the engine worker (worker.ts); the window's process never does this
// work. The work is split by concern into parts that each own and dispose their resources:
//   settings-store.ts  settings file          model-service.ts   model, catalog, downloads
//   library-service.ts folders, index queue, watcher, progress
//   kv-service.ts      KV budget, totals and coverage, background prefill (predicted, recent, chatted, library)
//   search-service.ts  search, passage view   answer-service.ts  ask/cancel, chats, chat KV
//   completion-service.ts  the OpenAI-compatible API's completions (its conversations' KV in the chats' pool)
import fs from 'node:fs';
import { DEFAULT_DECODED_KV_CACHE_BYTES } from '../../db/decoded-kv-cache.ts';
import { listFolders } from '../../db/folders.ts';
import { openDatabase, type Db } from '../../db/open.ts';
import { KvStore } from '../../db/kv-store.ts';
import { parseRequest } from '../contract/schemas.ts';
import {
  isHostRequest,
  QuireRequestError,
  type AppHost,
  type EmitEvent,
  type EngineRequestName,
  type RequestArgs,
  type RequestName,
  type RequestResults,
} from '../contract/types.ts';
import type { ProviderChoice } from '../../native-models/provider-names.ts';
import { providerChoicePath } from '../app-paths.ts';
import { AnswerService } from './answer-service.ts';
import { CompletionService } from './completion-service.ts';
import { KvService } from './kv-service.ts';
import { LibraryService, type LibraryOptions } from './library-service.ts';
import { ModelService } from './model-service.ts';
import type { RequestHandlers } from './request-handlers.ts';
import { searchHandlers } from './search-service.ts';
import { SettingsStore } from './settings-store.ts';

export interface EngineServiceOptions extends Pick<LibraryOptions, 'countsRefreshMs'> {
  dbPath: string;
  dataDir: string;
  /** A model folder that overrides the saved setting (quire serve --model). */
  modelDir?: string;
  /** Overrides of the saved settings for this run (quire serve --provider / --kv-budget). */
  provider?: ProviderChoice;
  kvBudgetBytes?: number;
  host: AppHost;
  version?: string;
  emit: EmitEvent;
  /** This engine replaces a worker that died: once the model is loaded, every folder is re-indexed. */
  reindexOnStart?: boolean;
}

export class EngineService {
  readonly db: Db;
  readonly settings: SettingsStore;
  readonly models: ModelService;
  readonly kv: KvService;
  readonly library: LibraryService;
  readonly answers: AnswerService;
  readonly completions: CompletionService;
  private readonly handlers: RequestHandlers<EngineRequestName>;
  private closed = false;

  private constructor(options: EngineServiceOptions) {
    fs.mkdirSync(options.dataDir, { recursive: true });
    this.db = openDatabase(options.dbPath);
    this.settings = new SettingsStore(options.dataDir, { modelDir: options.modelDir, provider: options.provider, kvBudgetBytes: options.kvBudgetBytes });
    const emit: EmitEvent = (name, payload) => {
      if (!this.closed) options.emit(name, payload);
    };
    // a long-lived process (the app's worker, `quire serve`): decoded blocks stay in memory between questions
    const store = new KvStore(this.db, { budgetBytes: this.settings.get().kvBudgetBytes, decodedCacheBytes: DEFAULT_DECODED_KV_CACHE_BYTES });
    this.models = new ModelService(this.db, this.settings, emit, store, providerChoicePath(options.dataDir));
    this.kv = new KvService(this.db, this.settings, this.models, store);
    this.library = new LibraryService(this.db, this.settings, this.models, this.kv, emit, options);
    this.answers = new AnswerService(this.db, this.settings, this.models, emit, (q) => this.kv.afterQuestion(q));
    this.completions = new CompletionService(this.db, this.settings, this.models, this.answers.chats, emit, (q) => this.kv.afterQuestion(q));
    this.handlers = {
      ...this.library.handlers,
      ...searchHandlers(this.db),
      ...this.answers.handlers,
      ...this.completions.handlers,
      ...this.models.handlers,
      ...this.kv.handlers,
      // answered at once, while a model may still be loading (model.changed tells when it is done)
      'app.info': () => {
        return {
          version: options.version ?? '0.0.0',
          dataDir: options.dataDir,
          host: options.host,
          model: this.models.status(),
          folders: listFolders(this.db).length,
          features: { indexing: true, answering: true, downloads: true },
        };
      },
      'settings.get': () => this.settings.get(),
      'settings.set': (patch) => this.settings.update(patch),
    };
  }

  /** Opens the service and starts loading the model, without waiting for it: the window shows at once. */
  static open(options: EngineServiceOptions): EngineService {
    const service = new EngineService(options);
    service.models.load();
    return service;
  }

  /** Opens the service and waits for the model to load (the CLI, tests). */
  static async start(options: EngineServiceOptions): Promise<EngineService> {
    const service = EngineService.open(options);
    await service.models.ready();
    if (options.reindexOnStart) service.library.reindexAll();
    return service;
  }

  /** Validates the argument (the worker is a trust boundary too) and answers the request. */
  async handle<N extends RequestName>(name: N, rawArgs: unknown): Promise<RequestResults[N]> {
    if (isHostRequest(name) || !Object.hasOwn(this.handlers, name)) {
      throw new QuireRequestError('unknown-request', `${name} is not handled by the engine`);
    }
    // N is an engine request here (checked above); TypeScript does not narrow a type parameter
    const handler = this.handlers[name as EngineRequestName] as unknown as (args: RequestArgs<N>) => Promise<RequestResults[N]> | RequestResults[N];
    return await handler(parseRequest(name, rawArgs));
  }

  /**
   * Shuts down in dependency order: the watcher and index runs stop and answers are aborted (both
   * wait for their current database transaction), then the model is released, then the db closes.
   */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await Promise.all([this.library.dispose(), this.answers.dispose(), this.completions.dispose(), this.kv.dispose()]);
    await this.models.dispose();
    this.db.close();
  }
}
