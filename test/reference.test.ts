import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import {
  blockMask,
  causalMask,
  loadReferenceModel,
  referenceForward,
  sharedPrefixMask,
  type AttendsFn,
} from './tools/reference.ts';
import { ropeParamsFromConfig, type RopeParams, type RopeScaling } from '../native-models/rope-config.ts';
import { buildWeights, specToHfConfig, tinySpec, type TinyModelSpec, type TinyWeights } from './tools/tiny-model-spec.ts';
import { TRANSFORMERS_CASES, TRANSFORMERS_INPUT } from './tools/transformers-cases.ts';
import { maxAbsDiff, maxAbsDiffAll } from './helpers/compare.ts';

// Tolerances. Everything is float64 with activations of order 1-50, so two computations of the same
// quantity along different roundings (a key rotated twice instead of once, scores from keys at
// shifted positions) differ by ~1e-14. SAME = 1e-9 leaves five orders of margin for that and is
// still far below any real mistake; a wrong mask, position or weight moves outputs by more than
// DIFFERENT = 1e-3 (the seeded weights keep activations of order 1).
const SAME = 1e-9;
const DIFFERENT = 1e-3;

const range = (from: number, count: number) => Array.from({ length: count }, (_, i) => from + i);

/** Pseudo-random token ids (deterministic, so failures reproduce). */
const tokens = (count: number, salt: number, vocab = 384) => range(0, count).map((i) => (i * 131 + salt * 17 + 5) % vocab);

/** The mask as rows of 0/1 characters, for truth tables. */
function table(attends: AttendsFn, n: number): string[] {
  return range(0, n).map((q) => range(0, n).map((k) => (attends(q, k) ? '1' : '0')).join(''));
}

/** Tokens [from, from + count) of one layer's [kvHeads, N, headDim] keys or values, as [kvHeads, count, headDim]. */
function tokenSlice(layer: Float64Array, n: number, headDim: number, from: number, count: number): Float64Array {
  const kvHeads = layer.length / (n * headDim);
  const out = new Float64Array(kvHeads * count * headDim);
  for (let g = 0; g < kvHeads; g++) {
    out.set(layer.subarray((g * n + from) * headDim, (g * n + from + count) * headDim), g * count * headDim);
  }
  return out;
}

/**
 * The method brief's re-encoding, written out independently of reference.ts: rotate each rotate-half
 * pair (x_m, x_{m+d/2}) of the first rotaryDim dimensions by offset * invFreq[m]; a pure rotation,
 * no attention factor (yarn's is already inside the keys).
 */
function rotateKeys(keys: Float64Array, rope: RopeParams, offset: number): Float64Array {
  const out = Float64Array.from(keys);
  const half = rope.rotaryDim / 2;
  for (let base = 0; base < out.length; base += rope.headDim) {
    for (let m = 0; m < half; m++) {
      const a = offset * rope.invFreq[m];
      const x = keys[base + m];
      const y = keys[base + m + half];
      out[base + m] = x * Math.cos(a) - y * Math.sin(a);
      out[base + m + half] = y * Math.cos(a) + x * Math.sin(a);
    }
  }
  return out;
}

const ropeOf = (spec: TinyModelSpec) => ropeParamsFromConfig(specToHfConfig(spec));

function model(overrides: Partial<TinyModelSpec> = {}): { spec: TinyModelSpec; weights: TinyWeights } {
  const spec = tinySpec(overrides);
  return { spec, weights: buildWeights(spec) };
}

// Scaling variants whose invFreq differ from the default on the tiny spec's headDim 16:
// original_max_position_embeddings is small so llama3 and yarn rescale most frequencies.
const scalings: Record<string, RopeScaling> = {
  linear: { rope_type: 'linear', factor: 4 },
  llama3: { rope_type: 'llama3', factor: 8, low_freq_factor: 1, high_freq_factor: 4, original_max_position_embeddings: 64 },
  yarn: { rope_type: 'yarn', factor: 4, original_max_position_embeddings: 64 },
};

