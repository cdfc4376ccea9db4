// Stored passage KV as a service: its budget (kept at once when the setting changes), its totals and
// per-folder coverage for kv.stats, and the background prefill of the loaded model: one queue
// (answering/prefill-queue.ts) that takes, in this order, what the last question predicts (its next-
// ranked passages and the neighbours of the ones it used), recently modified documents, the folders
// the user chats with, and the rest of the library, within the budget's free room
// (answering/prefill-plan.ts). It starts when a model is loaded (chosen) or the system prompt changes
// (a new instruction block: new shared-prefix variants), plans again when a folder has been indexed
// or the budget grows, and yields to questions block by block. The Library's per-folder prefill runs,
// their ETA and why passages are left out (library-service.ts) are read from here: one mechanism,
// one account of it.
import type { Db } from '../../db/open.ts';
import { storedKvTotals, type KvStore } from '../../db/kv-store.ts';
import { kvBlobBytes } from '../../db/kv-codec.ts';
import { folderBlockCoverage, type FolderBlockCoverage } from '../../db/passage-keys.ts';
import { BackgroundPrefill, markChatted, type AnsweredQuestion } from '../answering/background-prefill.ts';
import { coverageLimit, prefillLimit, type PrefillState } from '../answering/kv-coverage-limits.ts';
import { carryBlockKeys, type AnswerContext } from '../answering/passage-kv.ts';
import { TITLE_TOKENS, UNKNOWN_PASSAGE_TOKENS } from '../answering/prefill-plan.ts';
import type { PrefillQueue } from '../answering/prefill-queue.ts';
import { kvVariant } from '../answering/quality-modes.ts';
import type { FolderKvCoverageView, KvStatsView, PrefillLimit, Progress, Settings } from '../contract/types.ts';
import type { ModelService } from './model-service.ts';
import type { RequestHandlers } from './request-handlers.ts';
import type { SettingsStore } from './settings-store.ts';

export type KvRequest = 'kv.stats';

export interface FolderPrefillHooks {
  signal: AbortSignal;
  /**
   * Called once with what the run will have stored (running false: nothing to wait for, or no
   * model or prefill to do it with). Why passages are left out is prefillLimitOf's.
   */
  planned(progress: Progress, running: boolean): void;
  onProgress(progress: Progress): void;
}

export class KvService {
  /** The loaded model's answer context (null: none loaded). */
  private ctx: AnswerContext | null = null;
  /** Its background prefill (null: no model loaded, or background prefill is off). */
  private prefill: BackgroundPrefill | null = null;
  /** Folders whose passages answered questions, with the time of the last one (across models). */
  private readonly chattedFolders = new Map<number, number>();
  /** Folders whose indexing was paused: not prefilled until they run again. */
  private readonly pausedFolders = new Set<number>();
  private readonly unsubscribe: (() => void)[];

  constructor(
    private readonly db: Db,
    private readonly settings: SettingsStore,
    private readonly models: ModelService,
    /** The store every loaded model's answers use (model-service.ts gets the same one). */
    readonly store: KvStore,
  ) {
    // stored KV over the budget (lowered while Quire was closed, or by another process): evicted now
    store.setBudget(settings.get().kvBudgetBytes);
    this.unsubscribe = [
      settings.onDidChange((next, previous) => this.settingsChanged(next, previous)),
      models.onDidLoad((ctx) => {
        this.ctx = ctx;
        this.start();
      }),
      models.onDidUnload(() => {
        this.ctx = null;
        this.stop();
      }),
    ];
  }

  /** The loaded model's prefill queue (null without a model): for diagnostics and tests. */
  get prefillQueue(): PrefillQueue | null {
    return this.prefill?.queue ?? null;
  }

  readonly handlers: RequestHandlers<KvRequest> = {
    'kv.stats': ({ folderId }) => this.stats(folderId),
  };

  private settingsChanged(next: Settings, previous: Settings): void {
    if (next.kvBudgetBytes !== previous.kvBudgetBytes) {
      // a promise: stored KV never exceeds the budget, so a lower one evicts at once
      this.store.setBudget(next.kvBudgetBytes);
      this.prefill?.replan(next.kvBudgetBytes, this.pausedFolders);
    }
    if (next.eagerPrefill !== previous.eagerPrefill || next.quality !== previous.quality) this.start();
  }

  /** A model was loaded (or prefill's settings changed): its background prefill, the library planned. */
  private start(): void {
    this.stop();
    const ctx = this.ctx;
    const { quality, eagerPrefill } = this.settings.get();
    if (!ctx || !eagerPrefill) return;
    const mode = quality === 'auto' ? ctx.defaultQuality : quality;
    this.prefill = new BackgroundPrefill(this.db, ctx, { mode, chattedFolders: this.chattedFolders });
    this.prefill.planLibrary(this.store.budgetBytes, { skipFolders: this.pausedFolders });
  }

  private stop(): void {
    this.prefill?.close();
    this.prefill = null;
  }

  /** After a question: what it predicts goes to the front of the queue (prefill-plan.ts). */
  afterQuestion(q: AnsweredQuestion): void {
    if (this.prefill) this.prefill.afterQuestion(q);
    else markChatted(this.db, this.chattedFolders, q.passageIds);
  }

