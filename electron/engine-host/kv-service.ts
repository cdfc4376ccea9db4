// Stored passage KV as a service: its budget (kept at once when the setting changes), its totals and
// per-folder coverage for kv.stats, and the background prefill of the loaded model: one queue
// (answering/prefill-queue.ts) that takes, in this order, what the last question predicts (its next-
// ranked passages and the neighbours of the ones it used), recently modified documents, the folders
// the user chats with, and the rest of the library, within the budget's free room
// (answering/prefill-plan.ts). It starts when a model is loaded (chosen), plans again when a folder
// has been indexed or the budget grows, and yields to questions block by block.
import type { Db } from '../../db/open.ts';
import { storedKvTotals, type KvStore } from '../../db/kv-store.ts';
import { kvBlobBytes } from '../../db/kv-codec.ts';
import { folderBlockCoverage } from '../../db/passage-keys.ts';
import { getPrefillCandidates } from '../../db/passages.ts';
import { coverageLimit } from '../answering/kv-coverage.ts';
import { carryBlockKeys, type AnswerContext } from '../answering/passage-kv.ts';
import {
  libraryPrefillPlan,
  predictedPassages,
  prefillItemsFor,
  TITLE_TOKENS,
  UNKNOWN_PASSAGE_TOKENS,
  type PlanModel,
} from '../answering/prefill-plan.ts';
import { PrefillQueue, type PrefillSettled } from '../answering/prefill-queue.ts';
import { kvVariant } from '../answering/quality-modes.ts';
import type { FolderKvCoverageView, KvStatsView, Progress, Settings } from '../contract/types.ts';
import type { ModelService } from './model-service.ts';
import type { RequestHandlers } from './request-handlers.ts';
import type { SettingsStore } from './settings-store.ts';

export type KvRequest = 'kv.stats';

/** A question answered, as the prefill predictions need it. */
export interface AnsweredQuestion {
  question: string;
  /** Its retrieval's depth. */
  k: number;
  folderId?: number;
  /** The passages in its context, best first. */
  passageIds: readonly number[];
}

export interface FolderPrefillHooks {
  signal: AbortSignal;
  /** Called once with what will be prefilled (total 0: nothing, or no model to do it with). */
  planned(progress: Progress, running: boolean): void;
  onProgress(progress: Progress): void;
}

/** Weight of the newest block in the measured time per block (an exponential moving average). */
const RATE_WEIGHT = 0.2;

interface Prefill {
  queue: PrefillQueue;
  model: PlanModel;
}