describe('masks', () => {
  it('causalMask lets a token see itself and everything before it', () => {
    expect(table(causalMask(), 3)).toEqual(['100', '110', '111']);
  });

  it('blockMask confines non-final blocks to themselves and opens the final block to everything before', () => {
    // blocks: tokens 0-1, 2-4, final 5-6
    expect(table(blockMask([2, 3, 2]), 7)).toEqual([
      '1000000',
      '1100000',
      '0010000',
      '0011000',
      '0011100',
      '1111110',
      '1111111',
    ]);
  });

  it('sharedPrefixMask lets every passage see the prefix but not the other passages', () => {
    // prefix 0-1, passages 2-3 and 4-5, final 6-7
    expect(table(sharedPrefixMask(2, [2, 2, 2]), 8)).toEqual([
      '10000000',
      '11000000',
      '11100000',
      '11110000',
      '11001000',
      '11001100',
      '11111110',
      '11111111',
    ]);
  });

  it('degenerate cases: an empty prefix is blockMask, a single block is causal', () => {
    expect(table(sharedPrefixMask(0, [2, 3, 2]), 7)).toEqual(table(blockMask([2, 3, 2]), 7));
    expect(table(blockMask([5]), 5)).toEqual(table(causalMask(), 5));
    expect(table(sharedPrefixMask(3, [2]), 5)).toEqual(table(causalMask(), 5));
  });

  it('refuses empty or non-integer blocks and indices outside the blocks', () => {
    expect(() => blockMask([])).toThrow(RangeError);
    expect(() => blockMask([2, 0, 1])).toThrow(RangeError);
    expect(() => blockMask([1.5])).toThrow(RangeError);
    expect(() => sharedPrefixMask(-1, [2])).toThrow(RangeError);
    expect(() => blockMask([2, 2])(4, 0)).toThrow(RangeError);
    expect(() => sharedPrefixMask(1, [2])(0, 3)).toThrow(RangeError);
  });
});

describe('referenceForward', () => {
  it('returns logits per token and [kvHeads, N, headDim] keys and values per layer, all finite', () => {
    const { spec, weights } = model();
    const n = 6;
    const result = referenceForward(spec, weights, tokens(n, 1), range(0, n), causalMask());
    expect(result.logits).toHaveLength(n);
    for (const row of result.logits) expect(row).toHaveLength(spec.vocabSize);
    expect(result.keys).toHaveLength(spec.layers);
    expect(result.values).toHaveLength(spec.layers);
    for (const layer of [...result.keys, ...result.values]) {
      expect(layer).toHaveLength(spec.kvHeads * n * spec.headDim);
      expect(layer.every(Number.isFinite)).toBe(true);
    }
    expect(result.logits.every((row) => row.every(Number.isFinite))).toBe(true);
  });

  it('is causal: appending tokens leaves the logits and KV of the prefix unchanged', () => {
    const { spec, weights } = model();
    const ids = tokens(12, 2);
    const short = referenceForward(spec, weights, ids.slice(0, 7), range(0, 7), causalMask());
    const long = referenceForward(spec, weights, ids, range(0, 12), causalMask());
    expect(maxAbsDiffAll(short.logits, long.logits.slice(0, 7))).toBeLessThan(SAME);
    for (let l = 0; l < spec.layers; l++) {
      expect(maxAbsDiff(short.keys[l], tokenSlice(long.keys[l], 12, spec.headDim, 0, 7))).toBeLessThan(SAME);
      expect(maxAbsDiff(short.values[l], tokenSlice(long.values[l], 12, spec.headDim, 0, 7))).toBeLessThan(SAME);
    }
  });

  it('the mask matters: block attention changes the final block logits (the tests below can tell masks apart)', () => {
    const { spec, weights } = model();
    const ids = tokens(10, 3);
    const causal = referenceForward(spec, weights, ids, range(0, 10), causalMask());
    const block = referenceForward(spec, weights, ids, range(0, 10), blockMask([4, 3, 3]));
    expect(maxAbsDiffAll(causal.logits.slice(7), block.logits.slice(7))).toBeGreaterThan(DIFFERENT);
    // the first block sees the same tokens either way
    expect(maxAbsDiffAll(causal.logits.slice(0, 4), block.logits.slice(0, 4))).toBeLessThan(SAME);
  });

  it('refuses a query that attends to nothing and mismatched inputs', () => {
    const { spec, weights } = model();
    expect(() => referenceForward(spec, weights, [1, 2], [0, 1], (q, k) => k < q)).toThrow(/attends to no token/);
    expect(() => referenceForward(spec, weights, [1, 2], [0], causalMask())).toThrow(RangeError);
    expect(() => referenceForward(spec, weights, [spec.vocabSize], [0], causalMask())).toThrow(RangeError);
    expect(() => referenceForward(spec, weights, [1], [0], causalMask(), [1])).toThrow(RangeError);
  });

  it('logitsFor computes only the requested rows, equal to the full pass', () => {
    const { spec, weights } = model();
    const ids = tokens(8, 4);
    const full = referenceForward(spec, weights, ids, range(0, 8), causalMask());
    const last = referenceForward(spec, weights, ids, range(0, 8), causalMask(), [7, 2]);
    expect(last.logits.map((row) => row.length)).toEqual([0, 0, spec.vocabSize, 0, 0, 0, 0, spec.vocabSize]);
    expect(maxAbsDiff(last.logits[7], full.logits[7])).toBe(0);
    expect(maxAbsDiff(last.logits[2], full.logits[2])).toBe(0);
    expect(maxAbsDiffAll(last.keys, full.keys)).toBe(0);
  });
});

