// layOutBlocks (assemble.ts) lays each block straight into one past per layer and turns its keys
// there. Checked against the composition it replaces (rotateKeys per block, then concatKv), which
// rope.test.ts checks against the float64 formula: equal bit for bit (float16 caches of any finite
// half, subnormals included), over both dtypes, both pair layouts, partial rotary, per-layer RoPE
// and an empty block; the blocks' own buffers are untouched.
import { describe, expect, it } from 'vitest';
import { assembleBlocks, layOutBlocks, type PromptBlock } from '../native-models/assemble.ts';
import { concatKv, kvShapeOf, type KvCache, type KvDtype, type KvShape } from '../native-models/kv.ts';
import { rotateKeys } from '../native-models/rope.ts';
import { ropeParamsFromConfig, type RopeLayout, type RopeParams } from '../native-models/rope-config.ts';
import { randomKv } from './fixtures/db-random-kv.ts';

const LAYERS = 3;
const KV_HEADS = 2;
const HEAD_DIM = 16;

function randomBlock(dtype: KvDtype, tokens: number, seed: number): KvCache {
  return randomKv({ dtype, layers: LAYERS, kvHeads: KV_HEADS, headDim: HEAD_DIM, tokens }, seed);
}

function rope(layout: RopeLayout, extra: Record<string, unknown> = {}): RopeParams {
  return ropeParamsFromConfig({ num_attention_heads: 4, hidden_size: 4 * HEAD_DIM, rope_theta: 10000, ...extra }, layout);
}

/** The assembly before layOutBlocks: a rotated copy of each block's keys, then one concatenation. */
function rotateThenConcat(blocks: readonly KvCache[], params: RopeParams, shape: KvShape): KvCache {
  let at = 0;
  const placed = blocks.map((kv) => {
    const moved = at === 0 ? kv : rotateKeys(kv, params, at);
    at += kv.tokens;
    return moved;
  });
  return concatKv(placed, shape);
}

function expectSameKv(actual: KvCache, expected: KvCache): void {
  expect(kvShapeOf(actual)).toEqual(kvShapeOf(expected));
  expect(actual.tokens).toBe(expected.tokens);
  for (let l = 0; l < expected.layers; l++) {
    expect(Buffer.from(actual.keys[l].buffer, actual.keys[l].byteOffset, actual.keys[l].byteLength).equals(Buffer.from(expected.keys[l].buffer, expected.keys[l].byteOffset, expected.keys[l].byteLength))).toBe(true);
    expect(Buffer.from(actual.values[l].buffer, actual.values[l].byteOffset, actual.values[l].byteLength).equals(Buffer.from(expected.values[l].buffer, expected.values[l].byteOffset, expected.values[l].byteLength))).toBe(true);
  }
}

const cases: { name: string; dtype: KvDtype; params: RopeParams }[] = [
  { name: 'float32, rotate-half', dtype: 'float32', params: rope('rotate-half') },
  { name: 'float16, rotate-half', dtype: 'float16', params: rope('rotate-half') },
  { name: 'float32, interleaved', dtype: 'float32', params: rope('interleaved') },
  { name: 'float32, partial rotary 0.5 + llama3 scaling', dtype: 'float32', params: rope('rotate-half', { partial_rotary_factor: 0.5, rope_scaling: { rope_type: 'llama3', factor: 8, low_freq_factor: 1, high_freq_factor: 4, original_max_position_embeddings: 64 } }) },
  { name: 'float16, interleaved', dtype: 'float16', params: rope('interleaved') },
];

describe('layOutBlocks', () => {
  for (const { name, dtype, params } of cases) {
    it(`${name}: equals rotating each block then concatenating, bit for bit`, async () => {
      const blocks = [randomBlock(dtype, 7, 1), randomBlock(dtype, 0, 2), randomBlock(dtype, 5, 3), randomBlock(dtype, 11, 4)];
      const copies = blocks.map((b) => ({ keys: b.keys.map((k) => k.slice()), values: b.values.map((v) => v.slice()) }));
      const shape = kvShapeOf(blocks[0]);
      const { past, starts } = await assembleBlocks(blocks.map((kv): PromptBlock => ({ kv })), { rope: params, kvShape: shape });
      expect(starts).toEqual([0, 7, 7, 12]);
      expectSameKv(past, rotateThenConcat(blocks, params, shape));
      // the blocks may be shared (the store's decoded-block cache): assembly only reads them
      blocks.forEach((b, i) => {
        b.keys.forEach((k, l) => expect(k).toEqual(copies[i].keys[l]));
        b.values.forEach((v, l) => expect(v).toEqual(copies[i].values[l]));
      });
    });
  }

  it('turns each layer with its own parameters where the model has per-layer RoPE', () => {
    const local = rope('rotate-half');
    const global = rope('rotate-half', { rope_theta: 1_000_000 });
    const perLayer: RopeParams = { ...global, layers: [local, global, local] };
    const blocks = [randomBlock('float32', 4, 5), randomBlock('float32', 6, 6)];
    const shape = kvShapeOf(blocks[0]);
    const past = layOutBlocks(blocks.map((kv) => ({ kv })), [0, 4], 10, { rope: perLayer, kvShape: shape });
    expectSameKv(past, rotateThenConcat(blocks, perLayer, shape));
    // and the layers really turned differently: the same keys moved by another theta differ
    const uniform = layOutBlocks(blocks.map((kv) => ({ kv })), [0, 4], 10, { rope: local, kvShape: shape });
    expect(past.keys[0]).toEqual(uniform.keys[0]);
    expect(past.keys[1]).not.toEqual(uniform.keys[1]);
  });

  it('refuses a block whose shape is not the model KV shape', () => {
    const blocks = [randomBlock('float32', 4, 7), randomBlock('float16', 4, 8)];
    expect(() => layOutBlocks(blocks.map((kv) => ({ kv })), [0, 4], 8, { rope: rope('rotate-half'), kvShape: kvShapeOf(blocks[0]) })).toThrow(/block 1 has shape/);
  });
});
