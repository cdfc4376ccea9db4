// Background prefill of one loaded model: the queue (prefill-queue.ts) and what goes into it
// (prefill-plan.ts). After each question, what it predicts goes to the front; the library's
// passages not stored yet are planned, within the budget's free room less what is queued, in the
// order recent documents, the folders the user chats with, the rest. The engine host's KV service
// owns one per loaded model (engine-host/kv-service.ts); bench/coverage.ts runs the same one.
import type { Db } from '../../db/open.ts';
import { storedKvTotals } from '../../db/kv-store.ts';
import { getPrefillCandidates } from '../../db/passages.ts';
import type { AnswerContext } from './passage-kv.ts';
import { libraryPrefillPlan, predictedPassages, prefillItemsFor, type PlanModel, type PredictionOptions } from './prefill-plan.ts';
import { PrefillQueue, type PrefillSettled } from './prefill-queue.ts';
import { kvVariant, type QualityMode } from './quality-modes.ts';

/** A question answered, as the predictions need it. */
export interface AnsweredQuestion {
  question: string;
  /** Its retrieval's depth. */
  k: number;
  folderId?: number;
  /** The passages in its context, best first. */
  passageIds: readonly number[];
}

export interface BackgroundPrefillOptions {
  mode: QualityMode;
  /**
   * Prefill what each question predicts (default true). Off, questions only mark their folders as
   * chatted: bench/coverage.ts measures what the predictions buy.
   */
  predict?: boolean;
  /** How much a question predicts (default: its k next-ranked passages, 1 neighbour either side). */
  prediction?: Pick<PredictionOptions, 'nextRanked' | 'neighbours'>;
  /** Folders the user chats with and when they last did (kept by the caller across models). */
  chattedFolders?: Map<number, number>;
  questionCap?: number;
}

/** Weight of the newest block in the measured time per block (an exponential moving average). */
const RATE_WEIGHT = 0.2;

export class BackgroundPrefill {
  readonly queue: PrefillQueue;
  readonly model: PlanModel;
  /** The measured prefill time per block (ms), null before the first. */
  msPerBlock: number | null = null;
  private readonly chattedFolders: Map<number, number>;
  /** Per folder, passages the last plan left out for lack of room, or the store refused. */
  private readonly leftOut = new Map<number, number>();

  constructor(
    private readonly db: Db,
    ctx: AnswerContext,
    private readonly options: BackgroundPrefillOptions,
  ) {
    this.queue = new PrefillQueue(ctx, { mode: options.mode, questionCap: options.questionCap });
    this.queue.onSettled((s) => this.settled(s));
    this.chattedFolders = options.chattedFolders ?? new Map();
    this.model = {
      fingerprint: ctx.fingerprint,
      variant: kvVariant(options.mode, ctx.frame.instructionIds),
      codec: ctx.store.defaultCodec,
      kvShape: ctx.engine.runner.kvShape,
    };
  }

  private settled(s: PrefillSettled): void {
    if (s.outcome !== 'prefilled') return;
    this.msPerBlock = this.msPerBlock === null ? s.ms : this.msPerBlock + RATE_WEIGHT * (s.ms - this.msPerBlock);
    if (!s.stored && s.folderId !== null) this.leftOut.set(s.folderId, (this.leftOut.get(s.folderId) ?? 0) + 1);
  }

  /** Passages of the folder the last plan left out for lack of room (or the store refused since). */
  leftOutOf(folderId: number): number {
    return this.leftOut.get(folderId) ?? 0;
  }

  /**
   * Queues the library's (or a folder's) passages not stored yet, within `budgetBytes` less what is
   * stored and what is queued already; `skipFolders` (paused) are left out.
   */
  planLibrary(budgetBytes: number, options: { folderId?: number; skipFolders?: ReadonlySet<number> } = {}): void {
    let queuedBytes = 0;
    for (const item of this.queue.waiting()) queuedBytes += item.bytes;
    const plan = libraryPrefillPlan(this.db, this.model, {
      roomBytes: budgetBytes - storedKvTotals(this.db).bytes - queuedBytes,
      folderId: options.folderId,
      chattedFolders: new Set(this.chattedFolders.keys()),
      skipFolders: options.skipFolders,
      queued: (id) => this.queue.has(id),
    });
    if (options.folderId === undefined) this.leftOut.clear();
    else this.leftOut.delete(options.folderId);
    for (const [folder, n] of plan.leftOutByFolder) this.leftOut.set(folder, n);
    for (const lane of plan.lanes) this.queue.add(lane.items, lane.reason);
  }

  /** The budget changed: the library's share of the queue is planned again for the new room. */
  replan(budgetBytes: number, skipFolders?: ReadonlySet<number>): void {
    this.queue.remove([...this.queue.waiting()].filter((i) => i.reason !== 'question').map((i) => i.passageId));
    this.planLibrary(budgetBytes, { skipFolders });
  }

  /**
   * After a question: its passages' folders become folders the user chats with (their queued
   * passages move up), and what it predicts goes to the front of the queue.
   */
  afterQuestion(q: AnsweredQuestion): void {
    markChatted(this.db, this.chattedFolders, q.passageIds);
    const chatted = [...this.queue.waiting()].filter((i) => i.reason === 'library' && i.folderId !== null && this.chattedFolders.has(i.folderId));
    this.queue.add(chatted, 'chatted');
    if (this.options.predict === false) return;
    const predicted = predictedPassages(this.db, q.question, q.passageIds, { ...this.options.prediction, k: q.k, folderId: q.folderId });
    this.queue.add(prefillItemsFor(this.db, this.model, predicted), 'question');
  }

  close(): void {
    this.queue.close();
  }
}

/** Records the folders of these passages as chatted with, now. */
export function markChatted(db: Db, chattedFolders: Map<number, number>, passageIds: readonly number[]): void {
  const now = Date.now();
  for (const c of getPrefillCandidates(db, passageIds)) chattedFolders.set(c.folderId, now);
}
