import { createHash } from 'node:crypto';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { KvCache } from '../native-models/kv.ts';
import { DEFAULT_KV_CODEC, KvStore, type KvKey } from '../db/kv-store.ts';
import { encodeKv, KV_HEADER_BYTES } from '../db/kv-codec.ts';
import { tokenHash } from '../db/hash.ts';
import { openDatabase } from '../db/open.ts';
import { randomKv, rng } from './fixtures/db-random-kv.ts';
import { tempDb, type TempDb } from './fixtures/db-temp.ts';

// The store's mechanics are tested with float16 storage: bit-exact, and one blob size for every test
// cache (these random halves span float16's whole range, which int8 groups need not hold).
const F16 = { codec: 'float16' as const };
const shape = { dtype: 'float16' as const, layers: 2, kvHeads: 2, headDim: 8, tokens: 16 };
const BLOB = encodeKv(randomKv(shape, 0)).byteLength; // every test cache has this size
const key = (i: number, model = 'model-a', variant?: string): KvKey => ({
  modelFingerprint: model,
  tokenHash: tokenHash([i, i + 1, i + 2]),
  variant,
});
const same = (a: KvCache, b: KvCache) =>
  [...a.keys, ...a.values].every((t, i) => {
    const u = i < a.layers ? b.keys[i] : b.values[i - a.layers];
    return t.length === u.length && t.every((x, j) => Object.is(x, u[j]));
  });

let t: TempDb;
beforeEach(() => {
  t = tempDb();
});
afterEach(() => t.cleanup());

describe('tokenHash', () => {
  it('is SHA-256 of the ids as int32 little-endian bytes', () => {
    expect(tokenHash([1, -1])).toBe(createHash('sha256').update(Buffer.from([1, 0, 0, 0, 0xff, 0xff, 0xff, 0xff])).digest('hex'));
    expect(tokenHash(new Int32Array([5, 6, 7]))).toBe(tokenHash([5, 6, 7]));
    expect(tokenHash([5, 6, 7])).not.toBe(tokenHash([5, 6, 8]));
    expect(() => tokenHash([1.5])).toThrow(RangeError);
  });
});

describe('KvStore get/put', () => {
  it('returns what was put, bit-exact, and misses on unknown keys, other models and other variants', () => {
    const store = new KvStore(t.db, F16);
    const kv = randomKv(shape, 1);
    const put = store.put(key(1), kv);
    expect(put.stored).toBe(true);
    const got = store.get(key(1));
    expect(got.status).toBe('hit');
    if (got.status !== 'hit') return;
    expect(same(got.kv, kv)).toBe(true);
    expect(Array.from(got.kv.values[1])).toEqual(Array.from(kv.values[1]));
    expect(got.entry).toMatchObject({ codec: 'float16', tokens: 16, layers: 2, kvHeads: 2, headDim: 8, bytes: BLOB, hits: 1 });
    expect(store.get(key(2)).status).toBe('miss');
    expect(store.get(key(1, 'model-b')).status).toBe('miss'); // a different model never reuses it
    expect(store.get(key(1, 'model-a', 'after:instr-hash')).status).toBe('miss');
  });

  it('keeps one entry for the same tokens (content-addressed), separate per variant', () => {
    const store = new KvStore(t.db, F16);
    const kv = randomKv(shape, 2);
    // The same passage text in two files tokenizes to the same ids, hence the same key.
    store.put({ modelFingerprint: 'm', tokenHash: tokenHash([5, 6, 7]) }, kv);
    store.put({ modelFingerprint: 'm', tokenHash: tokenHash([5, 6, 7]) }, kv);
    expect(store.stats().entries).toBe(1);
    store.put({ modelFingerprint: 'm', tokenHash: tokenHash([5, 6, 7]), variant: 'prefix-1' }, randomKv(shape, 3));
    expect(store.stats().entries).toBe(2);
    expect(tokenHash([5, 6, 7])).not.toBe(tokenHash([5, 6, 8]));
  });

  it('stores new blocks with the default codec (int8) unless told otherwise, and reads every codec', () => {
    expect(DEFAULT_KV_CODEC).toBe('int8');
    const store = new KvStore(t.db);
    expect(store.defaultCodec).toBe('int8');
    const kv = randomKv({ ...shape, dtype: 'float32' }, 9);
    const r = store.put(key(1), kv);
    expect(r.stored && r.entry.codec).toBe('int8');
    expect(r.stored && r.entry.bytes).toBe(encodeKv(kv, 'int8').byteLength);
    store.put(key(2), kv, { codec: 'float16' });
    expect(new KvStore(t.db).get(key(2))).toMatchObject({ status: 'hit', entry: { codec: 'float16' } });
  });

  it('replaces an entry when the same key is put with different bytes (e.g. another codec)', () => {
    const store = new KvStore(t.db, F16);
    store.put(key(1), randomKv({ ...shape, dtype: 'float32' }, 4));
    const r = store.put(key(1), randomKv({ ...shape, dtype: 'float32' }, 4), { codec: 'int8' });
    expect(r.stored && r.entry.codec).toBe('int8');
    expect(store.stats().entries).toBe(1);
    const got = store.get(key(1));
    expect(got.status === 'hit' && got.kv.dtype).toBe('float32');
  });

  it('refuses, without throwing, a cache larger than the budget or one float16 cannot hold', () => {
    const store = new KvStore(t.db, { ...F16, budgetBytes: BLOB - 1 });
    expect(store.put(key(1), randomKv(shape, 5))).toMatchObject({ stored: false });
    const big = randomKv({ ...shape, dtype: 'float32' }, 6);
    (big.keys[0] as Float32Array)[0] = 1e6;
    const store2 = new KvStore(t.db, F16);
    expect(store2.put(key(2), big)).toMatchObject({ stored: false, reason: expect.stringContaining('overflows float16') });
    expect(store2.stats().entries).toBe(0);
  });
});

