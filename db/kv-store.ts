// Stored KV blocks: get/put by (model fingerprint, token hash, variant), every read verified by
// checksum, a byte budget that stored blocks never exceed, eviction of the blocks least likely to
// be asked again (kv-eviction.ts), and hit/miss counts. The blocks live in the attached KV file
// (schema `kv`, kv-file.ts).
//
// A corrupt entry is never returned: it is deleted and reported, and the caller recomputes.
// Each put is one transaction (meta row + blob row + evictions), so another connection sees the
// whole entry or nothing, never the store over its budget, and a crash mid-put leaves nothing behind.
import type { KvCache } from '../native-models/kv.ts';
import { checksumOf, verifyChecksum } from './checksum.ts';
import { DecodedKvCache } from './decoded-kv-cache.ts';
import { decodeKv, encodeKv, KvCodecError, type KvCodec } from './kv-codec.ts';
import { lruPriority, PREFETCH_USE, priorityAfterUse, type KvEvictionPolicy } from './kv-eviction.ts';
import type { Db } from './open.ts';

/** 2 GiB: about 1300 blocks of 256 tokens of a Qwen2.5-0.5B-sized model in int8 (680 in float16). */
export const DEFAULT_KV_BUDGET_BYTES = 2 * 1024 ** 3;

/**
 * How new blocks are stored unless a store is told otherwise: int8 (kv-grouped.ts). Half of
 * float16's bytes (0.52x at Qwen2.5-0.5B's shape), so a budget holds 1.9x the blocks. Decided by
 * `npm run bench:fidelity` on the trained stories260K (docs/BENCHMARKS.md, "The default codec"):
 * int8 moves block attention's KL from full attention by +0.5% (1.118e-2 vs 1.113e-2 nats for KV
 * as computed, top-1 -0.14 points), where int4 (0.27x) adds +11.9% (1.246e-2, -0.48 points).
 */
export const DEFAULT_KV_CODEC: KvCodec = 'int8';

/**
 * What a get hands back for a cache put under `codec`: encoded, then decoded as `verify` decodes (in
 * the encoded dtype). Throws the encoder's RangeError for a cache the codec cannot represent, which
 * `put` refuses to store.
 */
export function storedKvRoundTrip(kv: KvCache, codec: KvCodec = DEFAULT_KV_CODEC): KvCache {
  return decodeKv(encodeKv(kv, codec));
}

export interface KvKey {
  /** Hash of the model's ONNX file(s) and config: a different model never reads these states. */
  modelFingerprint: string;
  /** tokenHash() of the block's token ids. */
  tokenHash: string;
  /** What the block was computed after ('' or absent: nothing, the block alone). */
  variant?: string;
}

export interface KvEntry {
  id: number;
  modelFingerprint: string;
  tokenHash: string;
  variant: string;
  codec: KvCodec;
  dtype: KvCache['dtype'];
  layers: number;
  kvHeads: number;
  headDim: number;
  tokens: number;
  /** Stored blob size (header + payload); what the budget counts. */
  bytes: number;
  checksum: string;
  createdAt: number;
  lastUsedAt: number;
  hits: number;
  /** Eviction order, lowest first (kv-eviction.ts). */
  priority: number;
}

export type KvGetResult =
  | { status: 'hit'; kv: KvCache; entry: KvEntry }
  | { status: 'miss' }
  /** The entry failed verification and has been deleted; recompute it. */
  | { status: 'corrupt'; reason: string; entry: KvEntry };

export type KvPutResult =
  | { stored: true; entry: KvEntry; evicted: number }
  /** Nothing changed: too large for the budget, not representable, or a prefetch that would displace likelier blocks. */
  | { stored: false; reason: string; evicted: 0 };

export interface KvPutOptions {
  codec?: KvCodec;
  /** Stored ahead of any question (background prefill): counts as half a use (kv-eviction.ts). */
  prefetch?: boolean;
}

export interface KvStoreStats {
  entries: number;
  bytes: number;
  budgetBytes: number;
  /** Since this KvStore was made: */
  hits: number;
  /** Gets that returned no cache, corrupt ones included. */
  misses: number;
  corrupt: number;
  evictions: number;
  /** Of the hits, those served decoded from memory (no read, no checksum, no decode). */
  memoryHits: number;
  /** hits / (hits + misses); 0 before the first get. */
  hitRate: number;
}

export interface KvStoreOptions {
  budgetBytes?: number;
  /** How new blocks are stored (default DEFAULT_KV_CODEC); blocks stored with another codec still read. */
  codec?: KvCodec;
  /**
   * 'use-score' (the default, kv-eviction.ts) or 'lru': least recently used first, every use alike,
   * prefetches too (the policy before use scores; bench/coverage.ts compares the two).
   */
  eviction?: KvEvictionPolicy;
  /**
   * Bytes of decoded blocks kept in memory between gets (decoded-kv-cache.ts): long-lived processes
   * give DEFAULT_DECODED_KV_CACHE_BYTES; 0 (the default, one-shot commands) keeps none.
   */
  decodedCacheBytes?: number;
  /** Clock (ms), for tests. */
  now?: () => number;
}

