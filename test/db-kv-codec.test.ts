import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Engine } from '../native-models/engine.ts';
import type { KvCache } from '../native-models/kv.ts';
import type { KvData } from '../native-models/kv.ts';
import { float16ToFloat32, float16ToFloat32Array, float32ToFloat16 } from '../native-models/float16.ts';
import {
  decodeKv,
  encodeKv,
  FP16_RELATIVE_ERROR,
  KV_HEADER_BYTES,
  kvBlobBytes,
  KvCodecError,
  kvPayloadBytes,
  readKvHeader,
  type KvCodec,
} from '../db/kv-codec.ts';
import { randomKv, rng } from './fixtures/db-random-kv.ts';

const shape = { layers: 3, kvHeads: 2, headDim: 8, tokens: 5 };

function allHalves(): KvCache {
  // Every one of the 65536 half bit patterns (NaNs, infinities, subnormals, -0) in one cache.
  const n = 2 * 4096 * 8;
  const k = new Uint16Array(n / 2);
  const v = new Uint16Array(n / 2);
  for (let i = 0; i < 32768; i++) {
    k[i] = i;
    v[i] = i + 32768;
  }
  return { dtype: 'float16', layers: 1, kvHeads: 2, headDim: 8, tokens: 2048, keys: [k], values: [v] };
}

describe('kv codec: float16', () => {
  it('round-trips float16 caches bit-exactly, every half bit pattern included', () => {
    for (const kv of [allHalves(), randomKv({ dtype: 'float16', ...shape }, 1)]) {
      const blob = encodeKv(kv, 'float16');
      expect(blob.byteLength).toBe(KV_HEADER_BYTES + kvPayloadBytes('float16', kv));
      const back = decodeKv(blob);
      expect(back.dtype).toBe('float16');
      expect({ ...back, keys: [], values: [] }).toEqual({ ...kv, keys: [], values: [] });
      for (let l = 0; l < kv.layers; l++) {
        expect(Buffer.from((back.keys[l] as Uint16Array).buffer, back.keys[l].byteOffset, back.keys[l].byteLength)).toEqual(
          Buffer.from((kv.keys[l] as Uint16Array).buffer, kv.keys[l].byteOffset, kv.keys[l].byteLength),
        );
        expect(Array.from(back.values[l])).toEqual(Array.from(kv.values[l]));
      }
    }
  });

  it('decodes from an odd offset inside a larger buffer (copying, not misaligned views)', () => {
    const kv = randomKv({ dtype: 'float16', ...shape }, 2);
    const blob = encodeKv(kv);
    const padded = Buffer.alloc(blob.byteLength + 1);
    blob.copy(padded, 1);
    expect(Array.from(decodeKv(padded.subarray(1)).keys[2])).toEqual(Array.from(kv.keys[2]));
  });

  it('stores float32 caches as float16 within 2^-11 relative error and gives float32 back', () => {
    const kv = randomKv({ dtype: 'float32', ...shape }, 3, 100);
    const back = decodeKv(encodeKv(kv, 'float16'));
    expect(back.dtype).toBe('float32');
    let worst = 0;
    for (let l = 0; l < kv.layers; l++) {
      const a = kv.keys[l] as Float32Array;
      const b = back.keys[l] as Float32Array;
      for (let i = 0; i < a.length; i++) {
        // Below 2^-14 halves are subnormal: the bound there is absolute, 2^-25.
        const err = Math.abs(a[i] - b[i]);
        const bound = Math.abs(a[i]) >= 2 ** -14 ? Math.abs(a[i]) * FP16_RELATIVE_ERROR : 2 ** -25;
        expect(err).toBeLessThanOrEqual(bound);
        if (Math.abs(a[i]) >= 2 ** -14) worst = Math.max(worst, err / Math.abs(a[i]));
      }
    }
    // The bound is tight: random values get close to it (not all exactly representable).
    expect(worst).toBeGreaterThan(FP16_RELATIVE_ERROR / 2);
  });

  it('refuses float32 values that would overflow float16 instead of storing infinity', () => {
    const kv = randomKv({ dtype: 'float32', ...shape }, 4);
    (kv.values[1] as Float32Array)[3] = 70000;
    expect(() => encodeKv(kv, 'float16')).toThrow(RangeError);
    (kv.values[1] as Float32Array)[3] = 65504; // the largest half: fine
    expect(Array.from(decodeKv(encodeKv(kv)).values[1]).at(3)).toBe(65504);
  });

  it('can decode to the other dtype on request', () => {
    const kv = randomKv({ dtype: 'float16', ...shape }, 5);
    const f32 = decodeKv(encodeKv(kv), { dtype: 'float32' });
    expect(f32.keys[0]).toBeInstanceOf(Float32Array);
    expect(Array.from(f32.keys[0])).toEqual(Array.from(float16ToFloat32Array(kv.keys[0] as Uint16Array)));
  });
});