export class KvService {
  /** The loaded model's answer context (null: none loaded). */
  private ctx: AnswerContext | null = null;
  private prefill: Prefill | null = null;
  private msPerBlock: number | null = null;
  /** Folders whose passages answered questions, with the time of the last one. */
  private readonly chattedFolders = new Map<number, number>();
  /** Folders whose indexing was paused: not prefilled until they run again. */
  private readonly pausedFolders = new Set<number>();
  /** Per folder, passages the last plan left out for lack of room. */
  private readonly leftOut = new Map<number, number>();
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
      this.replan();
    }
    if (next.eagerPrefill !== previous.eagerPrefill || next.quality !== previous.quality) this.start();
  }

  /** A model was loaded (or prefill's settings changed): a queue for it, and the library planned. */
  private start(): void {
    this.stop();
    const ctx = this.ctx;
    if (!ctx) return;
    const { quality } = this.settings.get();
    const mode = quality === 'auto' ? ctx.defaultQuality : quality;
    const queue = new PrefillQueue(ctx, { mode });
    queue.onSettled((s) => this.settled(s));
    this.prefill = {
      queue,
      model: { fingerprint: ctx.fingerprint, variant: kvVariant(mode, ctx.frame.instructionIds), codec: this.store.defaultCodec, kvShape: ctx.engine.runner.kvShape },
    };
    this.planLibrary();
  }

  private stop(): void {
    this.prefill?.queue.close();
    this.prefill = null;
    this.leftOut.clear();
  }

  private settled(s: PrefillSettled): void {
    if (s.outcome !== 'prefilled') return;
    this.msPerBlock = this.msPerBlock === null ? s.ms : this.msPerBlock + RATE_WEIGHT * (s.ms - this.msPerBlock);
    if (!s.stored && s.folderId !== null) this.leftOut.set(s.folderId, (this.leftOut.get(s.folderId) ?? 0) + 1);
  }

  /**
   * Queues the library's (or a folder's) passages not stored yet, within the budget's free room less
   * what is queued already. Nothing when prefill is off or no model is loaded.
   */
  private planLibrary(folderId?: number): void {
    const p = this.prefill;
    if (!p || !this.settings.get().eagerPrefill) return;
    let queuedBytes = 0;
    for (const item of p.queue.waiting()) queuedBytes += item.bytes;
    const plan = libraryPrefillPlan(this.db, p.model, {
      roomBytes: this.store.budgetBytes - storedKvTotals(this.db).bytes - queuedBytes,
      folderId,
      chattedFolders: new Set(this.chattedFolders.keys()),
      skipFolders: this.pausedFolders,
      queued: (id) => p.queue.has(id),
    });
    if (folderId === undefined) this.leftOut.clear();
    else this.leftOut.delete(folderId);
    for (const [folder, n] of plan.leftOutByFolder) this.leftOut.set(folder, n);
    for (const lane of plan.lanes) p.queue.add(lane.items, lane.reason);
  }

  /** The budget changed: the library's share of the queue is planned again for the new room. */
  private replan(): void {
    const p = this.prefill;
    if (!p) return;
    p.queue.remove([...p.queue.waiting()].filter((i) => i.reason !== 'question').map((i) => i.passageId));
    this.planLibrary();
  }

  /**
   * After a question: its predicted passages go to the front of the queue, and its passages'
   * folders become folders the user chats with (their queued passages move up).
   */
  afterQuestion(q: AnsweredQuestion): void {
    const now = Date.now();
    const fresh: number[] = [];
    for (const c of getPrefillCandidates(this.db, q.passageIds)) {
      if (!this.chattedFolders.has(c.folderId)) fresh.push(c.folderId);
      this.chattedFolders.set(c.folderId, now);
    }
    const p = this.prefill;
    if (!p || !this.settings.get().eagerPrefill) return;
    if (fresh.length > 0) {
      const moving = [...p.queue.waiting()].filter((i) => i.reason === 'library' && fresh.includes(i.folderId ?? -1));
      p.queue.add(moving, 'chatted');
    }
    const predicted = predictedPassages(this.db, q.question, q.passageIds, { k: q.k, folderId: q.folderId });
    p.queue.add(prefillItemsFor(this.db, p.model, predicted), 'question');
  }

  /**
   * After indexing a folder: its passages not stored yet are queued (within the budget's free room)
   * and this waits until they have left the queue, reporting progress. `signal` (the folder paused)
   * takes them out and stops at once; the folder is then left out of background prefill until it
   * runs again.
   */
  async prefillFolder(folderId: number, hooks: FolderPrefillHooks): Promise<void> {
    this.pausedFolders.delete(folderId);
    carryBlockKeys(this.db); // re-indexed passages keep their keys; removed ones' go
    const ctx = this.settings.get().eagerPrefill ? await this.models.ready() : null;
    const p = ctx && this.prefill;
    if (!ctx || !p || hooks.signal.aborted) {
      hooks.planned({ done: 0, total: 0 }, false);
      return;
    }
    this.planLibrary(folderId);
    const ids = new Set([...p.queue.waiting()].filter((i) => i.folderId === folderId).map((i) => i.passageId));
    const total = ids.size;
    hooks.planned({ done: 0, total }, total > 0);
    if (total === 0) return;
    await new Promise<void>((resolve) => {
      let done = 0;
      const finish = () => {
        off();
        hooks.signal.removeEventListener('abort', onAbort);
        resolve();
      };
      const off = p.queue.onSettled((s) => {
        if (!ids.delete(s.passageId)) return;
        hooks.onProgress({ done: ++done, total });
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

  private stats(folderId?: number): KvStatsView {
    const totals = storedKvTotals(this.db);
    const p = this.prefill;
    const { eagerPrefill } = this.settings.get();
    const queuedByFolder = new Map<number, number>();
    const current = p?.queue.current;
    for (const item of [...(p?.queue.waiting() ?? []), ...(current ? [current] : [])]) {
      if (item.folderId !== null) queuedByFolder.set(item.folderId, (queuedByFolder.get(item.folderId) ?? 0) + 1);
    }
    const room = this.store.budgetBytes - totals.bytes;
    const typicalBlock = p ? kvBlobBytes(p.model.codec, { ...p.model.kvShape, tokens: UNKNOWN_PASSAGE_TOKENS + TITLE_TOKENS }) : 0;
    const folders = folderBlockCoverage(this.db, p?.model ?? null, folderId).map((c): FolderKvCoverageView => {
      const queued = queuedByFolder.get(c.folderId) ?? 0;
      const limitedBy = coverageLimit(c, {
        model: p !== null,
        prefillOn: eagerPrefill,
        paused: this.pausedFolders.has(c.folderId),
        queued,
        budgetFull: room < typicalBlock || (this.leftOut.get(c.folderId) ?? 0) > 0,
      });
      const etaMs = limitedBy === 'prefilling' && this.msPerBlock !== null ? queued * this.msPerBlock : null;
      return { ...c, limitedBy, etaMs };
    });
    return {
      ...totals,
      budgetBytes: this.store.budgetBytes,
      codec: this.store.defaultCodec,
      folders,
      prefill: { queued: p?.queue.pending ?? 0, msPerBlock: this.msPerBlock },
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
