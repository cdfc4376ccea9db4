import { describe, expect, it } from 'vitest';
import {
  concatKv,
  convertKv,
  emptyKv,
  kvByteLength,
  kvShapeOf,
  sliceKv,
  type KvCache,
  type KvDtype,
  type KvShape,
} from '../native-models/kv.ts';
import {
  float16ToFloat32,
  float16ToFloat32Array,
  float32ToFloat16,
  float32ToFloat16Array,
  roundToFloat16,
  widenFromFloat16,
} from '../native-models/float16.ts';
import { seededRandom } from '../native-models/seeded-random.ts';

function randomKv(dtype: KvDtype, tokens: number, seed: number): KvCache {
  const random = seededRandom(seed);
  const shape: KvShape = { dtype, layers: 2, kvHeads: 3, headDim: 4 };
  const tensor = () => {
    const f = Float32Array.from({ length: shape.kvHeads * tokens * shape.headDim }, () => random() * 8 - 4);
    return dtype === 'float16' ? float32ToFloat16Array(f) : f;
  };
  return {
    ...shape,
    tokens,
    keys: Array.from({ length: shape.layers }, tensor),
    values: Array.from({ length: shape.layers }, tensor),
  };
}

/** Element (layer, head, token, dim) of the keys, read through the documented [kvHeads, tokens, headDim] layout. */
function keyAt(kv: KvCache, layer: number, head: number, token: number, dim: number): number {
  return kv.keys[layer][(head * kv.tokens + token) * kv.headDim + dim];
}

describe('sliceKv / concatKv', () => {
  for (const dtype of ['float32', 'float16'] as const) {
    it(`${dtype}: slicing into parts and concatenating them gives the cache back`, () => {
      const kv = randomKv(dtype, 7, 1);
      const parts = [sliceKv(kv, 0, 3), sliceKv(kv, 3, 3), sliceKv(kv, 3, 7)];
      expect(parts.map((p) => p.tokens)).toEqual([3, 0, 4]);
      const joined = concatKv(parts);
      expect(joined).toEqual(kv);
      expect(joined.keys[0]).toBeInstanceOf(dtype === 'float16' ? Uint16Array : Float32Array);
    });

    it(`${dtype}: a slice of a concatenation is the part it came from`, () => {
      const a = randomKv(dtype, 2, 2);
      const b = randomKv(dtype, 5, 3);
      const joined = concatKv([a, b]);
      expect(joined.tokens).toBe(7);
      expect(sliceKv(joined, 0, 2)).toEqual(a);
      expect(sliceKv(joined, 2, 7)).toEqual(b);
    });
  }

  it('slices own their buffers', () => {
    const kv = randomKv('float32', 4, 4);
    const part = sliceKv(kv, 1, 3);
    const before = keyAt(kv, 0, 0, 1, 0);
    part.keys[0][0] = 1234;
    expect(keyAt(kv, 0, 0, 1, 0)).toBe(before);
  });

  it('concatenation order is prompt order, per head', () => {
    const a = randomKv('float32', 2, 5);
    const b = randomKv('float32', 3, 6);
    const ab = concatKv([a, b]);
    const ba = concatKv([b, a]);
    expect(ab).not.toEqual(ba);
    // Token t of b sits after a's tokens in every head (the token axis is inside the head axis).
    for (let h = 0; h < 3; h++) {
      for (let t = 0; t < 3; t++) expect(keyAt(ab, 1, h, 2 + t, 3)).toBe(keyAt(b, 1, h, t, 3));
      for (let t = 0; t < 2; t++) expect(keyAt(ba, 1, h, 3 + t, 3)).toBe(keyAt(a, 1, h, t, 3));
    }
  });

  it('rejects mismatched shapes and out-of-range slices', () => {
    const kv = randomKv('float32', 3, 7);
    const otherHeadDim: KvCache = { ...kv, headDim: 2, keys: kv.keys, values: kv.values };
    expect(() => concatKv([kv, otherHeadDim])).toThrow(/shape mismatch/);
    expect(() => concatKv([kv, randomKv('float16', 3, 8)])).toThrow(/shape mismatch/);
    expect(() => concatKv([kv], { ...kv, layers: 3 })).toThrow(/shape mismatch/);
    expect(() => concatKv([])).toThrow(/nothing to concatenate/);
    expect(() => sliceKv(kv, 2, 4)).toThrow(RangeError);
    expect(() => sliceKv(kv, -1, 2)).toThrow(RangeError);
    expect(() => sliceKv(kv, 2, 1)).toThrow(RangeError);
  });

  it('an empty list with a shape gives an empty cache', () => {
    const shape: KvShape = { dtype: 'float16', layers: 2, kvHeads: 1, headDim: 8 };
    expect(concatKv([], shape)).toEqual(emptyKv(shape));
    const kv = randomKv('float16', 3, 9);
    expect(concatKv([emptyKv(kvShapeOf(kv)), kv, emptyKv(kvShapeOf(kv))])).toEqual(kv);
  });

  it('counts bytes: 2 (K, V) x layers x heads x tokens x headDim x element size', () => {
    expect(kvByteLength(randomKv('float16', 5, 10))).toBe(2 * 2 * 3 * 5 * 4 * 2);
    expect(kvByteLength(randomKv('float32', 5, 10))).toBe(2 * 2 * 3 * 5 * 4 * 4);
  });

  it('convertKv rounds float32 to float16 and widens back exactly', () => {
    const kv = randomKv('float32', 4, 11);
    const half = convertKv(kv, 'float16');
    expect(half.dtype).toBe('float16');
    expect(half.keys[1]).toEqual(float32ToFloat16Array(kv.keys[1] as Float32Array));
    expect(convertKv(convertKv(half, 'float32'), 'float16')).toEqual(half);
    expect(convertKv(kv, 'float32')).toBe(kv);
  });
});