/** Keys with outlier channels and an offset (as real keys have), values plain; float32. */
function realisticKv(seed: number, s = { layers: 2, kvHeads: 2, headDim: 16, tokens: 32 }): KvCache {
  const next = rng(seed);
  const tensor = (outliers: boolean) => {
    const t = new Float32Array(s.kvHeads * s.tokens * s.headDim);
    for (let i = 0; i < t.length; i++) {
      const channel = i % s.headDim;
      const big = outliers && (channel === 3 || channel === 11) ? 20 : 1;
      t[i] = (next() * 2 - 1) * big + (outliers ? channel / 8 : 0);
    }
    return t;
  };
  return {
    dtype: 'float32',
    ...s,
    keys: Array.from({ length: s.layers }, () => tensor(true)),
    values: Array.from({ length: s.layers }, () => tensor(false)),
  };
}

const LEVELS = { int8: 255, int4: 15 } as const;
const GRID = 2 ** -14;

/**
 * Largest |x - decoded| / bound over a cache, where the bound is computed here, in float64, from
 * the groups' ranges (keys: per (head, channel) over each key group's tokens; values: per (head,
 * token) row): half the step of the range, widened by the grid and float16 rounding of min and step
 * that the codec allows (kv-grouped.ts), plus the float32 (or float16) rounding of the decoded value.
 */
function worstErrorRatio(kv: KvCache, back: KvCache, codec: 'int8' | 'int4', keyGroups = 1): number {
  const { kvHeads: H, tokens: T, headDim: D } = kv;
  // key group of token t: runs [floor(g T / n), floor((g + 1) T / n))
  const keyGroup = (t: number) => {
    let g = 0;
    while (Math.floor(((g + 1) * T) / keyGroups) <= t) g++;
    return g;
  };
  const value = (t: KvData, i: number) => (t instanceof Uint16Array ? float16ToFloat32(t[i]) : t[i]);
  const relative = back.dtype === 'float16' ? 2 ** -11 : 2 ** -24;
  let worst = 0;
  for (const [orig, dec, perChannel] of [
    [kv.keys, back.keys, true],
    [kv.values, back.values, false],
  ] as const) {
    for (let l = 0; l < kv.layers; l++) {
      const lo = new Map<number, number>();
      const hi = new Map<number, number>();
      const group = (h: number, t: number, d: number) => (perChannel ? (keyGroup(t) * H + h) * D + d : h * T + t);
      for (let h = 0; h < H; h++)
        for (let t = 0; t < T; t++)
          for (let d = 0; d < D; d++) {
            const g = group(h, t, d);
            const x = value(orig[l], (h * T + t) * D + d);
            lo.set(g, Math.min(lo.get(g) ?? Infinity, x));
            hi.set(g, Math.max(hi.get(g) ?? -Infinity, x));
          }
      for (let h = 0; h < H; h++)
        for (let t = 0; t < T; t++)
          for (let d = 0; d < D; d++) {
            const i = (h * T + t) * D + d;
            const g = group(h, t, d);
            const [min, max] = [lo.get(g)!, hi.get(g)!];
            const step = ((max - min + GRID + Math.abs(min) * 2 ** -10) / LEVELS[codec] + GRID) * (1 + 2 ** -10);
            const y = value(dec[l], i);
            const bound = step / 2 + Math.abs(y) * relative;
            worst = Math.max(worst, Math.abs(value(orig[l], i) - y) / bound);
          }
    }
  }
  return worst;
}

