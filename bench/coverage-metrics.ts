// bench:coverage's measures: the question stream's topics (Zipf), and over the answered questions
// the share of retrieved blocks that were already stored, and whether stored KV kept to the budget.

/**
 * Draws 0..n-1 with P(i) proportional to 1 / (i + 1)^s (Zipf), from `rand` (uniform in [0, 1)).
 * Topic 0 is the most asked.
 */
export function zipfSampler(n: number, s: number, rand: () => number): () => number {
  if (!(n >= 1)) throw new RangeError(`zipfSampler: n must be at least 1, got ${n}`);
  const weights = Array.from({ length: n }, (_, i) => 1 / (i + 1) ** s);
  const total = weights.reduce((a, b) => a + b, 0);
  const cumulative: number[] = [];
  let acc = 0;
  for (const w of weights) cumulative.push((acc += w / total));
  return () => {
    const u = rand();
    const i = cumulative.findIndex((c) => u < c);
    return i < 0 ? n - 1 : i;
  };
}

/** One question as answered through the ask path. */
export interface QuestionRecord {
  /** Blocks of its context loaded from the store (not computed for it). */
  reused: number;
  /** Blocks of its context (the passages retrieved). */
  retrieved: number;
  /** Stored KV bytes after it was answered, and after the background prefill that followed it. */
  storedBytesAfterAnswer: number;
  storedBytesAfterPrefill: number;
  budgetBytes: number;
}

export interface CoverageScore {
  questions: number;
  /** Questions counted (those after the warm-up). */
  counted: number;
  /** Over the counted questions: blocks already stored / blocks retrieved. */
  storedShare: number;
  /** Questions of the counted whose every block was stored. */
  allStored: number;
  /** Questions (all of them) after which stored KV exceeded the budget, at either check. */
  overBudget: number;
  /** The largest stored bytes / budget seen at any check. */
  peakBudgetShare: number;
}

/** Scores a stream of answered questions, leaving out the first `warmup` (the store starts cold). */
export function scoreCoverage(records: readonly QuestionRecord[], warmup: number): CoverageScore {
  const counted = records.slice(warmup);
  const reused = counted.reduce((s, r) => s + r.reused, 0);
  const retrieved = counted.reduce((s, r) => s + r.retrieved, 0);
  const shares = records.flatMap((r) => [r.storedBytesAfterAnswer / r.budgetBytes, r.storedBytesAfterPrefill / r.budgetBytes]);
  return {
    questions: records.length,
    counted: counted.length,
    storedShare: retrieved > 0 ? reused / retrieved : 0,
    allStored: counted.filter((r) => r.retrieved > 0 && r.reused === r.retrieved).length,
    overBudget: records.filter((r) => Math.max(r.storedBytesAfterAnswer, r.storedBytesAfterPrefill) > r.budgetBytes).length,
    peakBudgetShare: shares.length > 0 ? Math.max(...shares) : 0,
  };
}
