import { readFileSync } from 'node:fs';
import path from 'node:path';
import ort from 'onnxruntime-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { float32ToFloat16Array } from '../native-models/float16.ts';
import { kvShapeOf, type KvCache, type KvData, type KvDtype } from '../native-models/kv.ts';
import { rotateKeys, rotateKeysInPlace } from '../native-models/rope.ts';
import { ropeParamsFromConfig, type RopeLayout, type RopeParams } from '../native-models/rope-config.ts';
import { seededRandom } from '../native-models/seeded-random.ts';
import { kvToFloat64, maxAbs, maxAbsDiffKv } from './helpers/compare.ts';

const LAYERS = 2;
const KV_HEADS = 2;
const TOKENS = 5;

function randomKv(dtype: KvDtype, headDim: number, seed: number): KvCache {
  const random = seededRandom(seed);
  const tensor = (): KvData => {
    const f = Float32Array.from({ length: KV_HEADS * TOKENS * headDim }, () => random() * 4 - 2);
    return dtype === 'float16' ? float32ToFloat16Array(f) : f;
  };
  return {
    dtype,
    layers: LAYERS,
    kvHeads: KV_HEADS,
    headDim,
    tokens: TOKENS,
    keys: Array.from({ length: LAYERS }, tensor),
    values: Array.from({ length: LAYERS }, tensor),
  };
}

/** Plain RoPE parameters for head dim 64 (theta 10000), in either layout. */
function rope64(layout: RopeLayout = 'rotate-half', extra: Record<string, unknown> = {}): RopeParams {
  return ropeParamsFromConfig({ num_attention_heads: 4, hidden_size: 256, rope_theta: 10000, ...extra }, layout);
}

/** The re-encoding formula evaluated directly in float64, from the parameters' own invFreq. */
function rotateReference(keys: KvData, rope: RopeParams, delta: number): Float64Array {
  const x = kvToFloat64(keys);
  const out = Float64Array.from(x);
  const half = rope.rotaryDim / 2;
  for (let row = 0; row < x.length; row += rope.headDim) {
    for (let m = 0; m < half; m++) {
      const [a, b] = pairOf(rope, rope.layout === 'interleaved' ? 2 * m : m).map((dim) => row + dim);
      const angle = delta * rope.invFreq[m];
      out[a] = x[a] * Math.cos(angle) - x[b] * Math.sin(angle);
      out[b] = x[b] * Math.cos(angle) + x[a] * Math.sin(angle);
    }
  }
  return out;
}

/** Dims (within a head) of the rotation pair that dim `dim` belongs to. */
function pairOf(rope: RopeParams, dim: number): [number, number] {
  const half = rope.rotaryDim / 2;
  if (rope.layout === 'interleaved') return [dim - (dim % 2), dim - (dim % 2) + 1];
  return dim < half ? [dim, dim + half] : [dim - half, dim];
}

// One float32 rotation rounds cos and sin to float32 (relative 2^-24 each) and each result once to
// float32 (2^-24): at most about 3 x 2^-24 = 2e-7 of the pair's norm. Angles are float64, so even
// delta = 70000 costs no precision. 1e-6 bounds one rotation; 1e-5 bounds a chain of three (about
// 6e-7) with tenfold margin, and is still far below any real error (a wrong angle moves keys by ~1).
const ONE_ROTATION_F32 = 1e-6;
const COMPOSED_F32 = 1e-5;