describe('KvStore corruption', () => {
  /** Flips one bit of the stored blob at `offset`, behind the store's back. */
  const flip = (offset: number) =>
    t.db.prepare('UPDATE kv_blobs SET data = ? WHERE block_id = (SELECT MIN(block_id) FROM kv_blobs)').run(
      (() => {
        const b = Buffer.from(t.db.prepare('SELECT data FROM kv_blobs').pluck().get() as Buffer);
        b[offset] ^= 0x10;
        return b;
      })(),
    );

  it.each([
    ['a payload byte', BLOB - 7],
    ['a header byte', 20],
    ['the first payload byte', KV_HEADER_BYTES],
  ])('detects a flipped bit in %s, drops the entry and reports it', (_, offset) => {
    const store = new KvStore(t.db, F16);
    store.put(key(1), randomKv(shape, 7));
    flip(offset);
    const got = store.get(key(1));
    expect(got).toMatchObject({ status: 'corrupt', reason: expect.stringMatching(/checksum mismatch/) });
    expect(store.stats()).toMatchObject({ entries: 0, corrupt: 1, misses: 1, hits: 0 });
    expect(t.db.prepare('SELECT COUNT(*) FROM kv_blobs').pluck().get()).toBe(0);
    expect(store.get(key(1)).status).toBe('miss'); // the caller recomputes and puts again
  });

  it('detects a truncated blob and a metadata row without its blob', () => {
    const store = new KvStore(t.db, F16);
    store.put(key(1), randomKv(shape, 8));
    store.put(key(2), randomKv(shape, 9));
    t.db.prepare('UPDATE kv_blobs SET data = substr(data, 1, 100) WHERE block_id = (SELECT id FROM kv_blocks WHERE token_hash = ?)').run(key(1).tokenHash);
    t.db.prepare('DELETE FROM kv_blobs WHERE block_id = (SELECT id FROM kv_blocks WHERE token_hash = ?)').run(key(2).tokenHash);
    expect(store.get(key(1))).toMatchObject({ status: 'corrupt', reason: expect.stringMatching(/bytes/) });
    expect(store.get(key(2))).toMatchObject({ status: 'corrupt', reason: 'blob missing' });
    expect(store.stats().entries).toBe(0);
  });

  it.each(['int8', 'int4'] as const)('%s: detects a flipped bit in the codes or the group parameters, never decodes it', (codec) => {
    const store = new KvStore(t.db, { codec });
    const kv = randomKv({ ...shape, dtype: 'float32' }, 12);
    store.put(key(1), kv);
    store.put(key(2), kv);
    const bytes = store.info(key(1))!.bytes;
    flip(bytes - 3); // a code of the last value tensor
    t.db.prepare('UPDATE kv_blobs SET data = ? WHERE block_id = (SELECT MAX(block_id) FROM kv_blobs)').run(
      (() => {
        const b = Buffer.from(t.db.prepare('SELECT data FROM kv_blobs WHERE block_id = (SELECT MAX(block_id) FROM kv_blobs)').pluck().get() as Buffer);
        b[KV_HEADER_BYTES + 1] ^= 0x04; // the first key group's min
        return b;
      })(),
    );
    expect(store.getMany([key(1), key(2)])).toMatchObject([
      { status: 'corrupt', reason: expect.stringMatching(/checksum mismatch/) },
      { status: 'corrupt', reason: expect.stringMatching(/checksum mismatch/) },
    ]);
    expect(store.stats()).toMatchObject({ entries: 0, corrupt: 2 });
    // Recomputed and stored again, it reads back within the codec's bounds.
    expect(store.put(key(1), kv)).toMatchObject({ stored: true, entry: { codec } });
    expect(store.get(key(1)).status).toBe('hit');
  });

  it('detects a checksum that was altered in the row', () => {
    const store = new KvStore(t.db, F16);
    store.put(key(1), randomKv(shape, 10));
    t.db.prepare(`UPDATE kv_blocks SET checksum = 'crc32:00000000'`).run();
    expect(store.get(key(1)).status).toBe('corrupt');
  });
});