describe('kv codecs: int8 and int4 (grouped: keys per channel, values per token)', () => {
  for (const codec of ['int8', 'int4'] as const) {
    it(`${codec}: every element within half a step of its group, from float32, decoded to float32 and to float16`, () => {
      const kv = realisticKv(6);
      const blob = encodeKv(kv, codec);
      expect(blob.byteLength).toBe(KV_HEADER_BYTES + kvPayloadBytes(codec, kv));
      const back = decodeKv(blob);
      expect(back.dtype).toBe('float32');
      const ratio = worstErrorRatio(kv, back, codec);
      expect(ratio).toBeLessThanOrEqual(1);
      // The bound is tight: random data comes close to half a step somewhere.
      expect(ratio).toBeGreaterThan(0.9);
      expect(worstErrorRatio(kv, decodeKv(blob, { dtype: 'float16' }), codec)).toBeLessThanOrEqual(1);
    });

    it(`${codec}: float16 caches come back as float16 within half a step plus half rounding`, () => {
      const kv = randomKv({ dtype: 'float16', ...shape, tokens: 40 }, 8);
      for (const t of [...kv.keys, ...kv.values]) for (let i = 0; i < t.length; i++) t[i] &= 0xbfff; // |x| < 2
      const back = decodeKv(encodeKv(kv, codec));
      expect(back.dtype).toBe('float16');
      expect(worstErrorRatio(kv, back, codec)).toBeLessThanOrEqual(1);
    });

    it(`${codec}: float16 output is the float32 output rounded to nearest even, bit for bit`, () => {
      // Groups that cross zero, sit far from it, are tiny (below the grid) or constant, and an odd
      // head dim (rows padded to 8 in the blob): every path of the kernels.
      const s = { layers: 1, kvHeads: 3, headDim: 12, tokens: 21 };
      const kv = realisticKv(9, s);
      const keys = kv.keys[0] as Float32Array;
      const values = kv.values[0] as Float32Array;
      for (let i = 0; i < keys.length; i++) if (i % s.headDim === 5) keys[i] = 1000 + (i % 7) * 0.001; // far from 0, narrow
      for (let i = 0; i < values.length; i++) {
        const row = Math.floor(i / s.headDim);
        if (row % 4 === 1) values[i] *= 1e-5; // below 2^-14: levels on the grid only
        if (row % 4 === 2) values[i] = 0.3; // constant
      }
      const blob = encodeKv(kv, codec);
      const f32 = decodeKv(blob, { dtype: 'float32' });
      const f16 = decodeKv(blob, { dtype: 'float16' });
      for (const [a, b] of [
        [f32.keys[0], f16.keys[0]],
        [f32.values[0], f16.values[0]],
      ]) {
        expect(Array.from(b)).toEqual(Array.from(a, (x) => float32ToFloat16(x)));
      }
      // Decoded values are 0 or normal halves (the grid); a constant group comes back within half a grid step.
      for (const x of [...f32.keys[0], ...f32.values[0]]) expect(x === 0 || Math.abs(x) >= 2 ** -14).toBe(true);
      for (const x of f32.values[0].subarray(2 * s.headDim, 3 * s.headDim)) expect(Math.abs(x - 0.3)).toBeLessThanOrEqual(2 ** -15);
      expect(worstErrorRatio(kv, f32, codec)).toBeLessThanOrEqual(1);
    });

    it(`${codec}: splits blocks longer than 512 tokens into equal key groups, and stores blocks of no tokens`, () => {
      const kv = realisticKv(10, { layers: 2, kvHeads: 1, headDim: 8, tokens: 1100 }); // key groups of 366, 367, 367 tokens
      for (const t of kv.keys) for (let i = 366 * 8; i < t.length; i++) t[i] *= 1e-2; // later groups: much smaller steps
      const back = decodeKv(encodeKv(kv, codec));
      expect(worstErrorRatio(kv, back, codec, 3)).toBeLessThanOrEqual(1);
      expect(back.tokens).toBe(1100);
      const empty = realisticKv(11, { layers: 2, kvHeads: 2, headDim: 8, tokens: 0 });
      expect(decodeKv(encodeKv(empty, codec))).toMatchObject({ tokens: 0, layers: 2, keys: [expect.any(Float32Array), expect.any(Float32Array)] });
    });

    it(`${codec}: refuses values it cannot store instead of storing something else`, () => {
      for (const bad of [NaN, Infinity, 70000, -65504.5]) {
        const kv = realisticKv(12);
        (kv.values[1] as Float32Array)[7] = bad;
        expect(() => encodeKv(kv, codec)).toThrow(RangeError);
      }
      const kv = realisticKv(13);
      (kv.keys[0] as Float32Array)[0] = 65504; // storable alone, but the levels above the group's min would pass it
      expect(() => encodeKv(kv, codec)).toThrow(/float16 limit/);
    });
  }

  it('per-channel key groups beat per-token ones on keys with outlier channels (why keys are grouped so)', () => {
    const kv = realisticKv(7);
    const keysAsValues: KvCache = { ...kv, keys: kv.values, values: kv.keys }; // keys quantised per token
    const err = (t: KvData, u: KvData) => Array.from(t).reduce((sum, x, i) => sum + (x - u[i]) ** 2, 0);
    const perChannel = err(kv.keys[0], decodeKv(encodeKv(kv, 'int4')).keys[0]);
    const perToken = err(kv.keys[0], decodeKv(encodeKv(keysAsValues, 'int4')).values[0]);
    expect(perChannel).toBeLessThan(perToken);
  });

  it('stores a realistic block in 0.52x (int8) and 0.27x (int4) of float16, headers included', () => {
    const ratio = (codec: KvCodec, d: typeof shape) => kvBlobBytes(codec, d) / kvBlobBytes('float16', d);
    // Qwen2.5-0.5B's KV shape, 256 tokens. int8 cannot reach 0.5x: its codes alone are exactly half
    // of float16, and each group adds a 4-byte min/step (values: one per 64 elements).
    const qwen = { layers: 24, kvHeads: 2, headDim: 64, tokens: 256 };
    expect(ratio('int8', qwen)).toBeLessThanOrEqual(0.52);
    expect(ratio('int4', qwen)).toBeLessThanOrEqual(0.27);
    // int4 keeps within 0.27x from 230 tokens at head dim 64 (the 4 bytes of each key group weigh
    // less the longer the block), and at head dim 128 from 83 tokens.
    const from = (headDim: number) => {
      let t = 1;
      while (ratio('int4', { ...qwen, headDim, tokens: t }) > 0.27) t++;
      return t;
    };
    expect(from(64)).toBe(230);
    expect(from(128)).toBe(83);
    // Tiny blocks (stories260K: head dim 8, 64 tokens): per-row value groups of 8 elements weigh.
    const tiny = { layers: 5, kvHeads: 4, headDim: 8, tokens: 64 };
    expect(ratio('int8', tiny)).toBeCloseTo(0.641, 3);
    expect(ratio('int4', tiny)).toBeCloseTo(0.391, 3);
    // The blob is what kvBlobBytes says.
    expect(encodeKv(realisticKv(14, { ...tiny, layers: 1 }), 'int4').byteLength).toBe(kvBlobBytes('int4', { ...tiny, layers: 1 }));
  });
});

