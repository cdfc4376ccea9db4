// bench:retrieval's metrics on hand-made ranked lists, worked out by hand.
import { describe, expect, it } from 'vitest';
import { recallAtK, reciprocalRank, scoreRetrieval } from '../bench/retrieval-metrics.ts';

const rel = (...docs: string[]) => new Set(docs);

describe('recall@k', () => {
  it('is the share of the relevant documents among the first k hits', () => {
    const ranked = ['x', 'a', 'y', 'y', 'z', 'b'];
    expect(recallAtK(ranked, rel('a'), 1)).toBe(0);
    expect(recallAtK(ranked, rel('a'), 2)).toBe(1);
    expect(recallAtK(ranked, rel('a', 'b'), 5)).toBe(0.5);
    expect(recallAtK(ranked, rel('a', 'b'), 6)).toBe(1);
    expect(recallAtK(ranked, rel('a', 'b', 'c', 'd'), 10)).toBe(0.5);
  });

  it('counts a document once however many of its passages are hits', () => {
    expect(recallAtK(['a', 'a', 'a'], rel('a', 'b'), 3)).toBe(0.5);
  });

  it('is 0 for no hits', () => {
    expect(recallAtK([], rel('a'), 5)).toBe(0);
  });
});

describe('reciprocal rank', () => {
  it('is 1 / the position of the first relevant hit, 0 without one', () => {
    expect(reciprocalRank(['a', 'x'], rel('a'))).toBe(1);
    expect(reciprocalRank(['x', 'y', 'b', 'a'], rel('a', 'b'))).toBeCloseTo(1 / 3, 12);
    expect(reciprocalRank(['x', 'y'], rel('a'))).toBe(0);
  });
});

describe('scoreRetrieval', () => {
  it('averages over questions, MRR within the first 10 hits, and counts questions with no hit', () => {
    const tenMisses = Array.from({ length: 10 }, (_, i) => `m${i}`);
    const scores = scoreRetrieval([
      { rankedDocs: ['a'], relevant: rel('a') }, // r@5 1, r@10 1, rr 1
      { rankedDocs: ['x', 'x', 'x', 'x', 'x', 'b', 'c'], relevant: rel('b', 'c') }, // r@5 0, r@10 1, rr 1/6
      { rankedDocs: [...tenMisses, 'd'], relevant: rel('d') }, // found at 11: r@10 0, rr 0
      { rankedDocs: [], relevant: rel('e') },
    ]);
    expect(scores.questions).toBe(4);
    expect(scores.recallAt5).toBeCloseTo(1 / 4, 12);
    expect(scores.recallAt10).toBeCloseTo(2 / 4, 12);
    expect(scores.mrr).toBeCloseTo((1 + 1 / 6) / 4, 12);
    expect(scores.empty).toBe(1);
  });
});