describe('KvStore budget, eviction and stats', () => {
  const MINUTE = 60_000;

  it('evicts the blocks least likely to be asked again: fewest decayed uses, then the oldest use', () => {
    let clock = 1000;
    const store = new KvStore(t.db, { ...F16, budgetBytes: 3 * BLOB, now: () => clock });
    for (let i = 1; i <= 3; i++) {
      clock += MINUTE;
      expect(store.put(key(i), randomKv(shape, i))).toMatchObject({ stored: true, evicted: 0 });
    }
    clock += MINUTE;
    expect(store.get(key(1)).status).toBe('hit'); // 1: two uses; 2 and 3: one each, 2 the older
    clock += MINUTE;
    expect(store.put(key(4), randomKv(shape, 4))).toMatchObject({ stored: true, evicted: 1 });
    expect(store.info(key(2))).toBeUndefined();
    expect([1, 3, 4].map((i) => store.info(key(i)) !== undefined)).toEqual([true, true, true]);
    expect(store.stats().bytes).toBeLessThanOrEqual(3 * BLOB);

    // A smaller budget evicts at once, lowest first (3, then 4: one use each), and keeps 1.
    expect(store.setBudget(1.5 * BLOB)).toBe(2);
    expect(store.stats()).toMatchObject({ entries: 1, bytes: BLOB, evictions: 3, budgetBytes: 1.5 * BLOB });
    expect(store.info(key(1))).toBeDefined();
  });

  it('keeps a block that questions keep using through a burst of one-off blocks, which LRU would drop', () => {
    let clock = 0;
    const store = new KvStore(t.db, { ...F16, budgetBytes: 4 * BLOB, now: () => clock });
    const popular = key(100);
    store.put(popular, randomKv(shape, 100));
    for (let q = 0; q < 4; q++) {
      clock += 10 * MINUTE;
      expect(store.get(popular).status).toBe('hit'); // a question per 10 minutes uses it
    }
    // Then an hour of one-off blocks (a long answer, a folder's prefill): 30 of them, 2 minutes apart.
    const oneOffs = Array.from({ length: 30 }, (_, i) => key(i));
    for (const k of oneOffs) {
      clock += 2 * MINUTE;
      expect(store.put(k, randomKv(shape, 1))).toMatchObject({ stored: true });
      expect(store.stats().bytes).toBeLessThanOrEqual(4 * BLOB);
    }
    // Its last use is older than every one-off's, yet it stays; the newest one-offs fill the rest.
    expect(store.info(popular)).toMatchObject({ hits: 4 });
    expect(oneOffs.map((k) => store.info(k) !== undefined)).toEqual(oneOffs.map((_, i) => i >= 27));

    // Its uses fade (5 with the put; half-life a day): a day and a half later they still outrank
    // fresh one-offs (5 x 2^-1.5 = 1.8), a day after that they rank below them (5 x 2^-2.5 = 0.9).
    clock += 36 * 60 * MINUTE;
    store.put(key(200), randomKv(shape, 2));
    store.put(key(201), randomKv(shape, 3));
    expect(store.info(popular)).toBeDefined();
    clock += 24 * 60 * MINUTE;
    for (const i of [202, 203, 204]) store.put(key(i), randomKv(shape, i)); // out: 29, then 200 and 201 (0.5 each now)
    expect(store.info(popular)).toBeDefined();
    store.put(key(205), randomKv(shape, 5));
    expect(store.info(popular)).toBeUndefined();
  });

  it('lets a prefetch displace only blocks that rank below it, and counts it as half a use', () => {
    let clock = 0;
    const store = new KvStore(t.db, { ...F16, budgetBytes: 2 * BLOB, now: () => clock });
    store.put(key(1), randomKv(shape, 1)); // questions' blocks
    store.put(key(2), randomKv(shape, 2));
    clock += MINUTE;
    const refused = store.put(key(3), randomKv(shape, 3), { prefetch: true });
    expect(refused).toMatchObject({ stored: false, reason: expect.stringMatching(/more likely to be asked/), evicted: 0 });
    expect(store.stats()).toMatchObject({ entries: 2, evictions: 0 });
    // A day later the questions' blocks have faded to 0.5, what a fresh prefetch counts: the older use goes.
    clock += 24 * 60 * MINUTE + MINUTE;
    expect(store.put(key(3), randomKv(shape, 3), { prefetch: true })).toMatchObject({ stored: true, evicted: 1 });
    expect(store.info(key(1))).toBeUndefined();
    // A question's block always goes in; the lowest makes room: 2 (0.5, a day old), then the prefetch (0.5 now).
    expect(store.put(key(4), randomKv(shape, 4))).toMatchObject({ stored: true, evicted: 1 });
    expect(store.info(key(2))).toBeUndefined();
    expect(store.put(key(5), randomKv(shape, 5))).toMatchObject({ stored: true, evicted: 1 });
    expect([3, 4, 5].map((i) => store.info(key(i)) !== undefined)).toEqual([false, true, true]);
  });

  it("with eviction 'lru' (the old policy, for bench:coverage's comparison): the least recently used goes, uses and prefetches alike", () => {
    let clock = 0;
    const store = new KvStore(t.db, { ...F16, budgetBytes: 4 * BLOB, now: () => clock, eviction: 'lru' });
    const popular = key(100);
    store.put(popular, randomKv(shape, 100));
    for (let q = 0; q < 4; q++) {
      clock += 10 * MINUTE;
      expect(store.get(popular).status).toBe('hit');
    }
    // the same burst that use scores keep it through: LRU drops it at the fourth one-off
    for (let i = 0; i < 4; i++) {
      clock += 2 * MINUTE;
      expect(store.put(key(i), randomKv(shape, 1), { prefetch: true })).toMatchObject({ stored: true });
    }
    expect(store.info(popular)).toBeUndefined();
    expect([0, 1, 2, 3].every((i) => store.info(key(i)) !== undefined)).toBe(true);
    expect(store.stats()).toMatchObject({ entries: 4, evictions: 1 });
  });

  it('orders uses within the same millisecond (a frozen clock) by when they happened', () => {
    const store = new KvStore(t.db, { ...F16, budgetBytes: 2 * BLOB, now: () => 5 });
    store.put(key(1), randomKv(shape, 1));
    store.put(key(2), randomKv(shape, 2));
    store.put(key(3), randomKv(shape, 3));
    expect(store.info(key(1))).toBeUndefined();
    expect(store.info(key(2))).toBeDefined();
  });

  it('a smaller budget evicts at once and gives the pages back to the disk; a larger one evicts nothing', () => {
    const big = { ...shape, tokens: 128, headDim: 64 }; // 128 KiB blocks: two 64 KiB pages each
    const BIG = encodeKv(randomKv(big, 0)).byteLength;
    const store = new KvStore(t.db, { ...F16, budgetBytes: 40 * BIG });
    for (let i = 0; i < 40; i++) store.put(key(i), randomKv(big, i));
    const pages = () => t.db.pragma('kv.page_count', { simple: true }) as number;
    const before = pages();
    expect(store.setBudget(100 * BIG)).toBe(0);
    expect(store.setBudget(10 * BIG + 5)).toBe(30);
    // Another connection sees the store within the new budget as soon as setBudget returns.
    const reader = openDatabase(t.file, { readonly: true });
    try {
      expect(reader.prepare('SELECT COUNT(*) AS n, SUM(bytes) AS bytes FROM kv.kv_blocks').get()).toEqual({ n: 10, bytes: 10 * BIG });
    } finally {
      reader.close();
    }
    expect(pages()).toBeLessThan(before / 2);
    expect(t.db.pragma('kv.freelist_count', { simple: true })).toBe(0);
    expect(store.setBudget(0)).toBe(10);
    expect(store.stats()).toMatchObject({ entries: 0, bytes: 0 });
    expect(store.put(key(1), randomKv(shape, 1))).toMatchObject({ stored: false, reason: expect.stringMatching(/exceed the budget/) });
  });

  it('never exceeds the budget over a stream of gets and puts of blocks of several sizes and codecs', () => {
    const budget = 6 * BLOB + 100;
    const store = new KvStore(t.db, { ...F16, budgetBytes: budget });
    const next = rng(42);
    const sizes = [4, 16, 40].map((tokens) => ({ ...shape, dtype: 'float32' as const, tokens }));
    for (let i = 0; i < 150; i++) {
      const k = key(Math.floor(next() * 25));
      if (next() < 0.4) {
        store.get(k);
      } else {
        const codec = (['float16', 'int8', 'int4'] as const)[Math.floor(next() * 3)];
        store.put(k, randomKv(sizes[Math.floor(next() * 3)], i), { codec, prefetch: next() < 0.3 });
      }
      const bytes = t.db.prepare('SELECT COALESCE(SUM(bytes), 0) FROM kv.kv_blocks').pluck().get() as number;
      expect(bytes).toBeLessThanOrEqual(budget);
      expect(store.stats().bytes).toBe(bytes);
    }
    expect(store.stats().bytes).toBeGreaterThan(budget / 2); // the budget is in use, not left empty
  });

  it('counts hits and misses', () => {
    const store = new KvStore(t.db, F16);
    expect(store.stats().hitRate).toBe(0);
    store.put(key(1), randomKv(shape, 1));
    store.get(key(1));
    store.get(key(1));
    store.get(key(1));
    store.get(key(2));
    expect(store.stats()).toMatchObject({ entries: 1, bytes: BLOB, hits: 3, misses: 1, corrupt: 0, hitRate: 0.75 });
    expect(store.info(key(1))?.hits).toBe(3);
  });
});

