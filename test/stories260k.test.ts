// The engine on a REAL trained model (../shared/fixtures/stories260k-llama2c, Karpathy's stories260K
// from llama2.c): full mode must reproduce llama2.c's own greedy continuation, block mode must equal
// the model run directly at global positions, and stored keys must re-encode exactly.
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Engine } from '../native-models/engine.ts';
import { concatKv, emptyKv, type KvCache } from '../native-models/kv.ts';
import { rotateKeys } from '../native-models/rope.ts';
import { maxAbsDiff } from './helpers/compare.ts';

const FIXTURE = path.resolve('../shared/fixtures/stories260k-llama2c');

/** llama2.c's run.c at temperature 0 on "Once upon a time" (../shared/fixtures/README.md). */
const LLAMA2C_PROMPT_IDS = [1, 403, 407, 261, 378];
const LLAMA2C_CONTINUATION = [
  432, 383, 286, 261, 376, 298, 315, 421, 395, 317, 426, 338, 401, 396, 267, 337, 410, 408, 419, 292, 411, 322, 265, 282, 295,
  433, 426, 385, 328, 432, 358, 394, 261, 370, 432, 352, 266, 268, 388, 426,
];

// float32 throughout. The graph computes its RoPE angles position x invFreq in float32, so keys at
// position 400 carry ~2e-5 of angle rounding (measured 2.4e-5 on keys of magnitude ~25); 1e-4 is
// 4 ppm of that magnitude, while a key left unrotated is off by 3 to 19.
const KEY_TOLERANCE = 1e-4;
// logits of magnitude ~13: the re-encoded and the directly computed past differ by the key
// rounding above (measured 1.1e-5); attending across blocks instead moves them by ~0.5.
const LOGIT_TOLERANCE = 1e-4;

const range = (start: number, n: number) => Array.from({ length: n }, (_, i) => start + i);

describe('stories260K (a real trained llama2.c model)', () => {
  let engine: Engine;
  beforeAll(async () => {
    engine = await Engine.load(FIXTURE, { provider: 'cpu' });
  });
  afterAll(() => engine?.release());

  it('reads its contract: Optimum layout, 5 layers x 4 KV heads x 8, theta 10000 rotate-half', () => {
    expect(engine.runner.contract).toMatchObject({ layout: 'optimum', positions: 'position_ids', sharedKvBuffer: false });
    expect(engine.runner.kvShape).toEqual({ dtype: 'float32', layers: 5, kvHeads: 4, headDim: 8 });
    expect(engine.model.rope).toMatchObject({ layout: 'rotate-half', theta: 10000, headDim: 8, rotaryDim: 8 });
    expect(engine.model.rope.layers).toBeUndefined();
  });

  it("full mode reproduces llama2.c's greedy continuation of \"Once upon a time\" (40 tokens)", async () => {
    const result = await engine.generate({ blocks: [], prompt: 'Once upon a time', raw: true, mode: 'full', maxNewTokens: 40 });
    expect(result.promptTokenIds).toEqual(LLAMA2C_PROMPT_IDS);
    expect(result.tokenIds).toEqual(LLAMA2C_CONTINUATION);
    expect(result.text).toBe(', there was a little girl named Lily. She loved to play outside in the park. One day, she saw a big, red ball.');
  });

  it('with one block (the prompt as the final block) block mode is full mode: same tokens, same logits', async () => {
    const request = { blocks: [], prompt: 'Once upon a time', raw: true, maxNewTokens: 40 };
    const block = await engine.generate({ ...request, mode: 'block' });
    const full = await engine.generate({ ...request, mode: 'full' });
    expect(block.tokenIds).toEqual(LLAMA2C_CONTINUATION);
    expect(block.topLogits.map(([id]) => id)).toEqual(full.topLogits.map(([id]) => id));
    // the same kernels on the same inputs: float32 noise at most
    expect(maxAbsDiff(block.topLogits.map(([, v]) => v), full.topLogits.map(([, v]) => v))).toBeLessThanOrEqual(1e-5);
  });

  it.each([1, 7, 100, 400])('keys computed at positions %i.. equal the keys computed at 0.. rotated by that offset, in every layer', async (offset) => {
    const ids = engine.tokenizer.encode('Lily saw a big red ball in the park. She ran to get it.');
    const shape = engine.runner.kvShape;
    const atZero = (await engine.runner.forward(ids, range(0, ids.length), emptyKv(shape))).present;
    const atOffset = (await engine.runner.forward(ids, range(offset, ids.length), emptyKv(shape))).present;
    const moved = rotateKeys(atZero, engine.model.rope, offset);
    for (let l = 0; l < shape.layers; l++) {
      expect(maxAbsDiff(moved.keys[l], atOffset.keys[l])).toBeLessThanOrEqual(KEY_TOLERANCE);
      // not vacuous: the position changes the keys by far more than the tolerance
      expect(maxAbsDiff(atZero.keys[l], atOffset.keys[l])).toBeGreaterThan(1000 * KEY_TOLERANCE);
    }
  });

  it('blocks prefilled alone and re-encoded give the logits of the model run on each block at its global positions', async () => {
    const stories = ['Once upon a time, there was a little girl named Lily.', ' She loved to play outside in the park.', ' One day, she saw a big red ball.'];
    const { blockIds } = engine.segment(stories, '', true);
    const finalIds = engine.tokenizer.encode(' Lily ran to the ball and');
    const shape = engine.runner.kvShape;
    const reencoded: KvCache[] = [];
    const direct: KvCache[] = [];
    let start = 0;
    for (const ids of blockIds) {
      const alone = (await engine.runner.forward(ids, range(0, ids.length), emptyKv(shape))).present;
      reencoded.push(rotateKeys(alone, engine.model.rope, start));
      // the block mask at global positions, computed by the model itself: no re-encoding involved
      direct.push((await engine.runner.forward(ids, range(start, ids.length), emptyKv(shape))).present);
      start += ids.length;
    }
    const finalRun = (past: KvCache) => engine.runner.forward(finalIds, range(start, finalIds.length), past, { allLogits: true });
    const got = await finalRun(concatKv(reencoded, shape));
    const expected = await finalRun(concatKv(direct, shape));
    const error = Math.max(...got.logits.map((row, i) => maxAbsDiff(row, expected.logits[i])));
    expect(error).toBeLessThanOrEqual(LOGIT_TOLERANCE);
    // not vacuous: causal attention over the same tokens gives other logits
    const all = [...blockIds.flat(), ...finalIds];
    const causal = await engine.runner.forward(all, range(0, all.length), emptyKv(shape));
    expect(maxAbsDiff(causal.logits[0], got.logits[finalIds.length - 1])).toBeGreaterThan(1000 * LOGIT_TOLERANCE);
  });
});
