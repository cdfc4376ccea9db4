// The library: its folders, the index queue (one folder at a time: parse, then KV prefill), the
// watcher that re-queues a folder when its files change, and the per-folder progress the Library view
// shows (the file being parsed, ETAs, why prefill leaves passages out). The KV prefill itself is the
// KV service's background prefill (kv-service.ts): a folder's run waits for its share of it and
// reports it, and the prefill's ETA and limits are the KV service's. A model that loads (or a larger
// KV budget, or background prefill switched on) queues a prefill-only run of every folder at once,
// without waiting for a re-index, so the Library shows the prefill the model's arrival started. Owns
// the watcher and the index runs; dispose stops both and waits for the current transaction.
import fs from 'node:fs';
import path from 'node:path';
import { listDocuments } from '../../db/documents.ts';
import { addFolder, folderCounts, getFolder, listFolders, removeFolder, type Folder, type FolderCounts } from '../../db/folders.ts';
import type { Db } from '../../db/open.ts';
import { QuireRequestError, type EmitEvent, type FolderState, type FolderView, type PrefillLimit, type Progress } from '../contract/types.ts';
import { indexFolder, type FileProblem } from '../indexing/indexer.ts';
import { FolderWatcher } from '../indexing/watch.ts';
import type { KvService } from './kv-service.ts';
import type { ModelService } from './model-service.ts';
import type { RequestHandlers } from './request-handlers.ts';
import type { SettingsStore } from './settings-store.ts';
import { userPath } from './user-path.ts';

export type LibraryRequest =
  | 'folders.list'
  | 'folders.add'
  | 'folders.remove'
  | 'folders.reindex'
  | 'folders.pause'
  | 'folders.resume'
  | 'folders.files';

/** Default for LibraryOptions.countsRefreshMs. */
export const COUNTS_REFRESH_MS = 250;

export interface LibraryOptions {
  /** The database file: it may lie inside a watched folder, and its own writes are not changes to index. */
  dbPath: string;
  /**
   * During a run, how often a progress event re-reads the folder's counts (one COUNT over its
   * documents and passages, ~1 ms on a 30,000-passage folder); in between, events carry the last
   * counts with live parse and prefill progress. A change of state always re-reads them.
   */
  countsRefreshMs?: number;
}

interface FolderRun {
  state: FolderState;
  parse: Progress;
  prefill: Progress;
  currentFile: string | null;
  error: string | null;
  abort: AbortController | null;
  /** The queued run only prefills (the files are indexed already: a model arrived). */
  prefillOnly: boolean;
  /** A prefill-only run to queue when the current run ends (a model loaded while it ran). */
  prefillAfter: boolean;
  /** The last run's skipped and failed files (walk problems included), with reasons. */
  problems: { skipped: FileProblem[]; failed: FileProblem[] } | null;
  /** The folder's counts and prefill limit (kv-service.ts) as last read, and when (performance.now()). */
  counts: FolderCounts | null;
  prefillLimit: PrefillLimit | null;
  countsReadAt: number;
}

export class LibraryService {
  private readonly runs = new Map<number, FolderRun>();
  private queue: number[] = [];
  private indexing: Promise<void> | null = null;
  private watcher: FolderWatcher | null = null;
  private watching: Promise<void> = Promise.resolve();
  private disposed = false;
  private readonly countsRefreshMs: number;
  private readonly unsubscribe: (() => void)[];

  constructor(
    private readonly db: Db,
    private readonly settings: SettingsStore,
    private readonly models: ModelService,
    private readonly kv: KvService,
    private readonly emit: EmitEvent,
    private readonly options: LibraryOptions,
  ) {
    this.countsRefreshMs = options.countsRefreshMs ?? COUNTS_REFRESH_MS;
    this.rewatch();
    this.unsubscribe = [
      models.onDidLoad(() => this.prefillAll()),
      // no model: the folders' prefill limits say so
      models.onDidUnload(() => this.refreshAll()),
      settings.onDidChange((next, previous) => {
        if ((next.eagerPrefill && !previous.eagerPrefill) || next.kvBudgetBytes > previous.kvBudgetBytes) this.prefillAll();
        // a lower budget (evicted at once) or prefill switched off: the limits change without a run
        else if (next.eagerPrefill !== previous.eagerPrefill || next.kvBudgetBytes !== previous.kvBudgetBytes) this.refreshAll();
      }),
    ];
  }