describe('rotateKeys (float32)', () => {
  const kv = randomKv('float32', 64, 1);
  const scale = maxAbs(kv.keys[0]);

  it('rotating by a then by b equals rotating by a + b', () => {
    for (const layout of ['rotate-half', 'interleaved'] as const) {
      const rope = rope64(layout);
      for (const [a, b] of [[37, 1200], [-500, 3], [5000, 70000], [1, -1]]) {
        const twice = rotateKeys(rotateKeys(kv, rope, a), rope, b);
        const once = rotateKeys(kv, rope, a + b);
        for (let l = 0; l < LAYERS; l++) {
          expect(maxAbsDiffKv(twice.keys[l], once.keys[l])).toBeLessThan(COMPOSED_F32 * scale);
        }
      }
    }
  });

  it('rotating by d then by -d restores the keys', () => {
    const rope = rope64();
    for (const d of [1, 256, 40000]) {
      const back = rotateKeys(rotateKeys(kv, rope, d), rope, -d);
      expect(maxAbsDiffKv(back.keys[1], kv.keys[1])).toBeLessThan(COMPOSED_F32 * scale);
    }
  });

  it('matches the formula in float64, and the two layouts differ', () => {
    const byLayout = (['rotate-half', 'interleaved'] as const).map((layout) => {
      const rope = rope64(layout);
      const moved = rotateKeys(kv, rope, 123);
      for (let l = 0; l < LAYERS; l++) {
        expect(maxAbsDiffKv(moved.keys[l], rotateReference(kv.keys[l], rope, 123))).toBeLessThan(ONE_ROTATION_F32 * scale);
      }
      return moved;
    });
    expect(maxAbsDiffKv(byLayout[0].keys[0], byLayout[1].keys[0])).toBeGreaterThan(0.1);
  });

  it('leaves values, and the keys of a zero move, as they were; returns new key buffers', () => {
    const rope = rope64();
    const moved = rotateKeys(kv, rope, 99);
    expect(moved.values).toEqual(kv.values);
    expect(moved.keys[0]).not.toBe(kv.keys[0]);
    expect(maxAbsDiffKv(moved.keys[0], kv.keys[0])).toBeGreaterThan(0.1);
    expect(rotateKeys(kv, rope, 0).keys).toEqual(kv.keys);
    expect(kvShapeOf(moved)).toEqual(kvShapeOf(kv));
    expect(moved.tokens).toBe(kv.tokens);
  });

  it('in place gives the same keys as the copying version', () => {
    const rope = rope64('interleaved');
    const copy: KvCache = { ...kv, keys: kv.keys.map((k) => k.slice()) };
    rotateKeysInPlace(copy, rope, -77);
    expect(copy.keys).toEqual(rotateKeys(kv, rope, -77).keys);
  });

  it('with partial rotary, turns only the first rotaryDim dims of each head', () => {
    for (const layout of ['rotate-half', 'interleaved'] as const) {
      const rope = rope64(layout, { partial_rotary_factor: 0.25 });
      expect(rope.rotaryDim).toBe(16);
      for (const dtype of ['float32', 'float16'] as const) {
        const input = randomKv(dtype, 64, 2);
        const moved = rotateKeys(input, rope, 500);
        for (let i = 0; i < input.keys[0].length; i++) {
          if (i % 64 >= 16 && moved.keys[0][i] !== input.keys[0][i]) expect.unreachable(`dim ${i % 64} changed`);
        }
        // The leading dims do turn, as the formula says. Keys lie in [-2, 2]: float32 error below
        // 2 x ONE_ROTATION_F32; half precision below an ulp at 2 (2^-9 = 2e-3).
        const tolerance = dtype === 'float16' ? 2 ** -9 : 2 * ONE_ROTATION_F32;
        expect(maxAbsDiffKv(moved.keys[0], rotateReference(input.keys[0], rope, 500))).toBeLessThan(tolerance);
        expect(maxAbsDiffKv(moved.keys[0], input.keys[0])).toBeGreaterThan(0.1);
      }
    }
  });

  it('uses scaled frequencies (linear, llama3, yarn) exactly as given', () => {
    const plain = rope64();
    const scalings = {
      linear: { rope_type: 'linear', factor: 4 },
      llama3: {
        rope_type: 'llama3',
        factor: 8,
        low_freq_factor: 1,
        high_freq_factor: 4,
        original_max_position_embeddings: 8192,
      },
      yarn: { rope_type: 'yarn', factor: 4, original_max_position_embeddings: 32768 },
    };
    for (const [name, rope_scaling] of Object.entries(scalings)) {
      const rope = rope64('rotate-half', { rope_scaling, rope_theta: 500000, max_position_embeddings: 131072 });
      const unscaled = rope64('rotate-half', { rope_theta: 500000 });
      expect(rope.scaling.rope_type, name).toBe(name);
      expect(rope.invFreq, name).not.toEqual(unscaled.invFreq);
      const moved = rotateKeys(kv, rope, 3000);
      expect(maxAbsDiffKv(moved.keys[0], rotateReference(kv.keys[0], rope, 3000)), name).toBeLessThan(ONE_ROTATION_F32 * scale);
      expect(maxAbsDiffKv(moved.keys[0], rotateReference(kv.keys[0], unscaled, 3000)), name).toBeGreaterThan(0.01);
    }
    // Hand-made frequencies are used as they are, too (nothing is recomputed from theta).
    const custom: RopeParams = { ...plain, invFreq: plain.invFreq.map((_, m) => 0.01 * (m + 1)) };
    const moved = rotateKeys(kv, custom, 7);
    expect(maxAbsDiffKv(moved.keys[1], rotateReference(kv.keys[1], custom, 7))).toBeLessThan(ONE_ROTATION_F32 * scale);
  });

  it("does not apply yarn's attention factor: every pair keeps its norm", () => {
    const rope = rope64('rotate-half', {
      rope_scaling: { rope_type: 'yarn', factor: 4, original_max_position_embeddings: 32768 },
    });
    expect(rope.attentionFactor).toBeCloseTo(0.1 * Math.log(4) + 1, 12); // 1.139: applying it would be obvious
    const moved = rotateKeys(kv, rope, 12345);
    const x = kv.keys[0];
    const y = moved.keys[0];
    for (let row = 0; row < x.length; row += 64) {
      for (let m = 0; m < 32; m++) {
        const before = Math.hypot(x[row + m], x[row + m + 32]);
        const after = Math.hypot(y[row + m], y[row + m + 32]);
        if (Math.abs(after - before) > ONE_ROTATION_F32 * scale) expect.unreachable(`pair norm ${before} became ${after}`);
      }
    }
  });

  it('refuses a mismatched head dim and non-integer moves', () => {
    const rope = rope64();
    expect(() => rotateKeys(randomKv('float32', 32, 3), rope, 1)).toThrow(/head dim/);
    expect(() => rotateKeys(kv, rope, 1.5)).toThrow(RangeError);
    expect(() => rotateKeys(kv, rope, NaN)).toThrow(RangeError);
    expect(() => rotateKeys(kv, { ...rope, rotaryDim: 66 }, 1)).toThrow(/rotary dim/);
    expect(() => rotateKeys({ ...kv, tokens: 6 }, rope, 1)).toThrow(/key buffers/);
  });

  it('with per-layer parameters (Gemma 3 local/global), turns each layer with its own frequencies', () => {
    const local = rope64('rotate-half', { rope_theta: 10_000 });
    const global = rope64('rotate-half', { rope_theta: 1_000_000, rope_scaling: { rope_type: 'linear', factor: 8 } });
    const perLayer: RopeParams = { ...global, layers: [local, global] };
    const moved = rotateKeys(kv, perLayer, 300);
    expect(maxAbsDiffKv(moved.keys[0], rotateReference(kv.keys[0], local, 300))).toBeLessThanOrEqual(ONE_ROTATION_F32 * maxAbs(kv.keys[0]));
    expect(maxAbsDiffKv(moved.keys[1], rotateReference(kv.keys[1], global, 300))).toBeLessThanOrEqual(ONE_ROTATION_F32 * maxAbs(kv.keys[1]));
    // the two layers' rotations really differ
    expect(maxAbsDiffKv(rotateReference(kv.keys[0], local, 300), rotateReference(kv.keys[0], global, 300))).toBeGreaterThan(0.1);
    expect(() => rotateKeys(kv, { ...global, layers: [local] }, 1)).toThrow(/RoPE parameters for 1 layers, but the cache has 2/);
  });
});

