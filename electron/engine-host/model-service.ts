// The loaded model: loading it (again when the model folder or provider setting changes), its answer
// context (instruction block KV, KV store, fingerprint), the curated catalog and downloads. Owns the
// Engine and releases it on reload and on dispose.
import fs from 'node:fs';
import path from 'node:path';
import type { Db } from '../../db/open.ts';
import { KvStore } from '../../db/kv-store.ts';
import { Engine } from '../../native-models/engine.ts';
import { createAnswerContext, type AnswerContext } from '../answering/passage-kv.ts';
import { QuireRequestError, type EmitEvent, type ModelStatus } from '../contract/types.ts';
import { estimateTokens } from '../indexing/token-estimate.ts';
import { CATALOG, catalogModel, DEFAULT_MODEL_ID, modelDir as catalogModelDir } from '../models/catalog.ts';
import { downloadModel } from '../models/download.ts';
import type { RequestHandlers } from './request-handlers.ts';
import type { SettingsStore } from './settings-store.ts';

export type ModelRequest = 'models.catalog' | 'models.download' | 'models.useFolder';

export class ModelService {
  private context: AnswerContext | null = null;
  private problem: string | null = 'no model chosen yet';
  private loading: Promise<void> = Promise.resolve();
  private downloading: string | null = null;
  private disposed = false;
  private readonly unloadListeners = new Set<() => void>();
  private readonly unsubscribe: () => void;

  constructor(
    private readonly db: Db,
    private readonly settings: SettingsStore,
    private readonly emit: EmitEvent,
    /** Where `auto` remembers its provider decision per model and machine (app-paths.ts providerChoicePath). */
    private readonly providerCache?: string,
  ) {
    this.unsubscribe = settings.onDidChange((next, previous) => {
      if (next.modelDir !== previous.modelDir || next.provider !== previous.provider) this.load();
    });
  }

  /** (Re)loads the model the settings name; the previous one is released first. */
  load(): void {
    const { modelDir: dir, provider, kvBudgetBytes } = this.settings.get();
    const previous = this.takeContext();
    const before = this.loading;
    this.loading = (async () => {
      await before;
      // a load that was under way has finished by now: its model goes too
      for (const context of [previous, this.takeContext()]) await context?.engine.release().catch(() => undefined);
      if (!dir) {
        this.problem = 'no model chosen yet';
        return;
      }
      try {
        const engine = await Engine.load(dir, { provider, providerCache: this.providerCache });
        try {
          this.context = await createAnswerContext(this.db, engine, { store: new KvStore(this.db, { budgetBytes: kvBudgetBytes }) });
        } catch (e) {
          await engine.release().catch(() => undefined);
          throw e;
        }
        this.problem = null;
      } catch (e) {
        this.problem = `the model at ${dir} did not load: ${(e as Error).message}`;
      }
    })().finally(() => {
      if (!this.disposed) this.emit('model.changed', this.status());
    });
  }

  /** The answer context of the loaded model, once loading has settled; null without a model. */
  async ready(): Promise<AnswerContext | null> {
    await this.loading;
    return this.context;
  }

  /** Calls `listener` when the loaded model is released (reload or dispose); returns the unsubscribe function. */
  onDidUnload(listener: () => void): () => void {
    this.unloadListeners.add(listener);
    return () => this.unloadListeners.delete(listener);
  }

  status(): ModelStatus {
    return {
      ready: this.context !== null,
      dir: this.settings.get().modelDir,
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
        .catch((e: Error) => emit(0, 0, true, e.message))
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
    const resolved = path.resolve(dir);
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
    await this.takeContext()?.engine.release().catch(() => undefined);
  }
}
