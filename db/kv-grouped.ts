// The grouped KV codecs, int8 and int4: asymmetric integer codes with a float16 min and step per
// group, grouped as KIVI does (Liu et al. 2024): keys per channel (their outliers sit in fixed
// channels), values per token (their error matters per token, which attention mixes by weight).
//
// Groups:
// - keys: one group per (head, channel) over the block's tokens, in equal runs of at most
//   KEY_GROUP_TOKENS (512) tokens: a 256-token passage block is one group per channel. Longer groups
//   than KIVI's 32-128 keep the 4-bit codec within 0.27x of float16 (per-group metadata is 4 bytes);
//   a stored block is quantised once, whole, so there is no streaming reason for short groups.
// - values: one group per (head, token) row of headDim elements (KIVI's group of 64 at head dim 64).
//
// Per group: min16 = min rounded down to a float16 multiple of 2^-14, step16 = (max - min16) /
// (2^bits - 1) rounded up to a float16 multiple of 2^-14, so the levels min16 + q * step16
// (q = 0 .. 2^bits - 1) cover [min, max] with an even spacing of step16. Each element stores the
// nearest level, hence
//   |x - decoded| <= step16 / 2 + |decoded| * 2^-24          (float32 cache: float32 rounding)
//   |x - decoded| <= step16 / 2 + |decoded| * 2^-11          (float16 cache: the half rounding)
// (decoded values are 0 or normal halves), where the step is the range's, widened only by rounding:
//   step16 <= ((max - min + 2^-14 + |min| * 2^-10) / (2^bits - 1) + 2^-14) * (1 + 2^-10)
// (min rounded down to the grid, then to a half; the step up to the grid, then to a half).
//
// Payload, per tensor in the order K0 V0 K1 V1 ...: mins (float16 x groups; for keys, each (head,
// group)'s headDim values padded with zeros to a multiple of 8), steps (likewise), codes (rows in
// [head, token] order, each padded to a multiple of 8 elements: int8 one byte an element; int4 4
// bytes per 8 elements, byte j = element j | element j + 4 << 4). Every part is a multiple of 4
// bytes, so all stay 4-byte aligned after the 32-byte header.
import type { KvCache, KvData, KvDtype } from '../native-models/kv.ts';
import { float16ToFloat32, float16ToFloat32Array, float32ToFloat16 } from '../native-models/float16.ts';
import { CHUNK, dequantizeRows, halvesToFloats, simdMemory, type CodeBits } from './kv-simd.ts';

export type GroupedCodec = 'int8' | 'int4';

/** The longest run of tokens that shares a key group. */
export const KEY_GROUP_TOKENS = 512;
const HALF_MAX = 65504;
/** Smallest normal float16: min and step are multiples of it (see groupParams). */
const GRID = 2 ** -14;

export const codeBits = (codec: GroupedCodec): CodeBits => (codec === 'int8' ? 8 : 4);

export interface GroupedDims {
  layers: number;
  kvHeads: number;
  headDim: number;
  tokens: number;
}

/** Key groups per (head, channel): tokens split into equal runs of at most `keyGroupTokens`. */
export const keyGroups = (tokens: number, keyGroupTokens: number) => Math.ceil(tokens / keyGroupTokens);
/** First token of key group g (of n) over `tokens` tokens. */
const groupStart = (g: number, n: number, tokens: number) => Math.floor((g * tokens) / n);

const paddedDim = (headDim: number) => Math.ceil(headDim / CHUNK) * CHUNK;
const rowBytes = (bits: CodeBits, headDim: number) => (paddedDim(headDim) * bits) / 8;

interface TensorLayout {
  /** Groups (each a float16 min and a float16 step). */
  keyParams: number;
  valueParams: number;
  codes: number;
  keyBytes: number;
  valueBytes: number;
}

