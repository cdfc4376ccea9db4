// Decoded KV blocks kept in memory by a long-lived process (the app's engine worker, `quire serve`),
// so a passage asked about again skips the SQLite read, the checksum and the codec's decode: what is
// left of a warm question is laying the blocks out (assemble.ts) and the final block.
//
// An entry is keyed by the block's store key and remembers the checksum of the bytes it was decoded
// from; the store hands it out only while its row still holds those bytes (same checksum), so a block
// stored again with other bytes (another codec, another process) is read afresh. Least recently used
// entries go first once the bytes held pass the cap. Entries are shared: callers only read them
// (assembly copies the blocks into a new past).
import { kvByteLength, type KvCache } from '../native-models/kv.ts';

/** What the app's worker and `quire serve` keep: about 85 blocks of 256 tokens on a Qwen2.5-0.5B-shaped model. */
export const DEFAULT_DECODED_KV_CACHE_BYTES = 256 * 1024 ** 2;

interface Entry {
  checksum: string;
  kv: KvCache;
  bytes: number;
}

export class DecodedKvCache {
  /** Map order is use order: the first entry is the least recently used. */
  private readonly entries = new Map<string, Entry>();
  private held = 0;

  constructor(readonly capBytes: number) {}

  get bytes(): number {
    return this.held;
  }

  get size(): number {
    return this.entries.size;
  }

  /** The block decoded from bytes with `checksum`, counted as a use; undefined when absent or decoded from other bytes. */
  get(key: string, checksum: string): KvCache | undefined {
    const e = this.entries.get(key);
    if (!e) return undefined;
    if (e.checksum !== checksum) {
      this.delete(key);
      return undefined;
    }
    this.entries.delete(key);
    this.entries.set(key, e);
    return e.kv;
  }

  /** Keeps a block decoded from bytes with `checksum`; a block larger than the whole cap is not kept. */
  set(key: string, checksum: string, kv: KvCache): void {
    this.delete(key);
    const bytes = kvByteLength(kv);
    if (bytes > this.capBytes) return;
    this.entries.set(key, { checksum, kv, bytes });
    this.held += bytes;
    for (const [oldest, e] of this.entries) {
      if (this.held <= this.capBytes) break;
      this.entries.delete(oldest);
      this.held -= e.bytes;
    }
  }

  delete(key: string): void {
    const e = this.entries.get(key);
    if (!e) return;
    this.entries.delete(key);
    this.held -= e.bytes;
  }

  /** Drops every entry whose key starts with `prefix` (a model's blocks), or all. */
  clear(prefix = ''): void {
    for (const key of [...this.entries.keys()]) if (key.startsWith(prefix)) this.delete(key);
  }
}
