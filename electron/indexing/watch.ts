// Watching indexed folders: chokidar reports changes, which are debounced per folder (a burst of
// saves or a checkout becomes one re-index) and then re-indexed through the caller's function.
// Re-indexes never overlap (one writer): they run one after another, and a folder that changes
// while it is being re-indexed is re-indexed once more afterwards. The indexer itself is
// incremental, so a re-index after one edit costs a walk plus that file.
import path from 'node:path';
import { watch, type FSWatcher } from 'chokidar';

export const DEFAULT_WATCH_DEBOUNCE_MS = 500;

export interface FolderWatcherOptions {
  /** Re-indexes a folder (e.g. `(root) => indexFolder(db, root, ...)`). */
  reindex: (root: string) => Promise<unknown>;
  /** Quiet time after the last change before re-indexing (default 500 ms). */
  debounceMs?: number;
  /** Paths never worth a re-index (the database file when it lives inside a folder, for one). */
  ignorePaths?: readonly string[];
  onError?: (error: unknown, root: string) => void;
}

const IGNORED_SEGMENT = /(^|[/\\])(\.git|node_modules|\.quire)([/\\]|$)/;

export class FolderWatcher {
  private readonly timers = new Map<string, NodeJS.Timeout>();
  private readonly dirty = new Set<string>();
  private chain: Promise<void> = Promise.resolve();
  private running = 0;
  private closed = false;

  private constructor(
    private readonly watcher: FSWatcher,
    private readonly roots: string[],
    private readonly options: FolderWatcherOptions,
  ) {}

  /** Starts watching; resolves once the initial scan of every root is done. */
  static async start(roots: readonly string[], options: FolderWatcherOptions): Promise<FolderWatcher> {
    const resolved = roots.map((r) => path.resolve(r));
    const ignorePaths = new Set((options.ignorePaths ?? []).map((p) => path.resolve(p)));
    const watcher = watch(resolved, {
      ignoreInitial: true,
      followSymlinks: false,
      ignored: (p: string) => IGNORED_SEGMENT.test(p) || ignorePaths.has(p) || [...ignorePaths].some((i) => p.startsWith(`${i}-`)),
    });
    const self = new FolderWatcher(watcher, resolved, options);
    watcher.on('all', (_event, changed) => self.changed(changed));
    watcher.on('error', (error) => options.onError?.(error, ''));
    await new Promise<void>((resolve) => watcher.once('ready', () => resolve()));
    return self;
  }

  /** Folders with a change waiting for its debounce, or being re-indexed. */
  get busy(): boolean {
    return this.timers.size > 0 || this.running > 0;
  }

  private rootOf(changed: string): string | undefined {
    return this.roots
      .filter((r) => changed === r || changed.startsWith(r.endsWith(path.sep) ? r : r + path.sep))
      .sort((a, b) => b.length - a.length)[0];
  }

  private changed(changed: string): void {
    const root = this.rootOf(path.resolve(changed));
    if (!root || this.closed) return;
    clearTimeout(this.timers.get(root));
    this.timers.set(
      root,
      setTimeout(() => {
        this.timers.delete(root);
        this.schedule(root);
      }, this.options.debounceMs ?? DEFAULT_WATCH_DEBOUNCE_MS),
    );
  }

  private schedule(root: string): void {
    if (this.dirty.has(root)) return; // already queued, not started: that run will see this change
    this.dirty.add(root);
    this.running++;
    this.chain = this.chain.then(async () => {
      this.dirty.delete(root);
      try {
        if (!this.closed) await this.options.reindex(root);
      } catch (error) {
        this.options.onError?.(error, root);
      } finally {
        this.running--;
      }
    });
  }

  /** Resolves when no change is waiting and no re-index is running. */
  async idle(): Promise<void> {
    while (this.busy) {
      await this.chain;
      if (this.timers.size > 0) await new Promise((r) => setTimeout(r, 20));
    }
  }

  async close(): Promise<void> {
    this.closed = true;
    for (const t of this.timers.values()) clearTimeout(t);
    this.timers.clear();
    await this.watcher.close();
    await this.chain;
  }
}