function layout(codec: GroupedCodec, d: GroupedDims, keyGroupTokens: number): TensorLayout {
  const keyParams = d.kvHeads * keyGroups(d.tokens, keyGroupTokens) * paddedDim(d.headDim);
  const valueParams = d.kvHeads * d.tokens;
  const codes = d.kvHeads * d.tokens * rowBytes(codeBits(codec), d.headDim);
  return { keyParams, valueParams, codes, keyBytes: keyParams * 4 + codes, valueBytes: valueParams * 4 + codes };
}

export function groupedPayloadBytes(codec: GroupedCodec, d: GroupedDims, keyGroupTokens = KEY_GROUP_TOKENS): number {
  const t = layout(codec, d, keyGroupTokens);
  return d.layers * (t.keyBytes + t.valueBytes);
}

// ---- encoding (JS: runs once per block, after a prefill that costs far more) --------------------

function halfAtMost(x: number): number {
  const h = float32ToFloat16(x);
  if (float16ToFloat32(h) <= x) return h;
  if ((h & 0x7fff) === 0) return 0x8001; // below +-0: the smallest negative subnormal
  return h & 0x8000 ? h + 1 : h - 1;
}

function halfAtLeast(x: number): number {
  const h = float32ToFloat16(x);
  if (float16ToFloat32(h) >= x) return h;
  if ((h & 0x7fff) === 0) return 0x0001;
  return h & 0x8000 ? h - 1 : h + 1;
}

/**
 * The float16 min and step of a group spanning [min, max], both multiples of GRID: then every level
 * min16 + q * step16 is 0 or at least 2^-14 in magnitude, a normal half, which lets the decoders
 * skip subnormal rounding. It costs nothing above 2^-4 (halves there are multiples of 2^-14 anyway)
 * and, below, floors the step at 2^-14, an error of at most 2^-15 on values that small.
 */
function groupParams(min: number, max: number, levels: number): { min16: number; step16: number } {
  if (!(Math.abs(min) <= HALF_MAX && Math.abs(max) <= HALF_MAX)) {
    const bad = Number.isNaN(min) ? NaN : Math.abs(min) > Math.abs(max) ? min : max;
    throw new RangeError(`encodeKv: ${bad} is outside what the grouped codecs store (finite, |x| <= 65504)`);
  }
  const min16 = halfAtMost(Math.floor(min / GRID) * GRID);
  const step16 = halfAtLeast(Math.ceil((max - float16ToFloat32(min16)) / levels / GRID) * GRID);
  // The decoders write float16 without overflow checks: the top level must stay a finite half.
  if (Math.fround(float16ToFloat32(min16) + levels * float16ToFloat32(step16)) > HALF_MAX) {
    throw new RangeError(`encodeKv: values up to ${max} are too close to the float16 limit for the grouped codecs`);
  }
  return { min16, step16 };
}

/**
 * Codes of one row: element c gets the level nearest to x, (x - mins[c]) * inverses[c] rounded
 * (x >= min, so + 0.5 and truncation round), written into `q`, a padded row whose padding stays 0.
 */
function quantizeRow(x: Float32Array, from: number, headDim: number, mins: Float64Array, inverses: Float64Array, levels: number, q: Uint8Array): void {
  for (let c = 0; c < headDim; c++) {
    const v = ((x[from + c] - mins[c]) * inverses[c] + 0.5) | 0;
    q[c] = v > levels ? levels : v;
  }
}

/** quantizeRow with one min and step for the whole row (values). */
function quantizeRowAlike(x: Float32Array, from: number, headDim: number, min: number, inverse: number, levels: number, q: Uint8Array): void {
  for (let c = 0; c < headDim; c++) {
    const v = ((x[from + c] - min) * inverse + 0.5) | 0;
    q[c] = v > levels ? levels : v;
  }
}