  /** Posts every folder's view, its counts and prefill limit read again. */
  private refreshAll(): void {
    if (this.disposed) return;
    for (const folder of listFolders(this.db)) this.progress(folder, true);
  }

  /** Queues a prefill-only run of every folder not paused (after its current run, if one is going). */
  private prefillAll(): void {
    if (this.disposed || !this.settings.get().eagerPrefill) return;
    for (const folder of listFolders(this.db)) {
      const run = this.run(folder.id);
      if (run.state === 'paused') continue;
      if (run.abort) run.prefillAfter = true;
      else this.enqueue(folder.id, true);
    }
  }

  readonly handlers: RequestHandlers<LibraryRequest> = {
    'folders.list': () => listFolders(this.db).map((f) => this.view(f, true)),
    'folders.add': ({ path: p }) => {
      const root = userPath(p);
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
      this.emit('folders.changed', {});
      return this.view(folder, true);
    },
    'folders.remove': async ({ folderId }) => {
      this.runs.get(folderId)?.abort?.abort();
      this.queue = this.queue.filter((id) => id !== folderId);
      // let the run stop (its current transaction finishes) before the rows go
      if (this.indexing) await this.indexing.catch(() => undefined);
      this.runs.delete(folderId);
      const removed = removeFolder(this.db, folderId);
      this.rewatch();
      this.emit('folders.changed', {});
      return { removed };
    },
    'folders.reindex': ({ folderId }) => {
      const folder = this.folderOrThrow(folderId);
      this.enqueue(folder.id);
      return this.view(folder, true);
    },
    'folders.pause': ({ folderId }) => {
      const folder = this.folderOrThrow(folderId);
      const run = this.run(folderId);
      this.queue = this.queue.filter((id) => id !== folderId);
      run.abort?.abort();
      run.state = 'paused';
      this.progress(folder, true);
      return this.view(folder, true);
    },
    'folders.resume': ({ folderId }) => {
      const folder = this.folderOrThrow(folderId);
      this.enqueue(folderId);
      return this.view(folder, true);
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
  };

  /**
   * Queues every folder. The engine does this when it replaces a worker that died (client.ts), so
   * a run the crash cut short finishes; indexing is incremental, so an unchanged file costs a stat.
   */
  reindexAll(): void {
    for (const folder of listFolders(this.db)) this.enqueue(folder.id);
  }

  private run(folderId: number): FolderRun {
    let run = this.runs.get(folderId);
    if (!run) {
      run = {
        state: 'done',
        parse: { done: 0, total: 0 },
        prefill: { done: 0, total: 0 },
        currentFile: null,
        error: null,
        abort: null,
        prefillOnly: false,
        prefillAfter: false,
        problems: null,
        counts: null,
        prefillLimit: null,
        countsReadAt: 0,
      };
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
    this.watching = this.watching
      .then(async () => {
        await this.watcher?.close();
        this.watcher = null;
        const roots = listFolders(this.db).map((f) => f.path);
        if (this.disposed || roots.length === 0) return;
        this.watcher = await FolderWatcher.start(roots, {
          ignorePaths: [this.options.dbPath],
          reindex: async (root) => {
            const folder = listFolders(this.db).find((f) => path.resolve(f.path) === root);
            if (folder && !this.disposed && this.runs.get(folder.id)?.state !== 'paused') this.enqueue(folder.id);
          },
          onError: () => undefined, // an unwatchable folder is still indexed on demand
        });
      })
      .catch(() => undefined);
  }

  /** Queues the folder's run: parse then prefill, or (`prefillOnly`) prefill alone. */
  private enqueue(folderId: number, prefillOnly = false): void {
    const run = this.run(folderId);
    if (this.disposed || run.abort) return;
    if (this.queue.includes(folderId)) {
      if (!prefillOnly) run.prefillOnly = false; // a full run covers the prefill too
      return;
    }
    run.prefillOnly = prefillOnly;
    run.state = 'queued';
    run.error = null;
    this.queue.push(folderId);
    this.progress(this.folderOrThrow(folderId), true);
    this.indexing ??= this.drainQueue().finally(() => {
      this.indexing = null;
    });
  }

  private async drainQueue(): Promise<void> {
    while (!this.disposed && this.queue.length > 0) {
      const folderId = this.queue.shift()!;
      const folder = getFolder(this.db, folderId);
      if (!folder) continue;
      const run = this.run(folderId);
      const abort = new AbortController();
      run.abort = abort;
      run.prefillAfter = false;
      run.state = run.prefillOnly ? 'prefilling' : 'scanning';
      this.progress(folder, true);
      try {
        if (!run.prefillOnly) {
          const summary = await indexFolder(this.db, folder.path, {
            countTokens: this.models.countTokens,
            passageTokens: this.settings.get().passageTokens,
            signal: abort.signal,
            onProgress: (p) => {
              const state = p.phase === 'scanning' ? 'scanning' : 'parsing';
              const changed = state !== run.state;
              run.parse = { done: p.filesDone, total: Math.max(p.filesFound, p.filesDone), etaMs: p.etaMs ?? null };
              run.currentFile = p.currentPath ?? null;
              run.state = state;
              this.progress(folder, changed);
            },
          });
          run.problems = { skipped: summary.skipped, failed: summary.failed };
          run.parse = { done: summary.files, total: summary.files };
          run.currentFile = null;
        }
        await this.kv.prefillFolder(folder.id, {
          signal: abort.signal,
          planned: (progress, running) => {
            run.prefill = progress;
            if (!running) return;
            run.state = 'prefilling';
            this.progress(folder, true);
          },
          onProgress: (progress) => {
            run.prefill = progress;
            this.progress(folder, false);
          },
        });
        run.prefill = { done: run.prefill.done, total: run.prefill.total };
        run.state = 'done';
      } catch (e) {
        if (!abort.signal.aborted) {
          run.state = 'error';
          run.error = (e as Error).message;
        }
      } finally {
        run.abort = null;
        run.currentFile = null;
        if (abort.signal.aborted) run.state = 'paused';
      }
      if (getFolder(this.db, folderId)) this.progress(folder, true);
      if (run.prefillAfter && run.state !== 'paused') this.enqueue(folderId, true);
    }
  }

  /** Posts the folder's view; `changed` (a new state, or the run's end) re-reads its counts. */
  private progress(folder: Folder, changed: boolean): void {
    if (!this.disposed) this.emit('folder.progress', this.view(folder, changed));
  }

  private view(folder: Folder, fresh: boolean): FolderView {
    const run = this.run(folder.id);
    const now = performance.now();
    if (fresh || !run.counts || now - run.countsReadAt >= this.countsRefreshMs) {
      run.counts = folderCounts(this.db, folder.id);
      run.prefillLimit = this.kv.prefillLimitOf(folder.id);
      run.countsReadAt = now;
    }
    return {
      id: folder.id,
      path: folder.path,
      state: run.state,
      parse: { ...run.parse },
      prefill: { ...run.prefill },
      currentFile: run.currentFile,
      prefillLimit: run.prefillLimit,
      ...run.counts,
      error: run.error,
    };
  }

  /** Stops the watcher and the index run; resolves once the current transaction has finished. */
  async dispose(): Promise<void> {
    this.disposed = true;
    for (const u of this.unsubscribe) u();
    this.rewatch(); // closes the watcher (disposed: no new one)
    this.queue = [];
    for (const run of this.runs.values()) run.abort?.abort();
    await Promise.allSettled([this.watching, this.indexing]);
  }
}
