// The models and inputs behind reference.test.ts's "agreement with transformers" pins, in one place
// so the test and the dumper that feeds the numpy transliteration (dump-weights.ts ->
// transformers-reference.py) cannot drift apart.
import type { TinyModelSpec } from './tiny-model-spec.ts';

export interface TransformersCase {
  name: string;
  overrides: Partial<TinyModelSpec>;
  /** The first logits of the last token, as the numpy transliteration of transformers computed them. */
  pinned: number[];
}

/** Block attention with gaps and a position out of order, so nothing assumes positions 0..N-1. */
export const TRANSFORMERS_INPUT = {
  ids: [3, 50, 7, 99, 12, 8, 200, 1, 44],
  positions: [0, 1, 2, 40, 41, 42, 43, 7, 100],
  blockLengths: [3, 4, 2],
  /** The token whose logits are pinned (the last). */
  last: 8,
};

export const TRANSFORMERS_CASES: TransformersCase[] = [
  {
    name: 'qwen2, GQA 4:1, partial rotary 0.5, yarn',
    overrides: {
      arch: 'qwen2',
      seed: 5,
      kvHeads: 1,
      partialRotaryFactor: 0.5,
      ropeScaling: { rope_type: 'yarn', factor: 4, original_max_position_embeddings: 256 },
    },
    pinned: [
      -0.7578944390998787, 0.09648241447620648, -0.006931832995992149, 1.1906952181647665, -0.15195477586889383,
      -0.4284946539686629,
    ],
  },
  {
    name: 'llama, 8 heads on 2 KV heads, tied embeddings, llama3 scaling',
    overrides: {
      seed: 9,
      heads: 8,
      kvHeads: 2,
      headDim: 8,
      tieWordEmbeddings: true,
      ropeScaling: { rope_type: 'llama3', factor: 8, low_freq_factor: 1, high_freq_factor: 4, original_max_position_embeddings: 64 },
    },
    pinned: [
      -7.152242406899259, 5.503825690683432, -4.483363499673976, -16.98093832064682, -7.632065269765278,
      1.7787035692473725,
    ],
  },
];