describe('block attention and re-encoding', () => {
  const variants: [string, Partial<TinyModelSpec>][] = [
    ['default RoPE', {}],
    ['partial rotary', { partialRotaryFactor: 0.5 }],
    ['llama3 scaling', { ropeScaling: scalings.llama3 }],
    ['yarn scaling (attention factor in the keys)', { ropeScaling: scalings.yarn }],
    ['qwen2 with GQA 4:1', { arch: 'qwen2', kvHeads: 1 }],
  ];

  it.each(variants)('%s: a non-final block is its own tokens computed alone at 0..L-1, rotated by its offset', (_name, overrides) => {
    const { spec, weights } = model(overrides);
    const rope = ropeOf(spec);
    const passage = tokens(5, 7);
    const question = tokens(3, 8);
    // two different first blocks of the same length before the passage
    const before = [tokens(6, 9), tokens(6, 10)];
    const n = 6 + 5 + 3;
    const runs = before.map((first) =>
      referenceForward(spec, weights, [...first, ...passage, ...question], range(0, n), blockMask([6, 5, 3])),
    );
    const alone = referenceForward(spec, weights, passage, range(0, 5), causalMask());
    for (let l = 0; l < spec.layers; l++) {
      const keysIn = runs.map((run) => tokenSlice(run.keys[l], n, spec.headDim, 6, 5));
      const valuesIn = runs.map((run) => tokenSlice(run.values[l], n, spec.headDim, 6, 5));
      // independent of what precedes it
      expect(maxAbsDiff(keysIn[0], keysIn[1])).toBeLessThan(SAME);
      expect(maxAbsDiff(valuesIn[0], valuesIn[1])).toBeLessThan(SAME);
      // equal to the block alone, keys re-encoded by the offset 6, values untouched
      expect(maxAbsDiff(keysIn[0], rotateKeys(alone.keys[l], rope, 6))).toBeLessThan(SAME);
      expect(maxAbsDiff(valuesIn[0], alone.values[l])).toBeLessThan(SAME);
      // and the rotation is not a no-op
      expect(maxAbsDiff(keysIn[0], alone.keys[l])).toBeGreaterThan(DIFFERENT);
    }
    // the final block does see the first block
    expect(maxAbsDiffAll(runs[0].logits.slice(11), runs[1].logits.slice(11))).toBeGreaterThan(DIFFERENT);
  });

  it('shared prefix: a passage depends on the prefix only, at whatever positions it is given', () => {
    const { spec, weights } = model();
    const prefix = tokens(4, 11);
    const passages = [tokens(3, 12), tokens(3, 13)];
    const question = tokens(2, 14);
    const n = 4 + 3 + 3 + 2;
    const mask = sharedPrefixMask(4, [3, 3, 2]);
    const full = referenceForward(spec, weights, [...prefix, ...passages[0], ...passages[1], ...question], range(0, n), mask);
    // the second passage after the prefix alone, causal, with a gap in positions where the first passage was
    const pair = referenceForward(spec, weights, [...prefix, ...passages[1]], [...range(0, 4), ...range(7, 3)], causalMask());
    // another first passage changes nothing for the second
    const other = referenceForward(spec, weights, [...prefix, ...tokens(3, 15), ...passages[1], ...question], range(0, n), mask);
    for (let l = 0; l < spec.layers; l++) {
      const second = tokenSlice(full.keys[l], n, spec.headDim, 7, 3);
      expect(maxAbsDiff(second, tokenSlice(pair.keys[l], 7, spec.headDim, 4, 3))).toBeLessThan(SAME);
      expect(maxAbsDiff(second, tokenSlice(other.keys[l], n, spec.headDim, 7, 3))).toBeLessThan(SAME);
      const secondValues = tokenSlice(full.values[l], n, spec.headDim, 7, 3);
      expect(maxAbsDiff(secondValues, tokenSlice(pair.values[l], 7, spec.headDim, 4, 3))).toBeLessThan(SAME);
    }
  });
});

