// The block path on generated float32 models against the reference forward (float64): blocks
// prefilled alone, re-encoded to their place, laid end to end in a shuffled order, then the final
// block, must equal ONE forward pass over the same tokens with global positions and the block mask.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Engine } from '../native-models/engine.ts';
import { positionRange } from '../native-models/prefill.ts';
import { blockMask, causalMask, loadReferenceModel, referenceForward } from './tools/reference.ts';
import { tinySpec, type TinyModelSpec } from './tools/tiny-model-spec.ts';
import { maxAbsDiff, maxAbsDiffAll } from './helpers/compare.ts';
import { makeModelDir, removeDir, SAMPLE_TEXTS } from './helpers/models.ts';

// float32 kernels (and their summation orders) against float64: logits of order 1-10 accumulate
// ~1e-6 relative error through a few layers; 1e-4 leaves margin yet catches any wrong position,
// mask or rotation, which move logits by 1e-2 or more.
const LOGIT_TOLERANCE = 1e-4;

const SHAPES: [string, Partial<TinyModelSpec>][] = [
  ['llama, GQA 4:2', { seed: 11 }],
  [
    'qwen2, GQA 4:1, partial rotary 0.5, llama3 scaling',
    {
      seed: 12,
      arch: 'qwen2',
      kvHeads: 1,
      partialRotaryFactor: 0.5,
      addBos: false,
      // original context 32 and high_freq_factor 4 put the smoothing band inside these frequencies
      ropeScaling: { rope_type: 'llama3', factor: 8, low_freq_factor: 1, high_freq_factor: 4, original_max_position_embeddings: 32 },
    },
  ],
  [
    'llama, MHA, head dim 32, yarn scaling, tied embeddings',
    {
      seed: 13,
      heads: 2,
      kvHeads: 2,
      headDim: 32,
      tieWordEmbeddings: true,
      ropeScaling: { rope_type: 'yarn', factor: 4, original_max_position_embeddings: 64 },
    },
  ],
];

describe.each(SHAPES)('block path equals the reference forward: %s', (_name, overrides) => {
  let dir: string;
  let engine: Engine;
  beforeAll(async () => {
    dir = await makeModelDir(tinySpec(overrides));
    engine = await Engine.load(dir, { provider: 'cpu' });
  });
  afterAll(async () => {
    await engine?.release();
    removeDir(dir);
  });

  it('shuffled blocks + final block match one masked forward pass with global positions', async () => {
    const { blockIds } = engine.segment(SAMPLE_TEXTS.slice(0, 3), '', true);
    const finalIds = engine.tokenizer.encode('Question: which of these mentions the sea?');
    const prefilled = await Promise.all(blockIds.map((ids) => engine.prefill(ids)));
    const order = [2, 0, 1];
    const { past } = await engine.assemble(order.map((i) => ({ kv: prefilled[i] })));
    const got = await engine.runner.forward(finalIds, positionRange(past.tokens, finalIds.length), past, { allLogits: true });

    const ids = [...order.flatMap((i) => blockIds[i]), ...finalIds];
    const lengths = [...order.map((i) => blockIds[i].length), finalIds.length];
    const { spec, weights } = loadReferenceModel(dir);
    const finalRows = positionRange(past.tokens, finalIds.length);
    const expected = referenceForward(spec, weights, ids, positionRange(0, ids.length), blockMask(lengths), finalRows);
    const error = maxAbsDiffAll(got.logits, finalRows.map((row) => expected.logits[row]));
    expect(error).toBeLessThanOrEqual(LOGIT_TOLERANCE);

    // not vacuous: the same tokens under causal attention give clearly different final logits
    const causal = referenceForward(spec, weights, ids, positionRange(0, ids.length), causalMask(), [ids.length - 1]);
    expect(maxAbsDiff(causal.logits[ids.length - 1], expected.logits[ids.length - 1])).toBeGreaterThan(100 * LOGIT_TOLERANCE);
  });

  it('with a single block, block and full mode give the same greedy tokens and logits, equal to the reference', async () => {
    const request = { blocks: [], prompt: SAMPLE_TEXTS[3], raw: true, maxNewTokens: 8 };
    const block = await engine.generate({ ...request, mode: 'block' });
    const full = await engine.generate({ ...request, mode: 'full' });
    expect(block.tokenIds).toEqual(full.tokenIds);
    expect(block.tokenIds.length).toBeGreaterThan(0);
    expect(block.topLogits.map(([id]) => id)).toEqual(full.topLogits.map(([id]) => id));
    // the very same kernels run in both modes: 1e-5 is float32 noise at most
    expect(maxAbsDiff(block.topLogits.map(([, v]) => v), full.topLogits.map(([, v]) => v))).toBeLessThanOrEqual(1e-5);

    const { spec, weights } = loadReferenceModel(dir);
    const ids = block.promptTokenIds;
    const last = ids.length - 1;
    const ref = referenceForward(spec, weights, ids, positionRange(0, ids.length), causalMask(), [last]).logits[last];
    for (const [id, value] of block.topLogits) expect(Math.abs(value - ref[id])).toBeLessThanOrEqual(LOGIT_TOLERANCE);
    // greedy continuation agrees with the reference: its argmax is our first token
    expect(block.tokenIds[0]).toBe(ref.indexOf(Math.max(...ref)));
  });
});
