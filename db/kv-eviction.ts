// Which stored KV blocks to keep when the budget is full: the ones most likely to be asked again.
//
// Each block has a use score: every use adds 1 (a question that reads it, or stores it after
// computing it) or PREFETCH_USE (a background prefill that stores it before any question), and the
// score halves every HALF_LIFE_MS of wall-clock time. Eviction removes the lowest scores first.
//
// Why this and not LRU: questions have topic locality. A passage that several questions used is
// likely to be used again, and LRU would drop it as soon as a burst of one-off blocks (a long
// answer's ten passages, a folder's background prefill) went through. Why not plain LFU: interests
// move; counts from last month must fade, and the decay makes them. The half-life of a day means
// a block used 5 times yesterday (score 2.5) outranks one used once today (1), and a block used 5
// times a week ago (0.04) does not. A prefilled block counts half a use, and a prefill only
// displaces blocks that rank below it (KvStore.put), so speculative work never pushes out a block
// that a question used today. Within equal scores the older use goes first: among blocks used
// once, the policy is LRU. (GDSF would also weigh size; blocks of one model are near-equal in size,
// so the score alone orders them.)
//
// Stored form: comparing decayed scores needs them at a common time, and the order between two
// blocks never changes while neither is used (both decay alike). So each row keeps
//   priority = log2(score at its last use) + lastUse / HALF_LIFE_MS,
// which orders blocks exactly as their scores at any common time do (log2 of the score now is
// priority - now / HALF_LIFE_MS), and needs updating only when the block is used.

export const HALF_LIFE_MS = 24 * 60 * 60 * 1000;
/** What a background prefill's store counts for, against 1 for a question's use. */
export const PREFETCH_USE = 0.5;

/** The priority after a use of weight `use` at `at` (ms), given the previous one (none: a new block). */
export function priorityAfterUse(previous: number | undefined, use: number, at: number): number {
  const now = at / HALF_LIFE_MS;
  const decayed = previous === undefined ? 0 : 2 ** (previous - now);
  return now + Math.log2(decayed + use);
}

export type KvEvictionPolicy = 'use-score' | 'lru';

/** Least recently used first: the priority is the last use alone (in half-lives, as priorityAfterUse's). */
export function lruPriority(at: number): number {
  return at / HALF_LIFE_MS;
}