describe('RoPE', () => {
  it.each([['default', null] as const, ...Object.entries(scalings)])(
    '%s: shifting every position by the same amount changes the keys but not the logits (RoPE is relative)',
    (_name, ropeScaling) => {
      const { spec, weights } = model({ ropeScaling });
      const ids = tokens(8, 20);
      const atZero = referenceForward(spec, weights, ids, range(0, 8), blockMask([3, 5]));
      const shifted = referenceForward(spec, weights, ids, range(100, 8), blockMask([3, 5]));
      expect(maxAbsDiffAll(atZero.logits, shifted.logits)).toBeLessThan(SAME);
      expect(maxAbsDiffAll(atZero.keys, shifted.keys)).toBeGreaterThan(DIFFERENT);
      expect(maxAbsDiffAll(atZero.values, shifted.values)).toBeLessThan(SAME);
    },
  );

  it('partial rotary: dimensions beyond rotaryDim do not change with position, the others do', () => {
    const { spec, weights } = model({ partialRotaryFactor: 0.5 });
    const rope = ropeOf(spec);
    expect(rope.rotaryDim).toBe(spec.headDim / 2);
    const ids = tokens(6, 21);
    const a = referenceForward(spec, weights, ids, range(0, 6), causalMask());
    const b = referenceForward(spec, weights, ids, range(37, 6), causalMask());
    const dims = (layer: Float64Array, from: number, to: number) =>
      layer.filter((_, i) => i % spec.headDim >= from && i % spec.headDim < to);
    for (let l = 0; l < spec.layers; l++) {
      const [rotated, passed] = [[0, rope.rotaryDim], [rope.rotaryDim, spec.headDim]];
      expect(maxAbsDiff(dims(a.keys[l], passed[0], passed[1]), dims(b.keys[l], passed[0], passed[1]))).toBeLessThan(SAME);
      expect(maxAbsDiff(dims(a.keys[l], rotated[0], rotated[1]), dims(b.keys[l], rotated[0], rotated[1]))).toBeGreaterThan(DIFFERENT);
    }
  });

  it.each(Object.entries(scalings))(
    '%s: keys differ from default RoPE except at position 0, where only yarn scales them by its attention factor',
    (name, ropeScaling) => {
      const plain = model();
      const scaled = model({ ropeScaling });
      // same shapes and seed, so the same weights: only the rotation differs
      expect(scaled.weights.embed).toEqual(plain.weights.embed);
      const factor = ropeOf(scaled.spec).attentionFactor;
      if (name === 'yarn') expect(factor).toBeGreaterThan(1.01);
      else expect(factor).toBe(1);
      const ids = tokens(6, 22);
      const positions = [0, 3, 9, 20, 50, 90];
      const a = referenceForward(plain.spec, plain.weights, ids, positions, causalMask());
      const b = referenceForward(scaled.spec, scaled.weights, ids, positions, causalMask());
      const n = ids.length;
      const slice = (layer: Float64Array, from: number, count: number) => tokenSlice(layer, n, plain.spec.headDim, from, count);
      for (let l = 0; l < plain.spec.layers; l++) {
        // token 0 attends only to itself, so its hidden state (attention output = its own value) does
        // not depend on RoPE in any layer, and its key is unrotated at position 0
        const first = slice(a.keys[l], 0, 1).map((v) => v * factor);
        expect(maxAbsDiff(slice(b.keys[l], 0, 1), first)).toBeLessThan(SAME);
        expect(maxAbsDiff(slice(a.keys[l], 1, n - 1), slice(b.keys[l], 1, n - 1))).toBeGreaterThan(DIFFERENT);
      }
    },
  );
});

