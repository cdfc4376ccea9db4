// The decoding loop's figures: one definition of tokens per second (the live figure and the stored
// one both come from here), checked on the formula and on a real decode of a generated model.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { tokensPerSecond } from '../native-models/decode.ts';
import { Engine } from '../native-models/engine.ts';
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
