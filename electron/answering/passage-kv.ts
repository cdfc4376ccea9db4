// Passage blocks' KV: loaded from the KvStore when stored (one getMany, one transaction, for all the
// blocks of a question), computed and stored when missing or corrupt. Also the background prefill
// the indexer calls after indexing (prefillPassages / PrefillQueue), which yields to questions.
import type { Db } from '../../db/open.ts';
import { tokenHash } from '../../db/hash.ts';
import { KvStore, type KvKey } from '../../db/kv-store.ts';
import { getTitledPassages, setPassageTokenCount, type TitledPassage } from '../../db/passages.ts';
import type { Engine } from '../../native-models/engine.ts';
import type { KvCache } from '../../native-models/kv.ts';
import { modelFingerprint } from '../../native-models/model-folder.ts';
import { prefillBlock } from '../../native-models/prefill.ts';
import { EngineQueue } from './engine-queue.ts';
import { answerInstructionFor, passageBlockText, promptFrame, type AnswerInstructionPlacement, type PromptFrame } from './prompt-blocks.ts';
import { computePassageBlock, defaultQualityMode, kvVariant, type QualityMode } from './quality-modes.ts';

/** Everything a question needs, made once per loaded engine (a worker keeps one). */
export interface AnswerContext {
  db: Db;
  engine: Engine;
  store: KvStore;
  /** The model's fingerprint, hashed once per engine load. */
  fingerprint: string;
  frame: PromptFrame;
  /** The instruction block's KV at positions 0..P-1 (computed once per engine). */
  instructionKv: KvCache;
  defaultQuality: QualityMode;
  queue: EngineQueue;
  /** Token ids per passage, keyed by passage id + text (passages change when re-indexed). */
  tokenCache: Map<number, { text: string; ids: number[] }>;
}

export interface AnswerContextOptions {
  /** Defaults to a KvStore over `db` with its default budget and codec. */
  store?: KvStore;
  /** Skips hashing the model files (tests, or a caller that already has it). */
  fingerprint?: string;
  quality?: QualityMode;
  /** Where the answer instruction sits (default: answerInstructionFor the quality mode; benchmarks measure the other). */
  answerInstruction?: AnswerInstructionPlacement;
  /** The prompts' system turn (blank or absent: prompt-blocks.ts SYSTEM_INSTRUCTION). */
  systemPrompt?: string;
}

export async function createAnswerContext(db: Db, engine: Engine, options: AnswerContextOptions = {}): Promise<AnswerContext> {
  const quality = options.quality ?? defaultQualityMode(engine);
  const frame = promptFrame(engine, options.answerInstruction ?? answerInstructionFor(quality), options.systemPrompt);
  return {
    db,
    engine,
    store: options.store ?? new KvStore(db),
    fingerprint: options.fingerprint ?? (await modelFingerprint(engine.model)),
    frame,
    instructionKv: await prefillBlock(engine.runner, frame.instructionIds),
    defaultQuality: quality,
    queue: new EngineQueue(),
    tokenCache: new Map(),
  };
}

/**
 * The same loaded model with another system prompt: a new instruction block, its KV computed here
 * once (on the engine queue, between questions), sharing the engine, store, queue and token cache.
 * A question or prefill already holding the old context keeps its own consistent pair (frame and
 * instruction KV); shared-prefix passage KV is stored under the new instruction's variant. The answer
 * instruction stays where the context has it.
 */
export async function withSystemPrompt(ctx: AnswerContext, systemPrompt: string): Promise<AnswerContext> {
  const frame = promptFrame(ctx.engine, ctx.frame.answerInstruction, systemPrompt);
  if (frame.system === ctx.frame.system) return ctx;
  const instructionKv = await ctx.queue.run(() => prefillBlock(ctx.engine.runner, frame.instructionIds));
  return { ...ctx, frame, instructionKv };
}

/** What a passage block is made of (db/passages.ts TitledPassage; a RetrievedPassage fits too). */
export type PassageForBlock = TitledPassage;

const TOKEN_CACHE_LIMIT = 4096;

/** A passage block's token ids (memoised per passage text). */
export function passageIds(ctx: AnswerContext, p: PassageForBlock): number[] {
  const known = ctx.tokenCache.get(p.passageId);
  const text = passageBlockText(p);
  if (known && known.text === text) return known.ids;
  const ids = ctx.engine.tokenizer.encode(text);
  if (ctx.tokenCache.size >= TOKEN_CACHE_LIMIT) ctx.tokenCache.delete(ctx.tokenCache.keys().next().value!);
  ctx.tokenCache.set(p.passageId, { text, ids });
  return ids;
}

export function kvKey(ctx: AnswerContext, mode: QualityMode, ids: readonly number[]): KvKey {
  return { modelFingerprint: ctx.fingerprint, tokenHash: tokenHash(ids), variant: kvVariant(mode, ctx.frame.instructionIds) };
}