describe('float16', () => {
  const isNaNHalf = (h: number) => (h & 0x7c00) === 0x7c00 && (h & 0x3ff) !== 0;

  it('every half survives half -> float32 -> half, NaNs stay NaN (payloads are not kept)', () => {
    const all = Uint16Array.from({ length: 65536 }, (_, h) => h);
    const widened = float16ToFloat32Array(all);
    const back = float32ToFloat16Array(widened);
    for (let h = 0; h < 65536; h++) {
      if (isNaNHalf(h)) {
        expect(Number.isNaN(widened[h])).toBe(true);
        expect(isNaNHalf(back[h])).toBe(true);
      } else if (back[h] !== h || float16ToFloat32(h) !== widened[h]) {
        expect.unreachable(`half 0x${h.toString(16)} came back as 0x${back[h].toString(16)}`);
      }
    }
  });

  it('decodes the landmarks', () => {
    expect(float16ToFloat32(0x3c00)).toBe(1);
    expect(float16ToFloat32(0xc000)).toBe(-2);
    expect(float16ToFloat32(0x7bff)).toBe(65504);
    expect(float16ToFloat32(0x0400)).toBe(2 ** -14);
    expect(float16ToFloat32(0x0001)).toBe(2 ** -24);
    expect(float16ToFloat32(0x03ff)).toBe(1023 * 2 ** -24);
    expect(Object.is(float16ToFloat32(0x8000), -0)).toBe(true);
    expect(float16ToFloat32(0xfc00)).toBe(-Infinity);
  });

  it('rounds to nearest, ties to even', () => {
    const ulpAtOne = 2 ** -10;
    expect(float32ToFloat16(1 + ulpAtOne / 2)).toBe(0x3c00); // tie, 0x3c00 is even: down
    expect(float32ToFloat16(1 + (3 * ulpAtOne) / 2)).toBe(0x3c02); // tie, 0x3c01 is odd: up
    expect(float32ToFloat16(1 + ulpAtOne / 2 + 2 ** -20)).toBe(0x3c01); // just above the tie: up
    expect(float32ToFloat16(1 + ulpAtOne / 2 - 2 ** -20)).toBe(0x3c00); // just below: down
    expect(float32ToFloat16(-(1 + (3 * ulpAtOne) / 2))).toBe(0xbc02);
    expect(float32ToFloat16(2 - ulpAtOne / 4)).toBe(0x4000); // carry out of the mantissa into the exponent
  });

  it('overflows to infinity past the largest half (65504), NaN stays NaN', () => {
    expect(float32ToFloat16(65504)).toBe(0x7bff);
    expect(float32ToFloat16(65519)).toBe(0x7bff); // below the midpoint 65520
    expect(float32ToFloat16(65520)).toBe(0x7c00); // the tie goes to the even neighbour, which is infinity
    expect(float32ToFloat16(1e6)).toBe(0x7c00);
    expect(float32ToFloat16(-1e6)).toBe(0xfc00);
    expect(float32ToFloat16(Infinity)).toBe(0x7c00);
    expect(float32ToFloat16(-Infinity)).toBe(0xfc00);
    expect(isNaNHalf(float32ToFloat16(NaN))).toBe(true);
  });

  it('widenFromFloat16 (batched, as RoPE re-encoding widens) gives what float16ToFloat32 gives for every half', () => {
    const all = Uint16Array.from({ length: 65536 }, (_, h) => h);
    const dest = new Float32Array(65536 - 3);
    widenFromFloat16(all, 3, dest, new Uint32Array(dest.buffer));
    const mismatches = Array.from(dest, (_, i) => i).filter((i) => !Object.is(dest[i], float16ToFloat32(i + 3)));
    expect(mismatches).toEqual([]);
  });

  it('roundToFloat16 (batched, as RoPE re-encoding rounds) gives what float32ToFloat16 gives for every float32 bit pattern class', () => {
    // one value per float32 exponent and sign, with random mantissas, plus every tie and edge above
    const random = seededRandom(11);
    const bits = new Uint32Array(200_000);
    for (let i = 0; i < bits.length; i++) bits[i] = ((random() * 2 ** 32) >>> 0) & (i % 3 === 0 ? 0xffffffff : 0xffffe000 | (i % 2 ? 0x1000 : 0));
    const values = new Float32Array(bits.buffer);
    const edges = Float32Array.from([0, -0, 2 ** -24, 2 ** -25, 3 * 2 ** -25, 2 ** -14, 65504, 65519, 65520, 1e6, -1e6, Infinity, -Infinity, NaN, 1e-45]);
    for (const src of [values, edges]) {
      const dest = new Uint16Array(src.length + 3).fill(0xabcd);
      roundToFloat16(src, dest, 2);
      expect(dest[0]).toBe(0xabcd); // writes only dest[at..at + n)
      expect(dest[src.length + 2]).toBe(0xabcd);
      const expected = Uint16Array.from(src, (v) => float32ToFloat16(v));
      const mismatches = Array.from(src, (_, i) => i).filter((i) => !(dest[i + 2] === expected[i] || (isNaNHalf(dest[i + 2]) && isNaNHalf(expected[i]))));
      expect(mismatches).toEqual([]);
    }
  });

  it('rounds into and out of the subnormal range', () => {
    const tiny = 2 ** -24; // smallest subnormal half
    expect(float32ToFloat16(tiny)).toBe(0x0001);
    expect(float32ToFloat16(tiny / 2)).toBe(0x0000); // tie with 0: even
    expect(float32ToFloat16(tiny / 2 + 2 ** -40)).toBe(0x0001);
    expect(float32ToFloat16((3 * tiny) / 2)).toBe(0x0002); // tie between 1 and 2: even
    expect(float32ToFloat16(tiny / 4)).toBe(0x0000);
    expect(float32ToFloat16(2 ** -30)).toBe(0x0000);
    expect(float32ToFloat16(1e-45)).toBe(0x0000); // a float32 subnormal
    expect(float32ToFloat16(-tiny / 4)).toBe(0x8000); // keeps the sign
    expect(float32ToFloat16(1023.5 * tiny)).toBe(0x0400); // largest subnormal's tie rounds up to the smallest normal
    expect(float32ToFloat16(1022.5 * tiny)).toBe(0x03fe);
    expect(float32ToFloat16(2 ** -14)).toBe(0x0400);
    expect(float32ToFloat16(-0)).toBe(0x8000);
  });

  it('returns the nearest half (ties to even) for random float32 bit patterns', () => {
    // Independent of the encoder's bit tricks: decode the result and its neighbours in float64.
    const random = seededRandom(12);
    const f = new Float32Array(1);
    const u = new Uint32Array(f.buffer);
    for (let i = 0; i < 100_000; i++) {
      // Exponents spread over the half range and a little beyond (2^-27 .. 2^17).
      const exponent = 100 + Math.floor(random() * 45);
      u[0] = ((random() < 0.5 ? 0x80000000 : 0) | (exponent << 23) | Math.floor(random() * 0x800000)) >>> 0;
      const v = f[0];
      const h = float32ToFloat16(v);
      const got = float16ToFloat32(h);
      if (!Number.isFinite(got)) {
        expect(Math.abs(v)).toBeGreaterThanOrEqual(65520);
        continue;
      }
      if (Math.abs(v) >= 65520) expect.unreachable(`${v} should overflow to infinity`);
      // Neighbours in magnitude, within the same sign and the finite range.
      const magnitude = h & 0x7fff;
      const neighbours = [magnitude - 1, magnitude + 1].filter((n) => n >= 0 && n <= 0x7bff);
      const err = Math.abs(v - got);
      for (const n of neighbours) {
        const neighbour = float16ToFloat32((h & 0x8000) | n);
        const other = Math.abs(v - neighbour);
        if (other < err || (other === err && (h & 1) === 1)) {
          expect.unreachable(`${v} -> 0x${h.toString(16)} (${got}), but ${neighbour} is nearer or the even tie`);
        }
      }
    }
  });
});