describe('rotateKeys (float16)', () => {
  // Half precision keeps 11 significant bits: rounding the result to nearest costs at most half an
  // ulp, 2^-11 relative for normal halves (2^-25 absolute below 2^-14). The float32 rotation before it
  // adds about 3 x 2^-24 of the pair's norm (and rounding twice, float64 -> float32 -> half, can
  // only add to that float32 share). So each element must satisfy
  //   |rotated - exact| <= halfUlp(exact) + 4 * 2^-24 * pairNorm.
  const halfUlp = (y: number) => 2 ** (Math.max(Math.floor(Math.log2(Math.abs(y) || 2 ** -24)), -14) - 11);

  it('is within float16 rounding of the float64 rotation of the same halves', () => {
    for (const layout of ['rotate-half', 'interleaved'] as const) {
      const rope = rope64(layout);
      const kv = randomKv('float16', 64, 4);
      for (const delta of [1, -300, 4096, 100000]) {
        const moved = rotateKeys(kv, rope, delta);
        expect(moved.keys[0]).toBeInstanceOf(Uint16Array);
        for (let l = 0; l < LAYERS; l++) {
          const x = kvToFloat64(kv.keys[l]);
          const exact = rotateReference(kv.keys[l], rope, delta);
          const got = kvToFloat64(moved.keys[l]);
          for (let i = 0; i < got.length; i++) {
            const row = i - (i % 64);
            const [a, b] = pairOf(rope, i % 64).map((dim) => row + dim);
            const bound = halfUlp(exact[i]) + 4 * 2 ** -24 * Math.hypot(x[a], x[b]);
            if (Math.abs(got[i] - exact[i]) > bound) {
              expect.unreachable(`${layout} delta ${delta} element ${i}: ${got[i]} vs ${exact[i]} (bound ${bound})`);
            }
          }
        }
        expect(moved.values).toEqual(kv.values);
      }
    }
  });

  it('round trips d then -d within one ulp of each element', () => {
    const rope = rope64();
    const kv = randomKv('float16', 64, 5);
    const back = rotateKeys(rotateKeys(kv, rope, 2000), rope, -2000);
    const x = kvToFloat64(kv.keys[0]);
    const y = kvToFloat64(back.keys[0]);
    // Two roundings of half an ulp each, at the magnitude of the pair the element shares.
    for (let i = 0; i < x.length; i++) {
      const row = i - (i % 64);
      const [a, b] = pairOf(rope, i % 64).map((dim) => row + dim);
      const pair = Math.hypot(x[a], x[b]);
      if (Math.abs(y[i] - x[i]) > 2 * halfUlp(pair)) expect.unreachable(`element ${i}: ${y[i]} vs ${x[i]}`);
    }
  });
});