interface EntryRow {
  id: number;
  model_fingerprint: string;
  token_hash: string;
  variant: string;
  codec: KvCodec;
  dtype: KvCache['dtype'];
  layers: number;
  kv_heads: number;
  head_dim: number;
  tokens: number;
  bytes: number;
  checksum: string;
  created_at: number;
  last_used_at: number;
  hits: number;
  priority: number;
}

const toEntry = (r: EntryRow): KvEntry => ({
  id: r.id,
  modelFingerprint: r.model_fingerprint,
  tokenHash: r.token_hash,
  variant: r.variant,
  codec: r.codec,
  dtype: r.dtype,
  layers: r.layers,
  kvHeads: r.kv_heads,
  headDim: r.head_dim,
  tokens: r.tokens,
  bytes: r.bytes,
  checksum: r.checksum,
  createdAt: r.created_at,
  lastUsedAt: r.last_used_at,
  hits: r.hits,
  priority: r.priority,
});

const KEY = 'model_fingerprint = ? AND token_hash = ? AND variant = ?';
const keyArgs = (k: KvKey) => [k.modelFingerprint, k.tokenHash, k.variant ?? ''] as const;
/** The decoded-block cache's key: the model first, so deleteModel can clear by prefix. */
const memoryKey = (k: KvKey) => `${k.modelFingerprint}\0${k.tokenHash}\0${k.variant ?? ''}`;
/** Eviction order: lowest priority first; among equals, the older use, then the older row. */
const EVICTION_ORDER = 'priority, last_used_at, id';

/** Entries and bytes stored, over every model (one aggregate over kv_blocks). */
export function storedKvTotals(db: Db): { entries: number; bytes: number } {
  return db.prepare('SELECT COUNT(*) AS entries, COALESCE(SUM(bytes), 0) AS bytes FROM kv.kv_blocks').get() as { entries: number; bytes: number };
}

export class KvStore {
  private budget: number;
  private readonly codec: KvCodec;
  private readonly eviction: KvEvictionPolicy;
  private readonly now: () => number;
  private lastStamp: number;
  private counts = { hits: 0, misses: 0, corrupt: 0, evictions: 0, memoryHits: 0 };
  private readonly decoded: DecodedKvCache | undefined;

  constructor(
    private readonly db: Db,
    options: KvStoreOptions = {},
  ) {
    this.budget = checkBudget(options.budgetBytes ?? DEFAULT_KV_BUDGET_BYTES);
    this.codec = options.codec ?? DEFAULT_KV_CODEC;
    this.eviction = options.eviction ?? 'use-score';
    this.now = options.now ?? Date.now;
    const decodedCacheBytes = options.decodedCacheBytes ?? 0;
    this.decoded = decodedCacheBytes > 0 ? new DecodedKvCache(decodedCacheBytes) : undefined;
    this.lastStamp = (db.prepare('SELECT MAX(last_used_at) FROM kv.kv_blocks').pluck().get() as number | null) ?? 0;
  }

  /**
   * A use time, strictly increasing within this store: two uses in the same millisecond must
   * still be ordered, or eviction would pick between them arbitrarily.
   */
  private stamp(): number {
    this.lastStamp = Math.max(this.now(), this.lastStamp + 1);
    return this.lastStamp;
  }

  get budgetBytes(): number {
    return this.budget;
  }

  get defaultCodec(): KvCodec {
    return this.codec;
  }

  /** The entry's metadata, without reading, verifying or touching it. */
  info(key: KvKey): KvEntry | undefined {
    const r = this.db.prepare(`SELECT * FROM kv.kv_blocks WHERE ${KEY}`).get(...keyArgs(key)) as EntryRow | undefined;
    return r && toEntry(r);
  }

  /** The cache stored under `key`, verified; a hit counts as a use. */
  get(key: KvKey): KvGetResult {
    return this.getMany([key])[0];
  }

