// IEEE 754 half precision <-> float32, on raw bits (onnxruntime-node exposes float16 tensors as Uint16Array).
const f32 = new Float32Array(1);
const u32 = new Uint32Array(f32.buffer);

function decodeHalf(h: number): number {
  const sign = h & 0x8000 ? -1 : 1;
  const exp = (h >> 10) & 0x1f;
  const frac = h & 0x3ff;
  if (exp === 0) return sign * frac * 2 ** -24;
  if (exp === 0x1f) return frac ? NaN : sign * Infinity;
  return sign * (1 + frac / 1024) * 2 ** (exp - 15);
}

// All 65536 halves decoded once, at load (a millisecond): a table lookup is several times faster
// than decoding per element, and a plain constant (no lazy check) lets V8 inline the lookup in the
// RoPE hot loop, which halves its time.
/** Every half's float32 value, by its bits. */
const HALF_TO_FLOAT32 = Float32Array.from({ length: 65536 }, (_, h) => decodeHalf(h));

export function float16ToFloat32(h: number): number {
  return HALF_TO_FLOAT32[h & 0xffff];
}

/** Round to nearest, ties to even; overflow to infinity; NaN stays NaN. */
export function float32ToFloat16(value: number): number {
  f32[0] = value;
  const x = u32[0];
  // Fast path (RoPE re-encoding rounds every rotated key through here): magnitudes in the normal
  // half range [2^-14, 2^16). Rebias the exponent, then add 0xfff plus the kept lsb so that the carry
  // rounds to nearest even; a carry out of the mantissa bumps the exponent, up to infinity (65520+).
  const abs = x & 0x7fffffff;
  if (abs >= 0x38800000 && abs < 0x47800000) {
    return ((x >>> 16) & 0x8000) | ((abs - 0x38000000 + 0xfff + ((abs >>> 13) & 1)) >>> 13);
  }
  const sign = (x >>> 16) & 0x8000;
  const exp = (x >>> 23) & 0xff;
  let mant = x & 0x7fffff;
  if (exp === 0xff) return sign | 0x7c00 | (mant ? 0x200 : 0);
  const e = exp - 127 + 15;
  if (e >= 0x1f) return sign | 0x7c00;
  if (e <= 0) {
    if (e < -10) return sign;
    mant |= 0x800000;
    const shift = 14 - e;
    let half = mant >>> shift;
    const rem = mant & ((1 << shift) - 1);
    const mid = 1 << (shift - 1);
    if (rem > mid || (rem === mid && half & 1)) half++;
    return sign | half;
  }
  let half = (e << 10) | (mant >>> 13);
  const rem = mant & 0x1fff;
  if (rem > 0x1000 || (rem === 0x1000 && half & 1)) half++;
  return sign | half; // a carry into the exponent is correct, including overflow to infinity
}

/**
 * Widens src[from..from + dest.length) to float32 into `dest` (whose bits `destBits` views), as
 * float16ToFloat32 does. Normal halves (all but zero, subnormals, infinities and NaN) are rebiased on
 * their bits, which keeps the 256 KiB table out of the cache in the common case: RoPE re-encoding
 * of float16 caches widens through here, about twice as fast as a table lookup per value.
 */
export function widenFromFloat16(src: Uint16Array, from: number, dest: Float32Array, destBits: Uint32Array): void {
  for (let i = 0; i < dest.length; i++) {
    const h = src[from + i];
    const exponent = h & 0x7c00;
    if (exponent !== 0 && exponent !== 0x7c00) destBits[i] = ((h & 0x8000) << 16) | (((h & 0x7fff) << 13) + 0x38000000);
    else dest[i] = HALF_TO_FLOAT32[h];
  }
}

/**
 * Rounds every value of `src` to half (as float32ToFloat16 does), into dest[at..at + src.length).
 * The common case (normal half range) is done inline on the float32 bits of the whole batch, which is
 * several times faster than a call per value (RoPE re-encoding of float16 caches rounds through here).
 */
export function roundToFloat16(
  src: Float32Array,
  dest: Uint16Array,
  at: number,
  /** src's bits (a caller that rounds many batches through one scratch passes its view once). */
  bits = new Uint32Array(src.buffer, src.byteOffset, src.length),
): void {
  for (let i = 0; i < src.length; i++) {
    const x = bits[i];
    const abs = x & 0x7fffffff;
    dest[at + i] =
      abs >= 0x38800000 && abs < 0x47800000 ? ((x >>> 16) & 0x8000) | ((abs - 0x38000000 + 0xfff + ((abs >>> 13) & 1)) >>> 13) : float32ToFloat16(src[i]);
  }
}

export function float16ToFloat32Array(src: Uint16Array): Float32Array {
  const t = HALF_TO_FLOAT32;
  const out = new Float32Array(src.length);
  for (let i = 0; i < src.length; i++) out[i] = t[src[i]];
  return out;
}

export function float32ToFloat16Array(src: Float32Array): Uint16Array {
  const out = new Uint16Array(src.length);
  for (let i = 0; i < src.length; i++) out[i] = float32ToFloat16(src[i]);
  return out;
}