/** `q` (one padded row of codes) into `out` at `at`: a byte each (int8) or 8 per 4 bytes (int4). */
function packRow(bits: CodeBits, q: Uint8Array, out: Uint8Array, at: number): void {
  if (bits === 8) {
    out.set(q, at);
    return;
  }
  for (let k = 0, o = at; k < q.length; k += CHUNK, o += 4) {
    out[o] = q[k] | (q[k + 4] << 4);
    out[o + 1] = q[k + 1] | (q[k + 5] << 4);
    out[o + 2] = q[k + 2] | (q[k + 6] << 4);
    out[o + 3] = q[k + 3] | (q[k + 7] << 4);
  }
}

/** Checks that every value of x[from, from + count) is a number (NaN would escape min and max). */
function checkNumbers(x: Float32Array, from: number, count: number): void {
  let sum = 0;
  for (let i = from; i < from + count; i++) sum += x[i];
  if (Number.isNaN(sum)) throw new RangeError('encodeKv: NaN cannot be stored by the grouped codecs');
}

function encodeTensor(bits: CodeBits, x: Float32Array, d: GroupedDims, isKey: boolean, keyGroupTokens: number, part: Uint8Array): void {
  const { kvHeads: H, tokens: T, headDim: D } = d;
  const levels = (1 << bits) - 1;
  const Dp = paddedDim(D);
  const params = isKey ? H * keyGroups(T, keyGroupTokens) * Dp : H * T;
  const halves = new Uint16Array(part.buffer, part.byteOffset, 2 * params); // mins, then steps (padding: 0)
  const codes = part.subarray(params * 4);
  const rb = rowBytes(bits, D);
  const q = new Uint8Array(paddedDim(D));
  const mins = new Float64Array(D);
  const inverses = new Float64Array(D);
  checkNumbers(x, 0, x.length);
  const setParams = (i: number, lo: number, hi: number, c: number) => {
    const { min16, step16 } = groupParams(lo, hi, levels);
    halves[i] = min16;
    halves[params + i] = step16;
    mins[c] = float16ToFloat32(min16);
    inverses[c] = step16 === 0 ? 0 : 1 / float16ToFloat32(step16);
  };
  if (isKey) {
    const n = keyGroups(T, keyGroupTokens);
    const lo = new Float64Array(D);
    const hi = new Float64Array(D);
    for (let h = 0; h < H; h++) {
      for (let g = 0; g < n; g++) {
        const t0 = groupStart(g, n, T);
        const t1 = groupStart(g + 1, n, T);
        lo.fill(Infinity);
        hi.fill(-Infinity);
        for (let row = (h * T + t0) * D; row < (h * T + t1) * D; row += D) {
          for (let c = 0; c < D; c++) {
            const v = x[row + c];
            if (v < lo[c]) lo[c] = v;
            if (v > hi[c]) hi[c] = v;
          }
        }
        for (let c = 0; c < D; c++) setParams((h * n + g) * Dp + c, lo[c], hi[c], c);
        for (let t = t0; t < t1; t++) {
          quantizeRow(x, (h * T + t) * D, D, mins, inverses, levels, q);
          packRow(bits, q, codes, (h * T + t) * rb);
        }
      }
    }
  } else {
    for (let r = 0; r < H * T; r++) {
      let lo = Infinity;
      let hi = -Infinity;
      for (let i = r * D; i < (r + 1) * D; i++) {
        const v = x[i];
        if (v < lo) lo = v;
        if (v > hi) hi = v;
      }
      setParams(r, lo, hi, 0);
      quantizeRowAlike(x, r * D, D, mins[0], inverses[0], levels, q);
      packRow(bits, q, codes, r * rb);
    }
  }
}

/** Writes the payload of `kv` into `payload` (groupedPayloadBytes long, 4-byte aligned). */
export function encodeGrouped(codec: GroupedCodec, kv: KvCache, payload: Uint8Array, keyGroupTokens = KEY_GROUP_TOKENS): void {
  const bits = codeBits(codec);
  const t = layout(codec, kv, keyGroupTokens);
  let at = 0;
  for (let l = 0; l < kv.layers; l++) {
    for (const [data, isKey, bytes] of [
      [kv.keys[l], true, t.keyBytes],
      [kv.values[l], false, t.valueBytes],
    ] as const) {
      const x = data instanceof Float32Array ? data : float16ToFloat32Array(data);
      encodeTensor(bits, x, kv, isKey, keyGroupTokens, payload.subarray(at, at + bytes));
      at += bytes;
    }
  }
}

