import { describe, expect, it } from 'vitest';
import type { KvCache } from '../native-models/kv.ts';
import { float16ToFloat32, float16ToFloat32Array } from '../native-models/float16.ts';
import { decodeKv, encodeKv, FP16_RELATIVE_ERROR, KV_HEADER_BYTES, KvCodecError, kvPayloadBytes, readKvHeader } from '../db/kv-codec.ts';
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

/** Keys with outlier channels (as real keys have), values plain. */
function realisticKv(seed: number): KvCache {
  const next = rng(seed);
  const s = { layers: 2, kvHeads: 2, headDim: 16, tokens: 32 };
  const tensor = (outliers: boolean) => {
    const t = new Float32Array(s.kvHeads * s.tokens * s.headDim);
    for (let i = 0; i < t.length; i++) {
      const channel = i % s.headDim;
      const big = outliers && (channel === 3 || channel === 11) ? 20 : 1;
      t[i] = (next() * 2 - 1) * big;
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

describe('kv codec: int8', () => {
  for (const codec of ['int8-channel', 'int8-token'] as const) {
    it(`${codec}: every element within scale/2 of the original, scale = group max / 127`, () => {
      const kv = realisticKv(6);
      const blob = encodeKv(kv, codec);
      expect(blob.byteLength).toBe(KV_HEADER_BYTES + kvPayloadBytes(codec, kv));
      // The point of the option: at the bench shape (256 tokens, head dim 64) int8 plus its
      // float32 scales is about half of float16 (1 + 4/64 bytes per element at worst).
      const bench = { layers: 24, kvHeads: 2, headDim: 64, tokens: 256 };
      expect(kvPayloadBytes(codec, bench) / kvPayloadBytes('float16', bench)).toBeLessThan(0.54);
      const back = decodeKv(blob);
      const { kvHeads: H, tokens: T, headDim: D } = kv;
      for (const [orig, dec] of [
        [kv.keys, back.keys],
        [kv.values, back.values],
      ] as const) {
        for (let l = 0; l < kv.layers; l++) {
          const a = orig[l] as Float32Array;
          const b = dec[l] as Float32Array;
          const groupMax = new Map<number, number>();
          const group = (h: number, t: number, d: number) => (codec === 'int8-channel' ? h * D + d : h * T + t);
          for (let h = 0; h < H; h++)
            for (let t = 0; t < T; t++)
              for (let d = 0; d < D; d++) {
                const g = group(h, t, d);
                groupMax.set(g, Math.max(groupMax.get(g) ?? 0, Math.abs(a[(h * T + t) * D + d])));
              }
          for (let h = 0; h < H; h++)
            for (let t = 0; t < T; t++)
              for (let d = 0; d < D; d++) {
                const i = (h * T + t) * D + d;
                const scale = groupMax.get(group(h, t, d))! / 127;
                // scale/2 from rounding to an integer; the 1e-6 relative slack covers float32
                // rounding of the stored scale and of q * scale (each <= 2^-24 relative).
                expect(Math.abs(a[i] - b[i])).toBeLessThanOrEqual((scale / 2) * (1 + 1e-6) + 1e-12);
              }
        }
      }
    });
  }

  it('per-channel scales beat per-token scales on keys with outlier channels', () => {
    const kv = realisticKv(7);
    const err = (codec: 'int8-channel' | 'int8-token') => {
      const back = decodeKv(encodeKv(kv, codec));
      let sum = 0;
      const a = kv.keys[0] as Float32Array;
      const b = back.keys[0] as Float32Array;
      for (let i = 0; i < a.length; i++) sum += (a[i] - b[i]) ** 2;
      return sum;
    };
    expect(err('int8-channel')).toBeLessThan(err('int8-token'));
  });

  it('float16 caches through int8 come back as float16 within scale/2 plus half rounding', () => {
    const kv = randomKv({ dtype: 'float16', ...shape }, 8);
    for (const t of [...kv.keys, ...kv.values]) for (let i = 0; i < t.length; i++) t[i] &= 0xbfff; // |x| < 2
    const back = decodeKv(encodeKv(kv, 'int8-token'));
    expect(back.dtype).toBe('float16');
    const a = kv.keys[0] as Uint16Array;
    const b = back.keys[0] as Uint16Array;
    const D = kv.headDim;
    for (let row = 0; row < a.length / D; row++) {
      let max = 0;
      for (let d = 0; d < D; d++) max = Math.max(max, Math.abs(float16ToFloat32(a[row * D + d])));
      for (let d = 0; d < D; d++) {
        const x = float16ToFloat32(a[row * D + d]);
        const y = float16ToFloat32(b[row * D + d]);
        expect(Math.abs(x - y)).toBeLessThanOrEqual((max / 127 / 2) * (1 + 1e-6) + Math.abs(y) * 2 ** -11 + 2 ** -25);
      }
    }
  });

  it('refuses non-finite values', () => {
    const kv = realisticKv(9);
    (kv.keys[0] as Float32Array)[0] = NaN;
    expect(() => encodeKv(kv, 'int8-channel')).toThrow(RangeError);
  });
});

describe('kv codec: malformed blobs', () => {
  const blob = encodeKv(randomKv({ dtype: 'float16', ...shape }, 10));

  it('reads the header it wrote', () => {
    expect(readKvHeader(blob)).toEqual({ codec: 'float16', dtype: 'float16', ...shape, payloadBytes: blob.byteLength - KV_HEADER_BYTES });
  });

  it.each([
    ['truncated', () => blob.subarray(0, blob.byteLength - 2)],
    ['too short for a header', () => blob.subarray(0, 10)],
    ['bad magic', () => Buffer.concat([Buffer.from('XKVB'), blob.subarray(4)])],
    ['future version', () => { const b = Buffer.from(blob); b.writeUInt16LE(9, 4); return b; }],
    ['unknown codec', () => { const b = Buffer.from(blob); b[6] = 7; return b; }],
    ['shape disagrees with length', () => { const b = Buffer.from(blob); b.writeUInt32LE(6, 20); return b; }],
  ])('rejects a blob that is %s', (_, make) => {
    expect(() => decodeKv(make())).toThrow(KvCodecError);
  });

  it('rejects caches whose tensors do not match their shape', () => {
    const kv = randomKv({ dtype: 'float16', ...shape }, 11);
    expect(() => encodeKv({ ...kv, tokens: 6 })).toThrow(KvCodecError);
    expect(() => encodeKv({ ...kv, dtype: 'float32' })).toThrow(KvCodecError);
  });
});