describe('kv codecs on real KV (stories260K, a trained model)', () => {
  // Its keys and values for a few story sentences, as the engine's prefill returns them (float32).
  let caches: KvCache[];
  beforeAll(async () => {
    const engine = await Engine.load(path.resolve('../shared/fixtures/stories260k-llama2c'), { provider: 'cpu' });
    try {
      const sentences = [
        'Once upon a time, there was a little girl named Lily. She loved to play outside in the park.',
        'One day, a big dog came to the garden. The dog was happy and wanted to play with the ball.',
      ];
      caches = [];
      for (const text of sentences) caches.push(await engine.prefill(engine.tokenizer.encode(text, { bos: true })));
    } finally {
      await engine.release();
    }
  });
  afterAll(() => {
    caches = [];
  });

  it('float16 keeps every value within 2^-11 relative error', () => {
    for (const kv of caches) {
      expect(kv.dtype).toBe('float32');
      const back = decodeKv(encodeKv(kv, 'float16'));
      kv.keys.forEach((t, l) => {
        for (let i = 0; i < t.length; i++) expect(Math.abs(t[i] - back.keys[l][i])).toBeLessThanOrEqual(Math.abs(t[i]) * FP16_RELATIVE_ERROR + 2 ** -25);
      });
    }
  });

  for (const codec of ['int8', 'int4'] as const) {
    it(`${codec} keeps every value within half a step of its group, as float32 and as float16`, () => {
      for (const kv of caches) {
        const blob = encodeKv(kv, codec);
        expect(worstErrorRatio(kv, decodeKv(blob), codec)).toBeLessThanOrEqual(1);
        expect(worstErrorRatio(kv, decodeKv(blob, { dtype: 'float16' }), codec)).toBeLessThanOrEqual(1);
      }
    });
  }
});

