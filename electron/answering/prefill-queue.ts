// The background prefill queue: passages whose block KV should be stored before a question needs
// it, served one block per engine turn (behind any waiting question: EngineQueue), in lanes by
// why they are queued:
//   question  what the last questions will likely need next (prefill-plan.ts predictedPassages):
//             the newest question's predictions first, at most `questionCap` kept
//   recent    passages of recently modified documents
//   chatted   passages of the folders the user chats with
//   library   the rest, most recently modified documents first
// A lane is served only when the lanes before it are empty; a passage queued again for a more
// urgent reason moves up. Every item leaving the queue (prefilled, found stored, removed, or
// dropped by close) is reported to the onSettled listeners, which is how progress, the measured
// prefill rate and waiting for a folder are built.
import { prefillPassages, type AnswerContext } from './passage-kv.ts';
import type { QualityMode } from './quality-modes.ts';

export const PREFILL_REASONS = ['question', 'recent', 'chatted', 'library'] as const;
export type PrefillReason = (typeof PREFILL_REASONS)[number];

export interface PrefillItem {
  passageId: number;
  /** The passage's folder (per-folder progress and ETA); null when not known. */
  folderId: number | null;
  /** The estimated stored bytes of its block (prefill-plan.ts); 0 when not estimated. */
  bytes: number;
}

export interface PrefillSettled extends PrefillItem {
  reason: PrefillReason;
  /** 'prefilled': computed now (stored or not); 'present': already stored or no longer in the library; 'removed': taken out unprefilled. */
  outcome: 'prefilled' | 'present' | 'removed' | 'failed';
  /** Whether the computed block was kept by the store (a prefetch that would displace likelier blocks is refused). */
  stored: boolean;
  /** Its engine turn: computing and storing the block (ms; 0 unless prefilled). */
  ms: number;
}

export interface PrefillQueueOptions {
  mode?: QualityMode;
  /** Most passages kept in the question lane: the oldest predictions go when newer ones arrive (default 64). */
  questionCap?: number;
}

export const DEFAULT_QUESTION_CAP = 64;

export class PrefillQueue {
  private readonly lanes: Record<PrefillReason, PrefillItem[]> = { question: [], recent: [], chatted: [], library: [] };
  private readonly laneOf = new Map<number, PrefillReason>();
  private readonly listeners = new Set<(settled: PrefillSettled) => void>();
  private paused = false;
  private running: (PrefillItem & { reason: PrefillReason }) | null = null;
  private loop: Promise<void> | undefined;
  private controller = new AbortController();
  private readonly mode: QualityMode;
  private readonly questionCap: number;
  /** Blocks computed since the queue was made. */
  computed = 0;
  errors: Error[] = [];

  constructor(
    private readonly ctx: AnswerContext,
    options: PrefillQueueOptions = {},
  ) {
    this.mode = options.mode ?? ctx.defaultQuality;
    this.questionCap = options.questionCap ?? DEFAULT_QUESTION_CAP;
  }

  /** Passages waiting (not counting the one being prefilled). */
  get pending(): number {
    return this.laneOf.size;
  }

  /** The passage being prefilled now, if any (not among `waiting()`). */
  get current(): (PrefillItem & { reason: PrefillReason }) | null {
    return this.running;
  }

  get isPaused(): boolean {
    return this.paused;
  }

  /** The passages waiting, in the order they will be served, with their lanes. */
  *waiting(): Generator<PrefillItem & { reason: PrefillReason }> {
    for (const reason of PREFILL_REASONS) for (const item of this.lanes[reason]) yield { ...item, reason };
  }

  has(passageId: number): boolean {
    return this.laneOf.has(passageId);
  }

