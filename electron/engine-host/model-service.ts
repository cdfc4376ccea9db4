// The loaded model: loading it (again when the model folder or provider setting changes), its answer
// context (instruction block KV for the system prompt setting, KV store, fingerprint), the curated
// catalog and downloads (failures said in words, download-errors.ts). Owns the Engine and releases it
// on reload and on dispose. Parts that depend on the model subscribe to its loads and unloads.
import fs from 'node:fs';
import path from 'node:path';
import type { Db } from '../../db/open.ts';
import type { KvStore } from '../../db/kv-store.ts';
import { Engine } from '../../native-models/engine.ts';
import { createAnswerContext, withSystemPrompt, type AnswerContext } from '../answering/passage-kv.ts';
import { QuireRequestError, type EmitEvent, type ModelStatus } from '../contract/types.ts';
import { estimateTokens } from '../indexing/token-estimate.ts';
import { CATALOG, catalogModel, DEFAULT_MODEL_ID, modelDir as catalogModelDir } from '../models/catalog.ts';
import { describeDownloadError } from '../models/download-errors.ts';
import { downloadModel, HUB_URL } from '../models/download.ts';
import type { RequestHandlers } from './request-handlers.ts';
import type { SettingsStore } from './settings-store.ts';
import { userPath } from './user-path.ts';

export type ModelRequest = 'models.catalog' | 'models.download' | 'models.useFolder';

export class ModelService {
  private context: AnswerContext | null = null;
  private problem: string | null = 'no model chosen yet';
  private loading: Promise<void> = Promise.resolve();
  private downloading: string | null = null;
  private disposed = false;
  /** A load is under way (from load() until its context is ready or has failed). */
  private loadsPending = 0;
  private readonly unloadListeners = new Set<() => void>();
  private readonly loadListeners = new Set<(ctx: AnswerContext) => void>();
  private readonly unsubscribe: () => void;

  constructor(
    private readonly db: Db,
    private readonly settings: SettingsStore,
    private readonly emit: EmitEvent,
    /** The stored passage KV every loaded model's answers use (its budget kept by kv-service.ts). */
    private readonly store: KvStore,
    /** Where `auto` remembers its provider decision per model and machine (app-paths.ts providerChoicePath). */
    private readonly providerCache?: string,
  ) {
    this.unsubscribe = settings.onDidChange((next, previous) => {
      if (next.modelDir !== previous.modelDir || next.provider !== previous.provider) {
        this.load();
        return;
      }
      if (next.systemPrompt !== previous.systemPrompt) this.changeSystemPrompt(next.systemPrompt);
    });
  }

  /** (Re)loads the model the settings name; the previous one is released first. */
  load(): void {
    const { modelDir: dir, provider, systemPrompt } = this.settings.get();
    const previous = this.takeContext();
    const before = this.loading;
    this.loadsPending++;
    if (dir && !this.disposed) this.emit('model.changed', this.status());
    this.loading = (async () => {
      await before;
      // a load that was under way has finished by now: its model goes too
      for (const context of [previous, this.takeContext()]) {
        await context?.queue.idle(); // background prefill stops at its block's end (kv-service.ts)
        await context?.engine.release().catch(() => undefined);
      }
      if (!dir) {
        this.problem = 'no model chosen yet';
        return;
      }
      try {
        const engine = await Engine.load(dir, { provider, providerCache: this.providerCache });
        try {
          this.context = await createAnswerContext(this.db, engine, { store: this.store, systemPrompt });
        } catch (e) {
          await engine.release().catch(() => undefined);
          throw e;
        }
        this.problem = null;
      } catch (e) {
        this.problem = `the model at ${dir} did not load: ${(e as Error).message}`;
      }
    })().finally(() => {
      this.loadsPending--;
      if (this.disposed) return;
      this.emit('model.changed', this.status());
      const ctx = this.context;
      if (ctx && this.loadsPending === 0) for (const listener of this.loadListeners) listener(ctx);
    });
  }