export interface PassageBlocks {
  /** In the passages' order; `reused`: loaded from the store (false: computed now). */
  blocks: { kv: KvCache; ids: number[]; reused: boolean }[];
  reused: number;
  computed: number;
  /** Entries that failed verification (dropped by the store and recomputed). */
  corrupt: number;
  /** KvStore read + decode. */
  loadMs: number;
  /** Prefill of the missing blocks (and storing them). */
  computeMs: number;
}

/** The KV of each passage's block, in order: stored ones loaded, missing or corrupt ones computed and stored. */
export async function passageBlocks(
  ctx: AnswerContext,
  passages: readonly PassageForBlock[],
  mode: QualityMode,
  signal?: AbortSignal,
): Promise<PassageBlocks> {
  const t0 = performance.now();
  const ids = passages.map((p) => passageIds(ctx, p));
  const keys = ids.map((x) => kvKey(ctx, mode, x));
  const got = ctx.store.getMany(keys);
  const t1 = performance.now();
  const blocks: PassageBlocks['blocks'] = [];
  let reused = 0;
  let corrupt = 0;
  for (let i = 0; i < passages.length; i++) {
    const r = got[i];
    if (r.status === 'hit') {
      reused++;
      blocks.push({ kv: r.kv, ids: ids[i], reused: true });
      continue;
    }
    if (r.status === 'corrupt') corrupt++;
    signal?.throwIfAborted();
    const kv = await computePassageBlock(ctx.engine, mode, ctx.instructionKv, ids[i]);
    ctx.store.put(keys[i], kv);
    blocks.push({ kv, ids: ids[i], reused: false });
  }
  return { blocks, reused, computed: passages.length - reused, corrupt, loadMs: t1 - t0, computeMs: performance.now() - t1 };
}

export interface PrefillResult {
  computed: number;
  /** Already stored (or gone from the database). */
  skipped: number;
}

/**
 * Background prefill for the indexer: computes and stores the KV of passages not stored yet, one
 * block per engine turn, so a question waits for one block at most. Stops (rejects) on `signal`.
 */
export async function prefillPassages(
  ctx: AnswerContext,
  passageIdList: readonly number[],
  options: { signal?: AbortSignal; mode?: QualityMode; onProgress?: (done: number, total: number) => void } = {},
): Promise<PrefillResult> {
  const mode = options.mode ?? ctx.defaultQuality;
  const passages = getTitledPassages(ctx.db, passageIdList);
  let computed = 0;
  let done = 0;
  for (const p of passages) {
    options.signal?.throwIfAborted();
    const ids = passageIds(ctx, p);
    const key = kvKey(ctx, mode, ids);
    if (!ctx.store.info(key)) {
      await ctx.queue.run(
        async () => {
          const kv = await computePassageBlock(ctx.engine, mode, ctx.instructionKv, ids);
          ctx.store.put(key, kv);
          setPassageTokenCount(ctx.db, p.passageId, ids.length);
        },
        { priority: 'background', signal: options.signal },
      );
      computed++;
    }
    options.onProgress?.(++done, passages.length);
  }
  return { computed, skipped: passageIdList.length - computed };
}

/**
 * A pausable background prefill queue: add passage ids as the indexer produces them; blocks are
 * computed one at a time behind any waiting question (EngineQueue priorities). pause() stops
 * after the current block; resume() continues; idle() resolves when nothing is left; close() drops all.
 */
export class PrefillQueue {
  private readonly ids: number[] = [];
  private readonly seen = new Set<number>();
  private paused = false;
  private loop: Promise<void> | undefined;
  private controller = new AbortController();
  computed = 0;
  errors: Error[] = [];

  constructor(
    private readonly ctx: AnswerContext,
    private readonly mode: QualityMode = ctx.defaultQuality,
  ) {}

  get pending(): number {
    return this.ids.length;
  }

  add(passageIdList: Iterable<number>): void {
    for (const id of passageIdList) {
      if (this.seen.has(id)) continue;
      this.seen.add(id);
      this.ids.push(id);
    }
    this.start();
  }

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

  /** Stops at once (the block being computed is abandoned) and forgets the queue. */
  close(): void {
    this.ids.length = 0;
    this.controller.abort();
    this.controller = new AbortController();
  }

  private start(): void {
    if (this.loop || this.paused || this.ids.length === 0) return;
    this.loop = (async () => {
      while (!this.paused && this.ids.length > 0) {
        const id = this.ids.shift()!;
        try {
          const r = await prefillPassages(this.ctx, [id], { signal: this.controller.signal, mode: this.mode });
          this.computed += r.computed;
        } catch (e) {
          if ((e as Error).name !== 'AbortError') this.errors.push(e as Error);
        } finally {
          this.seen.delete(id);
        }
      }
    })().finally(() => {
      this.loop = undefined;
    });
  }
}