  /**
   * The caches stored under `keys`, each verified, in order. Counting the hits as uses and dropping
   * corrupt entries happens in one write transaction for all of them: one commit per question,
   * not one per block (16 separate commits cost more than reading the 48 MiB).
   */
  getMany(keys: readonly KvKey[]): KvGetResult[] {
    const select = this.db.prepare(`SELECT * FROM kv.kv_blocks WHERE ${KEY}`);
    const selectBlob = this.db.prepare('SELECT data FROM kv.kv_blobs WHERE block_id = ?').pluck();
    const results = keys.map((key): KvGetResult => {
      const row = select.get(...keyArgs(key)) as EntryRow | undefined;
      if (!row) return { status: 'miss' };
      const entry = toEntry(row);
      const memory = this.decoded;
      const inMemory = memory ? memoryKey(key) : '';
      // the row still holds the bytes the memory copy was decoded from: no read, no decode
      const remembered = memory?.get(inMemory, entry.checksum);
      if (remembered) {
        this.counts.memoryHits++;
        return { status: 'hit', kv: remembered, entry };
      }
      const verified = this.verify(entry, (selectBlob.get(entry.id) as Buffer | undefined) ?? null);
      if (typeof verified === 'string') {
        memory?.delete(inMemory);
        return { status: 'corrupt', reason: verified, entry };
      }
      memory?.set(inMemory, entry.checksum, verified);
      return { status: 'hit', kv: verified, entry };
    });
    for (const r of results) {
      if (r.status === 'hit') this.counts.hits++;
      else this.counts.misses++;
      if (r.status === 'corrupt') this.counts.corrupt++;
    }
    // Readers cannot write (the writer drops corrupt entries on its own reads); misses write nothing.
    if (this.db.readonly || results.every((r) => r.status === 'miss')) return results;
    const touch = this.db.prepare('UPDATE kv.kv_blocks SET last_used_at = ?, hits = hits + 1, priority = ? WHERE id = ?');
    this.db.transaction(() => {
      for (const r of results) {
        if (r.status === 'corrupt') this.drop(r.entry.id);
        if (r.status !== 'hit') continue;
        // The same block twice in one question: its row already counts the first use.
        const current = this.db.prepare('SELECT priority FROM kv.kv_blocks WHERE id = ?').pluck().get(r.entry.id) as number;
        r.entry.lastUsedAt = this.stamp();
        r.entry.priority = this.priorityAfterUse(current, 1, r.entry.lastUsedAt);
        r.entry.hits++;
        touch.run(r.entry.lastUsedAt, r.entry.priority, r.entry.id);
      }
    }).immediate();
    return results;
  }

  /** The decoded cache, or why it cannot be trusted. */
  private verify(e: KvEntry, data: Buffer | null): KvCache | string {
    if (!data) return 'blob missing';
    if (data.byteLength !== e.bytes) return `blob is ${data.byteLength} bytes, entry says ${e.bytes}`;
    if (!verifyChecksum(data, e.checksum)) return `checksum mismatch (expected ${e.checksum}, got ${checksumOf(data)})`;
    try {
      const kv = decodeKv(data);
      const same =
        kv.layers === e.layers && kv.kvHeads === e.kvHeads && kv.headDim === e.headDim && kv.tokens === e.tokens && kv.dtype === e.dtype;
      return same ? kv : 'blob header disagrees with the entry';
    } catch (err) {
      if (err instanceof KvCodecError) return err.message;
      throw err;
    }
  }

  private drop(id: number): void {
    this.db.transaction(() => {
      this.db.prepare('DELETE FROM kv.kv_blobs WHERE block_id = ?').run(id);
      this.db.prepare('DELETE FROM kv.kv_blocks WHERE id = ?').run(id);
    }).immediate();
  }

  /**
   * Stores a cache under `key` (replacing what was there unless it is the same bytes) and counts
   * it as a use, evicting the blocks least likely to be asked again until the budget holds.
   * Refuses, without throwing and without changing anything, a cache larger than the whole budget,
   * one the codec cannot represent (float16 overflow), and a prefetched one that would displace
   * blocks more likely to be asked than itself.
   */
  put(key: KvKey, kv: KvCache, options: KvPutOptions = {}): KvPutResult {
    const codec = options.codec ?? this.codec;
    const use = options.prefetch ? PREFETCH_USE : 1;
    let blob: Buffer;
    try {
      blob = encodeKv(kv, codec);
    } catch (err) {
      if (err instanceof RangeError) return { stored: false, reason: err.message, evicted: 0 };
      throw err;
    }
    if (blob.byteLength > this.budget) {
      return { stored: false, reason: `${blob.byteLength} bytes exceed the budget of ${this.budget}`, evicted: 0 };
    }
    const checksum = checksumOf(blob);
    return this.db.transaction((): KvPutResult => {
      const at = this.stamp();
      const old = this.db.prepare(`SELECT id, checksum, priority, hits FROM kv.kv_blocks WHERE ${KEY}`).get(...keyArgs(key)) as
        | { id: number; checksum: string; priority: number; hits: number }
        | undefined;
      // A block stored again (by another connection meanwhile, or with another codec) keeps its history.
      const priority = this.priorityAfterUse(old?.priority, use, at);
      if (old && old.checksum === checksum) {
        this.db.prepare('UPDATE kv.kv_blocks SET last_used_at = ?, priority = ? WHERE id = ?').run(at, priority, old.id);
        return { stored: true, entry: this.info(key)!, evicted: 0 };
      }
      // A question's block always goes in (it was just asked: the likeliest to be asked again, and
      // refusing it would keep a new topic out until old scores decayed). A prefetched one only
      // displaces blocks that rank below it.
      const adding = blob.byteLength - (old ? this.bytesOf(old.id) : 0);
      const victims = this.victims(adding, old?.id, options.prefetch && this.eviction === 'use-score' ? { priority, at } : undefined);
      if (!victims) {
        return { stored: false, reason: 'the budget is full of blocks more likely to be asked again', evicted: 0 };
      }
      if (old) this.drop(old.id);
      for (const id of victims) this.drop(id);
      this.counts.evictions += victims.length;
      const row = this.db
        .prepare(
          `INSERT INTO kv.kv_blocks(model_fingerprint, token_hash, variant, codec, dtype, layers, kv_heads, head_dim,
             tokens, bytes, checksum, created_at, last_used_at, hits, priority)
           VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING *`,
        )
        .get(
          ...keyArgs(key),
          codec,
          kv.dtype,
          kv.layers,
          kv.kvHeads,
          kv.headDim,
          kv.tokens,
          blob.byteLength,
          checksum,
          at,
          at,
          old?.hits ?? 0,
          priority,
        ) as EntryRow;
      this.db.prepare('INSERT INTO kv.kv_blobs(block_id, data) VALUES (?, ?)').run(row.id, blob);
      return { stored: true, entry: toEntry(row), evicted: victims.length };
    }).immediate();
  }