describe('KvStore.getMany', () => {
  it('answers in order with hits, misses and corrupt entries, touching hits in one transaction', () => {
    let clock = 100;
    const store = new KvStore(t.db, { ...F16, now: () => clock });
    store.put(key(1), randomKv(shape, 1));
    store.put(key(2), randomKv(shape, 2));
    t.db.prepare(`UPDATE kv_blocks SET checksum = 'crc32:00000000' WHERE token_hash = ?`).run(key(2).tokenHash);
    clock = 200;
    const results = store.getMany([key(1), key(3), key(2), key(1)]);
    expect(results.map((r) => r.status)).toEqual(['hit', 'miss', 'corrupt', 'hit']);
    expect(store.info(key(1))).toMatchObject({ hits: 2, lastUsedAt: 201 });
    expect(store.info(key(2))).toBeUndefined();
    expect(store.stats()).toMatchObject({ hits: 2, misses: 2, corrupt: 1, entries: 1 });
  });
});

describe('KvStore decoded-block cache (long-lived processes)', () => {
  const MEMORY = { ...F16, decodedCacheBytes: 1024 ** 2 };
  /** What one decoded test cache holds in memory. */
  const DECODED = 2 * shape.layers * shape.kvHeads * shape.tokens * shape.headDim * 2;

  it('serves a block asked again from memory: the same cache, counted as a hit and a use, without reading the blob', () => {
    const store = new KvStore(t.db, MEMORY);
    const kv = randomKv(shape, 1);
    store.put(key(1), kv);
    const first = store.get(key(1));
    // behind the store's back, the blob goes: a read would now report it missing
    t.db.prepare('UPDATE kv_blobs SET data = zeroblob(10)').run();
    const second = store.get(key(1));
    expect(second.status).toBe('hit');
    if (first.status !== 'hit' || second.status !== 'hit') return;
    expect(second.kv).toBe(first.kv);
    expect(same(second.kv, kv)).toBe(true);
    expect(store.stats()).toMatchObject({ hits: 2, memoryHits: 1, corrupt: 0 });
    expect(store.info(key(1))?.hits).toBe(2);
  });

  it('reads afresh once the row holds other bytes (stored again with another codec, or its checksum altered)', () => {
    const store = new KvStore(t.db, MEMORY);
    const kv = randomKv({ ...shape, dtype: 'float32' }, 2);
    store.put(key(1), kv);
    const asFloat16 = store.get(key(1));
    store.put(key(1), kv, { codec: 'int8' });
    const asInt8 = store.get(key(1));
    expect(asFloat16.status === 'hit' && asInt8.status === 'hit' && asInt8.kv !== asFloat16.kv).toBe(true);
    expect(asInt8).toMatchObject({ status: 'hit', entry: { codec: 'int8' } });
    expect(same((asInt8 as { kv: KvCache }).kv, (asFloat16 as { kv: KvCache }).kv)).toBe(false); // int8 rounds differently
    t.db.prepare(`UPDATE kv_blocks SET checksum = 'crc32:00000000'`).run();
    expect(store.get(key(1)).status).toBe('corrupt'); // the memory copy is not handed out for bytes it did not come from
    expect(store.stats().memoryHits).toBe(0);
  });

  it('holds at most its cap, dropping the least recently used block first, and forgets a deleted model', () => {
    const store = new KvStore(t.db, { ...F16, decodedCacheBytes: 2 * DECODED });
    for (const i of [1, 2, 3]) store.put(key(i), randomKv(shape, i));
    store.get(key(1));
    store.get(key(2));
    store.get(key(1)); // memory: 2, 1 (1 most recent)
    store.get(key(3)); // over the cap: 2 goes
    const before = store.stats().memoryHits;
    store.get(key(1));
    store.get(key(3));
    expect(store.stats().memoryHits - before).toBe(2);
    store.get(key(2));
    expect(store.stats().memoryHits - before).toBe(2); // read from the database again
    store.deleteModel('model-a');
    for (const i of [1, 2, 3]) store.put(key(i), randomKv(shape, i));
    const afterDelete = store.stats().memoryHits;
    store.getMany([key(1), key(2), key(3)]);
    expect(store.stats().memoryHits).toBe(afterDelete);
  });

  it('keeps nothing in memory by default (one-shot commands)', () => {
    const store = new KvStore(t.db, F16);
    store.put(key(1), randomKv(shape, 1));
    const a = store.get(key(1));
    const b = store.get(key(1));
    expect(a.status === 'hit' && b.status === 'hit' && a.kv !== b.kv).toBe(true);
    expect(store.stats().memoryHits).toBe(0);
  });
});

describe('KvStore with two connections', () => {
  it('a reader never sees an entry before its transaction commits, and sees all of it after', () => {
    const reader = openDatabase(t.file, { readonly: true });
    try {
      const writerStore = new KvStore(t.db, F16);
      const readerStore = new KvStore(reader, F16);
      const kv = randomKv(shape, 11);
      t.db.transaction(() => {
        writerStore.put(key(1), kv);
        writerStore.put(key(2), kv);
        expect(readerStore.get(key(1)).status).toBe('miss');
        expect(reader.prepare('SELECT COUNT(*) FROM kv_blocks').pluck().get()).toBe(0);
      }).immediate();
      const got = readerStore.get(key(1));
      expect(got.status).toBe('hit');
      expect(got.status === 'hit' && same(got.kv, kv)).toBe(true);
    } finally {
      reader.close();
    }
  });
});
