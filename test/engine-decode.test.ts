// The decoding loop's figures: one definition of tokens per second (the live figure and the stored
// one both come from here), checked on the formula and on a real decode of a generated model.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { decode, tokensPerSecond } from '../native-models/decode.ts';
import { Engine } from '../native-models/engine.ts';
import { emptyKv } from '../native-models/kv.ts';
import { logitRows } from '../native-models/model-runner.ts';
import { positionRange } from '../native-models/prefill.ts';
import { argmax } from '../native-models/sampling.ts';
import { tinySpec } from './tools/tiny-model-spec.ts';
import { makeModelDir, removeDir, SAMPLE_TEXTS } from './helpers/models.ts';

describe('tokens per second', () => {
  it('counts the tokens after the first over the time from the first to the last', () => {
    // 5 tokens, first at 1000 ms, last at 3000 ms: 4 tokens in 2 s
    expect(tokensPerSecond(5, 1000, 3000)).toBe(2);
    expect(tokensPerSecond(1, 1000, 1000)).toBeNull();
    expect(tokensPerSecond(0, 0, 0)).toBeNull();
  });

  describe('on a decode', () => {
    let dir: string;
    let engine: Engine;
    beforeAll(async () => {
      dir = await makeModelDir(tinySpec({ seed: 41 }));
      engine = await Engine.load(dir, { provider: 'cpu' });
    });
    afterAll(async () => {
      await engine?.release();
      removeDir(dir);
    });

    it('is a positive figure with several tokens and null with one', async () => {
      const request = { blocks: [SAMPLE_TEXTS[0]], prompt: SAMPLE_TEXTS[1], raw: true, stopStrings: [] };
      const one = await engine.generate({ ...request, maxNewTokens: 1 });
      expect(one.tokenIds).toHaveLength(1);
      expect(one.tokensPerSecond).toBeNull();
      const several = await engine.generate({ ...request, maxNewTokens: 6 });
      expect(several.tokenIds.length).toBeGreaterThan(1); // greedy on a seeded model: the same every run
      expect(several.tokensPerSecond).toBeGreaterThan(0);
    });
  });
});

describe('a decoding step without copies', () => {
  it('returns a one-token run\'s logits as they are, and copies rows out of a longer run', () => {
    const one = Float32Array.from([1, 2, 3]);
    expect(logitRows(one, 1, false)[0]).toBe(one);
    const three = Float32Array.from([1, 2, 3, 4, 5, 6, 7, 8, 9]);
    const [last] = logitRows(three, 3, false);
    expect([...last]).toEqual([7, 8, 9]);
    expect(last.buffer).not.toBe(three.buffer); // the n x vocab array is not kept alive
    expect(logitRows(three, 3, true).map((r) => [...r])).toEqual([
      [1, 2, 3],
      [4, 5, 6],
      [7, 8, 9],
    ]);
  });

  describe('on a generated model', () => {
    let dir: string;
    let engine: Engine;
    let fresh: Engine;
    beforeAll(async () => {
      dir = await makeModelDir(tinySpec({ seed: 43 }));
      engine = await Engine.load(dir, { provider: 'cpu' });
      fresh = await Engine.load(dir, { provider: 'cpu' });
    });
    afterAll(async () => {
      await engine?.release();
      await fresh?.release();
      removeDir(dir);
    });
    const ids = Array.from({ length: 40 }, (_, i) => 5 + ((i * 37) % 300));

    it('gives the same logits after a longer run as a runner that never ran one (one mask buffer for every run)', async () => {
      const { runner } = engine;
      await runner.forward(ids, positionRange(0, ids.length), emptyKv(runner.kvShape)); // the mask buffer grows to 40
      const short = await runner.forward(ids.slice(0, 3), positionRange(0, 3), emptyKv(runner.kvShape));
      const step = await runner.forward([9], [3], short.present); // a view of 4 ones in a longer buffer
      const shortFresh = await fresh.runner.forward(ids.slice(0, 3), positionRange(0, 3), emptyKv(runner.kvShape));
      const stepFresh = await fresh.runner.forward([9], [3], shortFresh.present);
      expect(step.logits[0]).toHaveLength(384);
      expect([...step.logits[0]]).toEqual([...stepFresh.logits[0]]);
      expect([...short.logits[0]]).toEqual([...shortFresh.logits[0]]);
    });

    it('keeps each step\'s logits its own: later steps do not overwrite the first position\'s', async () => {
      const { runner, tokenizer } = engine;
      const past = (await runner.forward(ids.slice(0, 30), positionRange(0, 30), emptyKv(runner.kvShape))).present;
      const request = { past, finalIds: ids.slice(30), sampler: argmax, stopTokenIds: [] };
      const one = await decode(runner, tokenizer, { ...request, maxNewTokens: 1 });
      const kept = Float32Array.from(one.firstLogits);
      const several = await decode(runner, tokenizer, { ...request, maxNewTokens: 8 });
      expect(several.tokenIds).toHaveLength(8);
      expect([...one.firstLogits]).toEqual([...kept]);
      expect([...several.firstLogits]).toEqual([...kept]);
      expect(several.tokenIds[0]).toBe(one.tokenIds[0]);
    });
  });
});