  /** A new system prompt: the loaded model gets a new instruction block (no reload). */
  private changeSystemPrompt(systemPrompt: string): void {
    const before = this.loading;
    this.loading = (async () => {
      await before;
      const ctx = this.context;
      if (!ctx) return;
      try {
        const next = await withSystemPrompt(ctx, systemPrompt);
        if (this.context !== ctx) return;
        this.context = next;
        // passage KV of the shared-prefix mode is a new variant now: background prefill starts again
        for (const listener of this.loadListeners) listener(next);
      } catch {
        // a template that cannot render this system turn: the previous instruction block stays
      }
    })();
  }

  /** The answer context of the loaded model, once loading has settled; null without a model. */
  async ready(): Promise<AnswerContext | null> {
    await this.loading;
    return this.context;
  }

  /**
   * Calls `listener` each time a new answer context is ready: a model has loaded (and no other load
   * is queued), or the system prompt changed. Returns the unsubscribe function.
   */
  onDidLoad(listener: (ctx: AnswerContext) => void): () => void {
    this.loadListeners.add(listener);
    return () => this.loadListeners.delete(listener);
  }

  /** Calls `listener` when the loaded model is released (reload or dispose); returns the unsubscribe function. */
  onDidUnload(listener: () => void): () => void {
    this.unloadListeners.add(listener);
    return () => this.unloadListeners.delete(listener);
  }

  status(): ModelStatus {
    const dir = this.settings.get().modelDir;
    return {
      ready: this.context !== null,
      loading: this.loadsPending > 0,
      dir,
      name: dir ? modelName(dir) : null,
      problem: this.context ? null : this.problem,
      provider: this.context?.engine.provider ?? null,
      providerReason: this.context?.engine.runner.providerReason ?? null,
    };
  }

  /** Why answers cannot run now. */
  get unavailableReason(): string {
    return this.problem ?? 'none loaded';
  }

  /** Tokens of `text` by the loaded model's tokenizer, else the estimate (token-estimate.ts). */
  readonly countTokens = (text: string): number => (this.context ? this.context.engine.tokenizer.encode(text).length : estimateTokens(text));

  readonly handlers: RequestHandlers<ModelRequest> = {
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
        this.emit('model.download', { modelId, receivedBytes, totalBytes, done, error });
      emit(0, model.approxBytes, false, null);
      void downloadModel(model, dir, { onProgress: (p) => emit(p.bytes, p.total, false, null) })
        .then(() => {
          emit(1, 1, true, null);
          if (!this.disposed) this.useFolder(dir);
        })
        .catch((e: Error) => emit(0, 0, true, describeDownloadError(e, HUB_URL)))
        .finally(() => {
          this.downloading = null;
        });
      return this.status();
    },
    'models.useFolder': async ({ path: dir }) => {
      this.useFolder(dir);
      await this.loading;
      return this.status();
    },
  };

  /** Chooses a model folder and loads it (again, when it is the current one: it may have been fixed). */
  private useFolder(dir: string): void {
    const resolved = userPath(dir);
    const unchanged = this.settings.get().modelDir === resolved;
    this.settings.update({ modelDir: resolved }); // a changed folder loads through onDidChange
    if (unchanged) this.load();
  }

  /** Detaches the loaded model's context (answers see none from now on) and tells the listeners. */
  private takeContext(): AnswerContext | null {
    const context = this.context;
    this.context = null;
    if (context) for (const listener of this.unloadListeners) listener();
    return context;
  }

  /** Waits for a load in progress, then releases the model. */
  async dispose(): Promise<void> {
    this.disposed = true;
    this.unsubscribe();
    await this.loading;
    const context = this.takeContext();
    await context?.queue.idle();
    await context?.engine.release().catch(() => undefined);
  }
}

/** A model's name for people: the catalog's short name for a catalog model, else the folder's name. */
export function modelName(dir: string): string {
  const resolved = path.resolve(dir);
  const known = CATALOG.find((m) => path.resolve(catalogModelDir(m.id)) === resolved);
  return known ? known.description.split(',')[0] : path.basename(resolved);
}
