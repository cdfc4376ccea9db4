// Passage blocks' KV: loaded from the KvStore when stored (one getMany, one transaction, for all the
// blocks of a question), computed and stored when missing or corrupt. Also the background prefill of
// passages ahead of questions (prefillPassages; prefill-queue.ts orders it), which yields to
// questions. Every passage tokenized here has its block key recorded (db/passage-keys.ts) before
// its block can be stored: what exact coverage counts rely on.
import type { Db } from '../../db/open.ts';
import { textHash, tokenHash } from '../../db/hash.ts';
import { KvStore, type KvKey } from '../../db/kv-store.ts';
import { carryPassageKeys, recordPassageKeys, type PassageKey } from '../../db/passage-keys.ts';
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
  /**
   * Token ids per passage, keyed by passage id + text (passages change when re-indexed); `keyed`:
   * its block key is recorded in the KV file for this model.
   */
  tokenCache: Map<number, { text: string; ids: number[]; keyed: boolean }>;
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
  return tokenized(ctx, p).ids;
}

function tokenized(ctx: AnswerContext, p: PassageForBlock): { text: string; ids: number[]; keyed: boolean } {
  const known = ctx.tokenCache.get(p.passageId);
  const text = passageBlockText(p);
  if (known && known.text === text) return known;
  const entry = { text, ids: ctx.engine.tokenizer.encode(text), keyed: false };
  if (ctx.tokenCache.size >= TOKEN_CACHE_LIMIT) ctx.tokenCache.delete(ctx.tokenCache.keys().next().value!);
  ctx.tokenCache.set(p.passageId, entry);
  return entry;
}

/**
 * After indexing: passages whose block text had a key recorded (re-indexed, or duplicates) get it
 * again, and keys of removed passages go (db/passage-keys.ts), so coverage stays exact.
 */
export function carryBlockKeys(db: Db): { carried: number; pruned: number } {
  return carryPassageKeys(db, passageBlockText, textHash);
}

/**
 * The passages' block token ids, in order, with their keys recorded for this model (one transaction
 * for those not recorded yet by this context) before any of their blocks is stored.
 */
export function keyedPassageIds(ctx: AnswerContext, passages: readonly PassageForBlock[]): number[][] {
  const entries = passages.map((p) => tokenized(ctx, p));
  const fresh: PassageKey[] = [];
  entries.forEach((e, i) => {
    if (!e.keyed) fresh.push({ passageId: passages[i].passageId, tokenHash: tokenHash(e.ids), tokens: e.ids.length, textHash: textHash(e.text) });
  });
  recordPassageKeys(ctx.db, ctx.fingerprint, fresh);
  for (const e of entries) e.keyed = true;
  return entries.map((e) => e.ids);
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
  const ids = keyedPassageIds(ctx, passages);
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
  /** Of the computed blocks, those the store kept (a prefetch that would displace likelier blocks is refused). */
  stored: number;
  /** Already stored (or gone from the database). */
  skipped: number;
  /** Time in the engine turns that computed and stored blocks (not waiting behind questions). */
  computeMs: number;
}

/**
 * Background prefill: computes and stores the KV of passages not stored yet, one block per engine
 * turn, so a question waits for one block at most. Each block is stored as a prefetch (half a use,
 * and only in place of blocks less likely to be asked: db/kv-eviction.ts). Stops (rejects) on `signal`.
 */
export async function prefillPassages(
  ctx: AnswerContext,
  passageIdList: readonly number[],
  options: { signal?: AbortSignal; mode?: QualityMode; onProgress?: (done: number, total: number) => void } = {},
): Promise<PrefillResult> {
  const mode = options.mode ?? ctx.defaultQuality;
  const passages = getTitledPassages(ctx.db, passageIdList);
  let computed = 0;
  let stored = 0;
  let computeMs = 0;
  let done = 0;
  for (const p of passages) {
    options.signal?.throwIfAborted();
    const [ids] = keyedPassageIds(ctx, [p]);
    const key = kvKey(ctx, mode, ids);
    if (!ctx.store.info(key)) {
      await ctx.queue.run(
        async () => {
          const t0 = performance.now();
          const kv = await computePassageBlock(ctx.engine, mode, ctx.instructionKv, ids);
          if (ctx.store.put(key, kv, { prefetch: true }).stored) stored++;
          setPassageTokenCount(ctx.db, p.passageId, ids.length);
          computeMs += performance.now() - t0;
        },
        { priority: 'background', signal: options.signal },
      );
      computed++;
    }
    options.onProgress?.(++done, passages.length);
  }
  return { computed, stored, skipped: passageIdList.length - computed, computeMs };
}
