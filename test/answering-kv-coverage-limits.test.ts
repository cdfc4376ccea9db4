// Why a folder's coverage is not 100%, and the Library's wording of it (PrefillLimit), read from the
// same state: which limit applies when several do, and how many passages a full budget leaves out.
import { describe, expect, it } from 'vitest';
import { coverageLimit, prefillLimit, type PrefillState } from '../electron/answering/kv-coverage-limits.ts';

const running: PrefillState = { model: true, prefillOn: true, paused: false, queued: 0, budgetFull: false };
const folder = { passages: 100, stored: 60 };
const BUDGET = 2 * 1024 ** 3;

describe('coverage limits', () => {
  it('names the first limit that applies: prefill off before no model, both before the rest', () => {
    expect(coverageLimit(folder, { ...running, prefillOn: false, model: false })).toBe('off');
    expect(coverageLimit(folder, { ...running, model: false, paused: true })).toBe('no-model');
    expect(coverageLimit(folder, { ...running, paused: true, queued: 5 })).toBe('paused');
    expect(coverageLimit(folder, { ...running, queued: 5, budgetFull: true })).toBe('prefilling');
    expect(coverageLimit(folder, { ...running, budgetFull: true })).toBe('budget');
    expect(coverageLimit(folder, running)).toBe('not-prefilled');
    expect(coverageLimit({ passages: 100, stored: 100 }, { ...running, prefillOn: false })).toBeNull();
  });

  it('the Library line: the limits a setting lifts, a full budget said while the rest is still prefilling', () => {
    expect(prefillLimit(folder, { ...running, prefillOn: false }, BUDGET)).toEqual({ reason: 'eager-off', passagesLeft: 40, budgetBytes: BUDGET });
    expect(prefillLimit(folder, { ...running, model: false }, BUDGET)).toEqual({ reason: 'no-model', passagesLeft: 40, budgetBytes: BUDGET });
    // 40 missing, 15 of them queued: the budget leaves 25 out
    expect(prefillLimit(folder, { ...running, queued: 15, budgetFull: true }, BUDGET)).toEqual({ reason: 'kv-budget', passagesLeft: 25, budgetBytes: BUDGET });
    expect(prefillLimit(folder, { ...running, budgetFull: true }, BUDGET)).toEqual({ reason: 'kv-budget', passagesLeft: 40, budgetBytes: BUDGET });
    // every missing passage is queued: nothing is left out
    expect(prefillLimit(folder, { ...running, queued: 40, budgetFull: true }, BUDGET)).toBeNull();
    // the folder's state says paused; questions will store the rest
    expect(prefillLimit(folder, { ...running, paused: true, budgetFull: true }, BUDGET)).toBeNull();
    expect(prefillLimit(folder, running, BUDGET)).toBeNull();
    expect(prefillLimit({ passages: 100, stored: 100 }, { ...running, model: false }, BUDGET)).toBeNull();
  });
});