describe('rotateKeys on a real float16 export (tiny-llama-fp16-genai)', () => {
  // onnxruntime-genai's builder: 2 layers, 1 KV head, head size 16, keys stored after RotaryEmbedding.
  const dir = path.resolve('../shared/fixtures/tiny-llama-fp16-genai');
  const ids = [1, 450, 4996, 17354, 1701];
  let session: ort.InferenceSession;
  let rope: RopeParams;

  const int64 = (values: number[]) => new ort.Tensor('int64', BigInt64Array.from(values.map(BigInt)), [1, values.length]);

  /** The KV the model stores for `ids` placed at positions start..start+4 (empty past). */
  async function kvAt(start: number): Promise<KvCache> {
    const feeds: Record<string, ort.Tensor> = {
      input_ids: int64(ids),
      attention_mask: int64(ids.map(() => 1)),
      position_ids: int64(ids.map((_, i) => start + i)),
    };
    const emptyPast = () => new ort.Tensor('float16', new Uint16Array(0), [1, 1, 0, 16]);
    for (let l = 0; l < 2; l++) {
      for (const kind of ['key', 'value']) feeds[`past_key_values.${l}.${kind}`] = emptyPast();
    }
    const out = await session.run(feeds);
    const present = (l: number, kind: string) => {
      const t = out[`present.${l}.${kind}`];
      expect(t.dims).toEqual([1, 1, ids.length, 16]);
      expect(t.data).toBeInstanceOf(Uint16Array);
      return t.data as Uint16Array;
    };
    return {
      dtype: 'float16',
      layers: 2,
      kvHeads: 1,
      headDim: 16,
      tokens: ids.length,
      keys: [present(0, 'key'), present(1, 'key')],
      values: [present(0, 'value'), present(1, 'value')],
    };
  }

  beforeAll(async () => {
    session = await ort.InferenceSession.create(path.join(dir, 'model.onnx'));
    rope = ropeParamsFromConfig(JSON.parse(readFileSync(path.join(dir, 'config.json'), 'utf8')));
  });
  afterAll(() => session?.release());

  it('reads theta 10000, rotate-half, full rotary from config.json', () => {
    expect(rope.theta).toBe(10000);
    expect(rope.layout).toBe('rotate-half');
    expect(rope.headDim).toBe(16);
    expect(rope.rotaryDim).toBe(16);
    expect(rope.attentionFactor).toBe(1);
  });

  // Both sides are float16 (half an ulp each, 2^-11 relative) and the model's own cos/sin caches are
  // float16 too. The keys here are below 0.25, so one ulp is 2^-13 = 1.2e-4, which is the largest
  // error seen on x64 for every d. 2e-3 (about 16 ulps) leaves room for CPUs where onnxruntime
  // computes in native float16 (ARM64); a wrong rotation errs by O(|key|) = 0.1, checked below.
  const TOLERANCE = 2e-3;

  for (const d of [7, 100, 1000]) {
    it(`keys computed at positions ${d}.. equal keys computed at 0.. rotated by ${d}`, async () => {
      const [atZero, atD] = [await kvAt(0), await kvAt(d)];
      const moved = rotateKeys(atZero, rope, d);
      for (let l = 0; l < 2; l++) {
        const err = maxAbsDiffKv(moved.keys[l], atD.keys[l]);
        expect(err).toBeLessThan(TOLERANCE);
        // The test has teeth: unmoved keys, or keys moved with the other layout, are far off.
        expect(maxAbsDiffKv(atZero.keys[l], atD.keys[l])).toBeGreaterThan(10 * TOLERANCE);
        expect(maxAbsDiffKv(rotateKeys(atZero, { ...rope, layout: 'interleaved' }, d).keys[l], atD.keys[l])).toBeGreaterThan(
          10 * TOLERANCE,
        );
        // Values carry no position: identical in layer 0, within a float16 step or so in layer 1.
        const values = maxAbsDiffKv(atZero.values[l], atD.values[l]);
        if (l === 0) expect(values).toBe(0);
        else expect(values).toBeLessThanOrEqual(4 * 2 ** -11 * maxAbs(kvToFloat64(atD.values[l])));
      }
    });
  }
});
