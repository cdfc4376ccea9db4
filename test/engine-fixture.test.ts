// The engine on a real onnxruntime-genai export (../shared/fixtures/tiny-llama-fp16-genai): float16 KV,
// contrib operators, external data, and the one-new-token-per-run-with-past quirk.
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Engine } from '../native-models/engine.ts';
import { concatKv, emptyKv } from '../native-models/kv.ts';
import { positionRange } from '../native-models/prefill.ts';
import { maxAbsDiff, maxAbsDiffAll } from './helpers/compare.ts';

const FIXTURE = path.resolve('../shared/fixtures/tiny-llama-fp16-genai');

describe('engine on the onnxruntime-genai fp16 fixture', () => {
  let engine: Engine;
  beforeAll(async () => {
    engine = await Engine.load(FIXTURE, { provider: 'cpu' });
  });
  afterAll(() => engine.release());

  it('reads the KV contract from the session and detects the one-token-with-past quirk', () => {
    expect(engine.runner.kvShape).toEqual({ dtype: 'float16', layers: 2, kvHeads: 1, headDim: 16 });
    expect(engine.runner.multiTokenWithPast).toBe(false);
    expect(engine.model.externalDataPaths.map((p) => path.basename(p))).toEqual(['model.onnx.data']);
    expect(engine.tokenizer.bosTokenId).toBe(1);
  });

  it('a prompt assembled from two prefilled blocks gives the logits of the model run on the same tokens, positions and mask', async () => {
    const [a, b] = engine.segment(['The cat sat on the mat.', ' Dogs like long walks in the park.'], 'Who sat?', true).blockIds;
    const final = engine.tokenizer.encode(' Who sat on the mat?');
    // Direct: block b computed alone (block mask) but AT its global positions, so no re-encoding is involved.
    const kvA = await engine.prefill(a);
    const direct = await engine.runner.forward(b, positionRange(a.length, b.length), emptyKv(engine.runner.kvShape));
    const directPast = concatKv([kvA, direct.present]);
    const expected = await engine.runner.forward(final, positionRange(directPast.tokens, final.length), directPast, { allLogits: true });
    // Block path: b prefilled at local positions 0..L-1, then its keys rotated by |a|.
    const kvB = await engine.prefill(b);
    const { past, starts } = await engine.assemble([{ kv: kvA }, { kv: kvB }]);
    expect(starts).toEqual([0, a.length]);
    const got = await engine.runner.forward(final, positionRange(past.tokens, final.length), past, { allLogits: true });
    // 2e-3: both sides hold float16 keys; the re-encoded ones are rounded once more after rotation,
    // and logits here are of order 0.3, so this is a few float16 ulps.
    const blockError = maxAbsDiffAll(got.logits, expected.logits);
    expect(blockError).toBeLessThanOrEqual(2e-3);
    // The comparison is not vacuous: attending across blocks (causal) moves the logits by more than
    // the block path's error plus 4 float16 ulps at this magnitude (this random model's logits are ~0.3).
    const causal = await engine.runner.forward([...a, ...b], positionRange(0, a.length + b.length), emptyKv(engine.runner.kvShape));
    const full = await engine.runner.forward(final, positionRange(causal.present.tokens, final.length), causal.present);
    expect(maxAbsDiff(full.logits[0], expected.logits[final.length - 1])).toBeGreaterThan(blockError + 1e-3);
  });

  it('a multi-token final block after a past is fed one token per run and matches a single causal run', async () => {
    const ids = engine.tokenizer.encode('One two three four five six', { bos: true });
    const whole = await engine.runner.forward(ids, positionRange(0, ids.length), emptyKv(engine.runner.kvShape));
    const head = await engine.runner.forward(ids.slice(0, 2), [0, 1], emptyKv(engine.runner.kvShape));
    const tail = await engine.runner.forward(ids.slice(2), positionRange(2, ids.length - 2), head.present);
    // float16 KV re-read from the cache vs kept in float32 inside one run: a few float16 ulps
    expect(maxAbsDiff(tail.logits[0], whole.logits[0])).toBeLessThan(2e-3);
  });

  it('block and full mode agree with a single block and greedy decoding', async () => {
    const request = { blocks: [], prompt: 'Tell me about the sea.', maxNewTokens: 6 };
    const block = await engine.generate({ ...request, mode: 'block' });
    const full = await engine.generate({ ...request, mode: 'full' });
    expect(block.tokenIds).toEqual(full.tokenIds);
    expect(block.promptTokenIds).toEqual(full.promptTokenIds);
    expect(block.promptTokenIds[0]).toBe(1); // the template writes <s>
  });
});