  /**
   * Queues passages for `reason`, in the order given. The question lane takes them in front of older
   * predictions; other lanes behind what they hold. A passage already waiting in a later lane moves
   * here; one waiting in this or an earlier lane stays where it is. Returns how many were added or moved.
   */
  add(items: Iterable<PrefillItem | number>, reason: PrefillReason = 'library'): number {
    const rank = PREFILL_REASONS.indexOf(reason);
    const taken: PrefillItem[] = [];
    const inBatch = new Set<number>();
    for (const raw of items) {
      const item = typeof raw === 'number' ? { passageId: raw, folderId: null, bytes: 0 } : raw;
      if (inBatch.has(item.passageId)) continue;
      const current = this.laneOf.get(item.passageId);
      if (current !== undefined && PREFILL_REASONS.indexOf(current) < rank) continue;
      if (current === reason && reason !== 'question') continue;
      if (current !== undefined) this.takeOut(item.passageId);
      inBatch.add(item.passageId);
      taken.push(item);
      this.laneOf.set(item.passageId, reason);
    }
    const lane = this.lanes[reason];
    if (reason === 'question') {
      lane.unshift(...taken);
      for (const dropped of lane.splice(this.questionCap)) {
        this.laneOf.delete(dropped.passageId);
        this.emit({ ...dropped, reason, outcome: 'removed', stored: false, ms: 0 });
      }
    } else {
      lane.push(...taken);
    }
    this.start();
    return taken.length;
  }

  /** Takes these passages out of the queue (a folder paused or removed); returns how many were waiting. */
  remove(passageIds: Iterable<number>): number {
    let n = 0;
    for (const id of passageIds) {
      const reason = this.laneOf.get(id);
      if (reason === undefined) continue;
      const item = this.takeOut(id)!;
      this.emit({ ...item, reason, outcome: 'removed', stored: false, ms: 0 });
      n++;
    }
    return n;
  }

  /** Calls `listener` for each passage that leaves the queue; returns the unsubscribe function. */
  onSettled(listener: (settled: PrefillSettled) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  /** Stops after the block being prefilled (if any); nothing is dropped. */
  pause(): void {
    this.paused = true;
  }

  resume(): void {
    this.paused = false;
    this.start();
  }

  /** Resolves when the queue is empty or paused. */
  async idle(): Promise<void> {
    while (this.loop) await this.loop;
  }

  /** Stops at once (the block being computed is abandoned) and drops everything waiting. */
  close(): void {
    this.remove([...this.laneOf.keys()]);
    this.controller.abort();
    this.controller = new AbortController();
  }

  private takeOut(passageId: number): PrefillItem | undefined {
    const reason = this.laneOf.get(passageId);
    if (reason === undefined) return undefined;
    this.laneOf.delete(passageId);
    const lane = this.lanes[reason];
    const at = lane.findIndex((i) => i.passageId === passageId);
    return lane.splice(at, 1)[0];
  }

  private next(): (PrefillItem & { reason: PrefillReason }) | undefined {
    for (const reason of PREFILL_REASONS) {
      const item = this.lanes[reason].shift();
      if (item) {
        this.laneOf.delete(item.passageId);
        return { ...item, reason };
      }
    }
    return undefined;
  }

  private emit(settled: PrefillSettled): void {
    for (const listener of this.listeners) listener(settled);
  }

  private start(): void {
    if (this.loop || this.paused || this.laneOf.size === 0) return;
    this.loop = (async () => {
      while (!this.paused) {
        const item = this.next();
        if (!item) break;
        this.running = item;
        try {
          const r = await prefillPassages(this.ctx, [item.passageId], { signal: this.controller.signal, mode: this.mode });
          this.computed += r.computed;
          this.emit({ ...item, outcome: r.computed > 0 ? 'prefilled' : 'present', stored: r.stored > 0, ms: r.computeMs });
        } catch (e) {
          const aborted = (e as Error).name === 'AbortError';
          if (!aborted) this.errors.push(e as Error);
          this.emit({ ...item, outcome: aborted ? 'removed' : 'failed', stored: false, ms: 0 });
        } finally {
          this.running = null;
        }
      }
    })().finally(() => {
      this.loop = undefined;
    });
  }
}