describe('kv codec: malformed blobs', () => {
  const blob = encodeKv(randomKv({ dtype: 'float16', ...shape }, 10));

  it('reads the header it wrote', () => {
    expect(readKvHeader(blob)).toEqual({
      codec: 'float16',
      dtype: 'float16',
      ...shape,
      payloadBytes: blob.byteLength - KV_HEADER_BYTES,
      keyGroupTokens: 0,
    });
  });

  it.each([
    ['truncated', () => blob.subarray(0, blob.byteLength - 2)],
    ['too short for a header', () => blob.subarray(0, 10)],
    ['bad magic', () => Buffer.concat([Buffer.from('XKVB'), blob.subarray(4)])],
    ['future version', () => { const b = Buffer.from(blob); b.writeUInt16LE(9, 4); return b; }],
    ['unknown codec', () => { const b = Buffer.from(blob); b[6] = 7; return b; }],
    ['shape disagrees with length', () => { const b = Buffer.from(blob); b.writeUInt32LE(6, 20); return b; }],
    ['float16 with a key group', () => { const b = Buffer.from(blob); b.writeUInt32LE(512, 28); return b; }],
    ['int4 without a key group', () => { const b = Buffer.from(encodeKv(realisticKv(15), 'int4')); b.writeUInt32LE(0, 28); return b; }],
    ['int8 cut short', () => encodeKv(realisticKv(16), 'int8').subarray(0, -4)],
  ])('rejects a blob that is %s', (_, make) => {
    expect(() => decodeKv(make())).toThrow(KvCodecError);
  });

  it('rejects blobs of the retired int8-channel/int8-token codecs, so the store recomputes them', () => {
    // As the first int8 codecs wrote them: codec 1 or 2, float32 scales then int8 values.
    for (const id of [1, 2]) {
      const old = Buffer.alloc(KV_HEADER_BYTES + 2 * 3 * (id === 1 ? 2 * 8 : 2 * 5) * 4 + 2 * 3 * 2 * 5 * 8);
      old.set(blob.subarray(0, KV_HEADER_BYTES));
      old[6] = id;
      old.writeUInt32LE(old.byteLength - KV_HEADER_BYTES, 24);
      expect(() => decodeKv(old)).toThrow(/int8-(channel|token) is no longer read/);
    }
  });

  it('rejects caches whose tensors do not match their shape', () => {
    const kv = randomKv({ dtype: 'float16', ...shape }, 11);
    expect(() => encodeKv({ ...kv, tokens: 6 })).toThrow(KvCodecError);
    expect(() => encodeKv({ ...kv, dtype: 'float32' })).toThrow(KvCodecError);
  });
});