// ---- decoding (Wasm SIMD: the load path of every question) --------------------------------------

/** The cache a grouped payload holds, decoded straight to `dtype`. */
export function decodeGrouped(codec: GroupedCodec, payload: Uint8Array, d: GroupedDims, keyGroupTokens: number, dtype: KvDtype): KvCache {
  const bits = codeBits(codec);
  const t = layout(codec, d, keyGroupTokens);
  const { kvHeads: H, tokens: T, headDim: D } = d;
  const Dp = paddedDim(D);
  const n = keyGroups(T, keyGroupTokens);
  const outBytes = dtype === 'float16' ? 2 : 4;
  const tensorCount = 2 * d.layers;
  const decodedTensor = H * T * Dp * outBytes;

  // Linear memory: [payload][float32 mins and steps of one tensor][every decoded tensor, rows padded to Dp]
  const paramsAt = align16(payload.byteLength);
  const outAt = align16(paramsAt + 2 * Math.max(t.keyParams, t.valueParams) * 4 + 32);
  const memory = simdMemory(outAt + tensorCount * decodedTensor);
  new Uint8Array(memory).set(payload, 0);

  let at = 0;
  for (let i = 0; i < tensorCount; i++) {
    const isKey = i % 2 === 0;
    const params = isKey ? t.keyParams : t.valueParams;
    const codesAt = at + params * 4;
    const stepsAt = paramsAt + params * 4;
    const out = outAt + i * decodedTensor;
    halvesToFloats(at, paramsAt, 2 * params); // mins then steps, as stored
    if (isKey) {
      for (let h = 0; h < H; h++) {
        for (let g = 0; g < n; g++) {
          const t0 = groupStart(g, n, T);
          const row = h * T + t0;
          const where = {
            codes: codesAt + row * rowBytes(bits, D),
            out: out + row * Dp * outBytes,
            mins: paramsAt + (h * n + g) * Dp * 4,
            steps: stepsAt + (h * n + g) * Dp * 4,
          };
          dequantizeRows(bits, 'channel', dtype, where, groupStart(g + 1, n, T) - t0, Dp / CHUNK);
        }
      }
    } else {
      dequantizeRows(bits, 'row', dtype, { codes: codesAt, out, mins: paramsAt, steps: stepsAt }, H * T, Dp / CHUNK);
    }
    at += isKey ? t.keyBytes : t.valueBytes;
  }

  // One copy out of the kernels' memory (which the next decode reuses); rows unpadded if needed.
  const elements = H * T * D;
  let result = memory.slice(outAt, outAt + tensorCount * decodedTensor);
  if (Dp !== D) {
    const Row = dtype === 'float16' ? Uint16Array : Float32Array;
    const padded = new Row(result);
    const packed = new Row(tensorCount * elements);
    for (let r = 0; r < tensorCount * H * T; r++) packed.set(padded.subarray(r * Dp, r * Dp + D), r * D);
    result = packed.buffer;
  }
  const tensor = (i: number): KvData =>
    dtype === 'float16' ? new Uint16Array(result, i * elements * 2, elements) : new Float32Array(result, i * elements * 4, elements);
  return {
    dtype,
    layers: d.layers,
    kvHeads: H,
    headDim: D,
    tokens: T,
    keys: Array.from({ length: d.layers }, (_, l) => tensor(2 * l)),
    values: Array.from({ length: d.layers }, (_, l) => tensor(2 * l + 1)),
  };
}

const align16 = (n: number) => Math.ceil(n / 16) * 16;
