// bench:coverage's measures on hand-made inputs, worked out by hand.
import { describe, expect, it } from 'vitest';
import { scoreCoverage, zipfSampler, type QuestionRecord } from '../bench/coverage-metrics.ts';
import { seededRandom } from '../native-models/seeded-random.ts';

const q = (reused: number, retrieved: number, afterAnswer = 50, afterPrefill = 90, budget = 100): QuestionRecord => ({
  reused,
  retrieved,
  storedBytesAfterAnswer: afterAnswer,
  storedBytesAfterPrefill: afterPrefill,
  budgetBytes: budget,
});

describe('scoreCoverage', () => {
  it('is the share of retrieved blocks already stored, over the questions after the warm-up', () => {
    const s = scoreCoverage([q(0, 5), q(1, 5), q(5, 5), q(3, 5), q(4, 4)], 2);
    // counted: 5/5, 3/5, 4/4 -> 12 of 14
    expect(s).toMatchObject({ questions: 5, counted: 3, allStored: 2, overBudget: 0 });
    expect(s.storedShare).toBeCloseTo(12 / 14, 12);
    expect(s.peakBudgetShare).toBeCloseTo(0.9, 12);
  });

  it('counts every question over the budget, warm-up included, at either check', () => {
    const s = scoreCoverage([q(0, 5, 101, 90), q(1, 5), q(2, 5, 100, 100), q(2, 5, 50, 120)], 1);
    expect(s.overBudget).toBe(2);
    expect(s.peakBudgetShare).toBeCloseTo(1.2, 12);
    expect(s.storedShare).toBeCloseTo(5 / 15, 12);
  });

  it('is 0 with nothing retrieved, and counts no all-stored question without blocks', () => {
    expect(scoreCoverage([q(0, 0), q(0, 0)], 0)).toMatchObject({ storedShare: 0, allStored: 0, counted: 2 });
    expect(scoreCoverage([], 10)).toMatchObject({ questions: 0, counted: 0, storedShare: 0, peakBudgetShare: 0 });
  });
});

describe('zipfSampler', () => {
  it('draws i with probability proportional to 1 / (i + 1)^s', () => {
    // s = 1 over 3: weights 1, 1/2, 1/3 -> cumulative 6/11, 9/11, 1
    const fixed = (u: number) => zipfSampler(3, 1, () => u)();
    expect([0, 0.54, 0.55, 0.81, 0.82, 0.999].map(fixed)).toEqual([0, 0, 1, 1, 2, 2]);
    const draw = zipfSampler(10, 1.2, seededRandom(7));
    const counts = new Array(10).fill(0);
    for (let i = 0; i < 20_000; i++) counts[draw()]++;
    const total = Array.from({ length: 10 }, (_, i) => 1 / (i + 1) ** 1.2).reduce((a, b) => a + b, 0);
    counts.forEach((c, i) => expect(Math.abs(c / 20_000 - 1 / (i + 1) ** 1.2 / total)).toBeLessThan(0.01));
  });

  it('refuses an empty range', () => {
    expect(() => zipfSampler(0, 1, Math.random)).toThrow(/at least 1/);
  });
});