describe('grouped-query attention and biases', () => {
  /** The same model with every KV head repeated so that each query head has its own copy (kvHeads = heads). */
  function expandKvHeads(spec: TinyModelSpec, weights: TinyWeights): { spec: TinyModelSpec; weights: TinyWeights } {
    const group = spec.heads / spec.kvHeads;
    const { hiddenSize: hidden, headDim } = spec;
    const expandColumns = (w: Float32Array, rows: number) => {
      const out = new Float32Array(rows * spec.heads * headDim);
      for (let r = 0; r < rows; r++) {
        for (let h = 0; h < spec.heads; h++) {
          const g = Math.floor(h / group);
          const from = r * spec.kvHeads * headDim + g * headDim;
          out.set(w.subarray(from, from + headDim), (r * spec.heads + h) * headDim);
        }
      }
      return out;
    };
    return {
      spec: { ...spec, kvHeads: spec.heads },
      weights: {
        ...weights,
        layers: weights.layers.map((layer) => ({
          ...layer,
          k: expandColumns(layer.k, hidden),
          v: expandColumns(layer.v, hidden),
          kBias: layer.kBias && expandColumns(layer.kBias, 1),
          vBias: layer.vBias && expandColumns(layer.vBias, 1),
        })),
      },
    };
  }

  it.each([1, 2])('heads 4 sharing %i KV head(s) equals the same heads each holding a copy', (kvHeads) => {
    const { spec, weights } = model({ arch: 'qwen2', heads: 4, kvHeads });
    const expanded = expandKvHeads(spec, weights);
    const ids = tokens(7, 30);
    const grouped = referenceForward(spec, weights, ids, range(0, 7), blockMask([3, 4]));
    const full = referenceForward(expanded.spec, expanded.weights, ids, range(0, 7), blockMask([3, 4]));
    expect(grouped.keys[0]).toHaveLength(kvHeads * 7 * spec.headDim);
    expect(full.keys[0]).toHaveLength(4 * 7 * spec.headDim);
    expect(maxAbsDiffAll(grouped.logits, full.logits)).toBeLessThan(SAME);
  });

  it('kvHeads 4 of 4 (plain multi-head attention) runs', () => {
    const { spec, weights } = model({ heads: 4, kvHeads: 4 });
    const result = referenceForward(spec, weights, tokens(5, 31), range(0, 5), causalMask());
    expect(result.keys[1]).toHaveLength(4 * 5 * spec.headDim);
    expect(result.logits[4].every(Number.isFinite)).toBe(true);
  });

  it('qwen2 q/k/v biases change the result', () => {
    const { spec, weights } = model({ arch: 'qwen2' });
    const unbiased = { ...weights, layers: weights.layers.map(({ qBias: _q, kBias: _k, vBias: _v, ...rest }) => rest) };
    const ids = tokens(5, 32);
    const withBias = referenceForward(spec, weights, ids, range(0, 5), causalMask());
    const without = referenceForward(spec, unbiased, ids, range(0, 5), causalMask());
    expect(maxAbsDiffAll(withBias.keys, without.keys)).toBeGreaterThan(DIFFERENT);
    expect(maxAbsDiffAll(withBias.values, without.values)).toBeGreaterThan(DIFFERENT);
    expect(maxAbsDiffAll(withBias.logits, without.logits)).toBeGreaterThan(DIFFERENT);
  });
});