  private priorityAfterUse(previous: number | undefined, use: number, at: number): number {
    return this.eviction === 'lru' ? lruPriority(at) : priorityAfterUse(previous, use, at);
  }

  private bytesOf(id: number): number {
    return this.db.prepare('SELECT bytes FROM kv.kv_blocks WHERE id = ?').pluck().get(id) as number;
  }

  private storedBytes(): number {
    return this.db.prepare('SELECT COALESCE(SUM(bytes), 0) FROM kv.kv_blocks').pluck().get() as number;
  }

  /**
   * The shortest run of blocks, in eviction order and other than `replacing`, whose removal makes
   * room for `adding` more bytes within the budget. With `before`, only blocks that come before a
   * new block of that priority and use time: undefined if those are not enough.
   */
  private victims(adding: number, replacing = 0, before?: { priority: number; at: number }): number[] | undefined {
    const excess = this.storedBytes() + adding - this.budget;
    if (excess <= 0) return [];
    const rows = this.db
      .prepare(
        `SELECT id, running FROM (
           SELECT id, bytes, SUM(bytes) OVER (ORDER BY ${EVICTION_ORDER}) AS running FROM kv.kv_blocks
           WHERE id != @replacing ${before ? 'AND (priority, last_used_at) < (@priority, @at)' : ''}
         ) WHERE running - bytes < @excess`,
      )
      .all({ excess, replacing, ...before }) as { id: number; running: number }[];
    if (rows.length === 0 || rows[rows.length - 1].running < excess) return undefined;
    return rows.map((r) => r.id);
  }

  /**
   * Changes the budget and, if it shrank, evicts at once (blocks least likely to be asked again
   * first) and gives the freed pages back to the disk. Returns how many blocks went.
   */
  setBudget(bytes: number): number {
    this.budget = checkBudget(bytes);
    const evicted = this.db.transaction(() => {
      const victims = this.victims(0)!; // all blocks together always cover the excess
      for (const id of victims) this.drop(id);
      return victims.length;
    }).immediate();
    this.counts.evictions += evicted;
    if (evicted > 0) this.db.pragma('kv.incremental_vacuum');
    return evicted;
  }

  delete(key: KvKey): boolean {
    const e = this.info(key);
    if (e) this.drop(e.id);
    return e !== undefined;
  }

  /** Deletes every entry of a model (e.g. one the user removed); returns how many. */
  deleteModel(modelFingerprint: string): number {
    this.decoded?.clear(`${modelFingerprint}\0`);
    return this.db.transaction(() => {
      const ids = this.db.prepare('SELECT id FROM kv.kv_blocks WHERE model_fingerprint = ?').pluck().all(modelFingerprint) as number[];
      for (const id of ids) this.drop(id);
      return ids.length;
    }).immediate();
  }

  stats(): KvStoreStats {
    const { entries, bytes } = storedKvTotals(this.db);
    const { hits, misses } = this.counts;
    return { entries, bytes, budgetBytes: this.budget, ...this.counts, hitRate: hits + misses > 0 ? hits / (hits + misses) : 0 };
  }
}

function checkBudget(bytes: number): number {
  if (!Number.isFinite(bytes) || bytes < 0) throw new RangeError(`KV budget must be a non-negative number of bytes, got ${bytes}`);
  return Math.floor(bytes);
}