  /**
   * A folder's prefill run (after indexing it, or prefill alone when a model arrives or the budget
   * grows: library-service.ts): its passages not stored yet are queued (within the budget's free
   * room) and this waits until they have left the queue, reporting progress with the background
   * prefill's ETA. The work is the background prefill's; this only watches the folder's share.
   * `signal` (the folder paused) takes them out and stops at once; the folder is then left out of
   * background prefill until it runs again.
   */
  async prefillFolder(folderId: number, hooks: FolderPrefillHooks): Promise<void> {
    this.pausedFolders.delete(folderId);
    carryBlockKeys(this.db); // re-indexed passages keep their keys; removed ones' go
    await this.models.ready();
    const p = this.prefill;
    if (!p || hooks.signal.aborted) {
      hooks.planned({ done: 0, total: 0 }, false);
      return;
    }
    p.planLibrary(this.store.budgetBytes, { folderId, skipFolders: this.pausedFolders });
    const ids = new Set([...p.queue.waiting()].filter((i) => i.folderId === folderId).map((i) => i.passageId));
    const current = p.queue.current;
    if (current?.folderId === folderId) ids.add(current.passageId);
    const stored = folderBlockCoverage(this.db, p.model, folderId)[0]?.stored ?? 0;
    const total = stored + ids.size;
    let done = stored;
    hooks.planned({ done, total, etaMs: this.etaMs(folderId) }, ids.size > 0);
    if (ids.size === 0) return;
    await new Promise<void>((resolve) => {
      const finish = () => {
        off();
        hooks.signal.removeEventListener('abort', onAbort);
        resolve();
      };
      const off = p.queue.onSettled((s) => {
        if (!ids.delete(s.passageId)) return;
        hooks.onProgress({ done: ++done, total, etaMs: this.etaMs(folderId) });
        if (ids.size === 0) finish();
      });
      const onAbort = () => {
        this.pausedFolders.add(folderId);
        p.queue.remove(ids);
        finish();
      };
      hooks.signal.addEventListener('abort', onAbort, { once: true });
    });
  }

  /**
   * Time until the folder's last queued passage is stored: the blocks queued up to it (other
   * folders' and predictions' included, which come first) at the measured rate; null before a rate.
   */
  private etaMs(folderId: number): number | null {
    const p = this.prefill;
    if (!p || p.msPerBlock === null) return null;
    let ahead = p.queue.current ? 1 : 0;
    let last = p.queue.current?.folderId === folderId ? ahead : 0;
    for (const item of p.queue.waiting()) {
      ahead++;
      if (item.folderId === folderId) last = ahead;
    }
    return last * p.msPerBlock;
  }

  /**
   * Why background prefill leaves passages of the folder without KV (the Library row's line), from
   * the same coverage and prefill state as kv.stats.
   */
  prefillLimitOf(folderId: number): PrefillLimit | null {
    const [c] = this.coverage(folderId);
    return c ? prefillLimit(c.coverage, c.state, this.store.budgetBytes) : null;
  }

  /** Coverage per folder (one with `folderId`) for the loaded model, with what is known of its prefill. */
  private coverage(folderId?: number): { coverage: FolderBlockCoverage; state: PrefillState }[] {
    const p = this.prefill;
    const ctx = this.ctx;
    const { quality, eagerPrefill } = this.settings.get();
    const queuedByFolder = new Map<number, number>();
    const current = p?.queue.current;
    for (const item of [...(p?.queue.waiting() ?? []), ...(current ? [current] : [])]) {
      if (item.folderId !== null) queuedByFolder.set(item.folderId, (queuedByFolder.get(item.folderId) ?? 0) + 1);
    }
    const room = this.store.budgetBytes - storedKvTotals(this.db).bytes;
    // counted for the loaded context's instruction block (its system prompt) and the mode prefill uses
    const model = ctx && { fingerprint: ctx.fingerprint, variant: kvVariant(quality === 'auto' ? ctx.defaultQuality : quality, ctx.frame.instructionIds) };
    const kvShape = ctx?.engine.runner.kvShape;
    const typicalBlock = kvShape ? kvBlobBytes(this.store.defaultCodec, { ...kvShape, tokens: UNKNOWN_PASSAGE_TOKENS + TITLE_TOKENS }) : 0;
    return folderBlockCoverage(this.db, model, folderId).map((c) => ({
      coverage: c,
      state: {
        model: ctx !== null,
        prefillOn: eagerPrefill,
        paused: this.pausedFolders.has(c.folderId),
        queued: queuedByFolder.get(c.folderId) ?? 0,
        budgetFull: room < typicalBlock || (p?.leftOutOf(c.folderId) ?? 0) > 0,
      },
    }));
  }

  private stats(folderId?: number): KvStatsView {
    const totals = storedKvTotals(this.db);
    const p = this.prefill;
    const folders = this.coverage(folderId).map(({ coverage: c, state }): FolderKvCoverageView => {
      const limitedBy = coverageLimit(c, state);
      return { ...c, limitedBy, etaMs: limitedBy === 'prefilling' ? this.etaMs(c.folderId) : null };
    });
    return {
      ...totals,
      budgetBytes: this.store.budgetBytes,
      codec: this.store.defaultCodec,
      folders,
      prefill: { queued: p?.queue.pending ?? 0, msPerBlock: p?.msPerBlock ?? null },
    };
  }

  /** Stops background prefill; resolves when the block being computed (abandoned) has ended. */
  async dispose(): Promise<void> {
    for (const u of this.unsubscribe) u();
    const queue = this.prefill?.queue;
    this.stop();
    await queue?.idle();
  }
}