describe('determinism and loading', () => {
  it('the same spec and seed give identical logits; another seed gives different ones', () => {
    const ids = tokens(5, 40);
    const run = (seed: number) => {
      const { spec, weights } = model({ seed });
      return referenceForward(spec, weights, ids, range(0, 5), causalMask());
    };
    expect(run(3).logits).toEqual(run(3).logits);
    expect(maxAbsDiffAll(run(3).logits, run(4).logits)).toBeGreaterThan(DIFFERENT);
  });

  it('loadReferenceModel rebuilds spec and weights from config.json alone', () => {
    const dir = mkdtempSync(join(tmpdir(), 'quire-reference-'));
    try {
      const spec = tinySpec({ arch: 'qwen2', seed: 7, kvHeads: 1, ropeScaling: scalings.yarn, partialRotaryFactor: 0.5 });
      writeFileSync(join(dir, 'config.json'), JSON.stringify(specToHfConfig(spec), null, 2));
      const loaded = loadReferenceModel(dir);
      expect(loaded.spec).toEqual(spec);
      const weights = buildWeights(spec);
      expect(loaded.weights).toEqual(weights);
      const ids = tokens(4, 41);
      expect(referenceForward(loaded.spec, loaded.weights, ids, range(0, 4), causalMask()).logits).toEqual(
        referenceForward(spec, weights, ids, range(0, 4), causalMask()).logits,
      );

      const { quire_generator: _spec, ...plainConfig } = specToHfConfig(spec);
      writeFileSync(join(dir, 'config.json'), JSON.stringify(plainConfig));
      expect(() => loadReferenceModel(dir)).toThrow(/quire_generator/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('agreement with transformers', () => {
  // The tests above check properties (causality, block independence, RoPE relativity, GQA sharing)
  // that a wrong constant would still satisfy: a score scale of 1/headDim, a missing RMSNorm eps,
  // SiLU vs GELU, yarn's factor or attention factor. The pins (test/tools/transformers-cases.ts) come
  // from test/tools/transformers-reference.py, a separate numpy float64 transliteration of
  // transformers' eager Llama/Qwen2 path (modeling_rope_utils' llama3/yarn frequencies and attention
  // factor, rotate_half, repeat_kv, additive -inf mask, partial rotary as in Phi-3/NeoX), run on the
  // same buildWeights output; it agrees with the pins to 1.4e-14 and with referenceForward to 3.2e-14
  // on every logit, key and value. Re-run it after changing the oracle, the spec or the weights:
  //   npx tsx test/tools/dump-weights.ts /tmp/quire-transformers.json
  //   /usr/bin/python3 test/tools/transformers-reference.py /tmp/quire-transformers.json
  // (numpy: Debian's python3-numpy; not part of npm test.) Tolerance 1e-9: float64 summation order
  // differs, nothing else.
  const cases = TRANSFORMERS_CASES.map(({ name, overrides, pinned }) => [name, overrides, pinned] as const);
  it.each(cases)('%s: the last token logits match', (_name, overrides, pinned) => {
    const { spec, weights } = model(overrides);
    const { ids, positions, blockLengths, last } = TRANSFORMERS_INPUT;
    const result = referenceForward(spec, weights, ids, positions, blockMask(blockLengths), [last]);
    expect(maxAbsDiff(result.logits[last].subarray(0, pinned.length), pinned)).toBeLessThan(SAME);
  });
});
