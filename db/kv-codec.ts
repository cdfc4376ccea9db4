// KV caches <-> bytes for storage: a fixed header (shape, source dtype, codec) and the tensors.
// Integrity (checksums) is the store's job; this file only checks that the bytes are well-formed.
//
// Layout, little-endian:
//   0  "QKVB"           magic
//   4  u16 version       1
//   6  u8  codec         0 float16, 1 int8-channel, 2 int8-token
//   7  u8  source dtype  0 float32, 1 float16 (what decodeKv gives back by default)
//   8  u32 layers, 12 u32 kvHeads, 16 u32 headDim, 20 u32 tokens
//   24 u32 payload bytes, 28 u32 reserved (0)
//   32 payload
// float16 payload: K0 V0 K1 V1 ... as raw half bits, each [kvHeads, tokens, headDim].
// int8 payload: every tensor's float32 scales (same order), then every tensor's int8 values; scales
// first so that they stay 4-byte aligned whatever the element count.
//
// Error statement:
// - float16 codec, float16 cache: bit-exact (the half bits are copied).
// - float16 codec, float32 cache: round to nearest even, |error| <= |x| * 2^-11 for |x| >= 2^-14
//   (normal halves) and <= 2^-25 below that; a finite value that would overflow (|x| >= 65520)
//   is refused with a RangeError rather than stored as infinity.
// - int8 codecs: symmetric, scale = max|x| of the group / 127, |error| <= scale / 2 per element
//   (plus float32 rounding of q * scale, <= |x| * 2^-24, and the half rounding above when the
//   cache is float16). Groups: int8-channel = one scale per (head, dim) over all tokens (suits keys,
//   whose outliers sit in fixed channels); int8-token = one scale per (head, token) over head dim.
import os from 'node:os';
import type { KvCache, KvData, KvDtype } from '../native-models/kv.ts';
import { float16ToFloat32Array, float32ToFloat16Array } from '../native-models/float16.ts';

export type KvCodec = 'float16' | 'int8-channel' | 'int8-token';
export const KV_CODECS: readonly KvCodec[] = ['float16', 'int8-channel', 'int8-token'];

export const KV_HEADER_BYTES = 32;
const MAGIC = 0x4256_4b51; // "QKVB" read as a little-endian u32
const VERSION = 1;
const DTYPES: readonly KvDtype[] = ['float32', 'float16'];

/** Largest relative error of storing a float32 value (normal half range) as float16. */
export const FP16_RELATIVE_ERROR = 2 ** -11;

// The fast paths view stored bytes as Uint16Array/Float32Array, which use the host's byte order.
if (os.endianness() !== 'LE') throw new Error('kv-codec: only little-endian hosts are supported');

export class KvCodecError extends Error {
  override name = 'KvCodecError';
}

export interface KvBlobHeader {
  codec: KvCodec;
  /** The dtype of the cache that was encoded. */
  dtype: KvDtype;
  layers: number;
  kvHeads: number;
  headDim: number;
  tokens: number;
  payloadBytes: number;
}

type Dims = Pick<KvCache, 'layers' | 'kvHeads' | 'headDim' | 'tokens'>;

function scalesPerTensor(codec: KvCodec, d: Dims): number {
  if (codec === 'int8-channel') return d.kvHeads * d.headDim;
  if (codec === 'int8-token') return d.kvHeads * d.tokens;
  return 0;
}

/** Payload bytes of a cache of these dimensions under a codec (header not included). */
export function kvPayloadBytes(codec: KvCodec, d: Dims): number {
  const elements = d.kvHeads * d.tokens * d.headDim;
  const tensors = 2 * d.layers;
  if (codec === 'float16') return tensors * elements * 2;
  return tensors * (scalesPerTensor(codec, d) * 4 + elements);
}

function checkCache(kv: KvCache): void {
  const n = kv.kvHeads * kv.tokens * kv.headDim;
  const Want = kv.dtype === 'float16' ? Uint16Array : Float32Array;
  if (kv.keys.length !== kv.layers || kv.values.length !== kv.layers) {
    throw new KvCodecError(`encodeKv: ${kv.keys.length}/${kv.values.length} key/value tensors for ${kv.layers} layers`);
  }
  for (const t of [...kv.keys, ...kv.values]) {
    if (!(t instanceof Want) || t.length !== n) {
      throw new KvCodecError(`encodeKv: a tensor is ${t.constructor.name}[${t.length}], expected ${Want.name}[${n}]`);
    }
  }
}

function tensorsOf(kv: KvCache): KvData[] {
  const out: KvData[] = [];
  for (let l = 0; l < kv.layers; l++) out.push(kv.keys[l], kv.values[l]);
  return out;
}

function asHalves(t: KvData): Uint16Array {
  if (t instanceof Uint16Array) return t;
  const h = float32ToFloat16Array(t);
  for (let i = 0; i < h.length; i++) {
    if ((h[i] & 0x7fff) === 0x7c00 && Number.isFinite(t[i])) {
      throw new RangeError(`encodeKv: ${t[i]} overflows float16; store this cache with an int8 codec or not at all`);
    }
  }
  return h;
}

function asFloats(t: KvData): Float32Array {
  return t instanceof Float32Array ? t : float16ToFloat32Array(t);
}

/** Symmetric int8 of one [heads, tokens, dim] tensor; writes scales and values in place. */
function quantize(x: Float32Array, d: Dims, perChannel: boolean, scales: Float32Array, q: Int8Array): void {
  const { kvHeads: H, tokens: T, headDim: D } = d;
  scales.fill(0);
  for (let i = 0; i < x.length; i++) {
    const v = x[i];
    if (!Number.isFinite(v)) throw new RangeError(`encodeKv: non-finite value ${v} cannot be stored as int8`);
  }
  const group = (h: number, t: number, k: number) => (perChannel ? h * D + k : h * T + t);
  for (let h = 0; h < H; h++) {
    for (let t = 0; t < T; t++) {
      const row = (h * T + t) * D;
      for (let k = 0; k < D; k++) {
        const g = group(h, t, k);
        const a = Math.abs(x[row + k]);
        if (a > scales[g]) scales[g] = a;
      }
    }
  }
  for (let g = 0; g < scales.length; g++) scales[g] = scales[g] / 127; // rounded to float32 on store
  for (let h = 0; h < H; h++) {
    for (let t = 0; t < T; t++) {
      const row = (h * T + t) * D;
      for (let k = 0; k < D; k++) {
        const s = scales[group(h, t, k)];
        const v = s === 0 ? 0 : Math.round(x[row + k] / s);
        q[row + k] = v > 127 ? 127 : v < -127 ? -127 : v;
      }
    }
  }
}

function dequantize(q: Int8Array, d: Dims, perChannel: boolean, scales: Float32Array): Float32Array {
  const { kvHeads: H, tokens: T, headDim: D } = d;
  const out = new Float32Array(q.length);
  for (let h = 0; h < H; h++) {
    for (let t = 0; t < T; t++) {
      const row = (h * T + t) * D;
      for (let k = 0; k < D; k++) out[row + k] = q[row + k] * scales[perChannel ? h * D + k : h * T + t];
    }
  }
  return out;
}

/** The cache as a self-describing blob (header + payload). */
export function encodeKv(kv: KvCache, codec: KvCodec = 'float16'): Buffer {
  checkCache(kv);
  if (!KV_CODECS.includes(codec)) throw new KvCodecError(`encodeKv: unknown codec ${String(codec)}`);
  const payloadBytes = kvPayloadBytes(codec, kv);
  const blob = Buffer.alloc(KV_HEADER_BYTES + payloadBytes);
  blob.writeUInt32LE(MAGIC, 0);
  blob.writeUInt16LE(VERSION, 4);
  blob.writeUInt8(KV_CODECS.indexOf(codec), 6);
  blob.writeUInt8(DTYPES.indexOf(kv.dtype), 7);
  blob.writeUInt32LE(kv.layers, 8);
  blob.writeUInt32LE(kv.kvHeads, 12);
  blob.writeUInt32LE(kv.headDim, 16);
  blob.writeUInt32LE(kv.tokens, 20);
  blob.writeUInt32LE(payloadBytes, 24);
  const tensors = tensorsOf(kv);
  if (codec === 'float16') {
    let at = KV_HEADER_BYTES;
    for (const t of tensors) {
      const h = asHalves(t);
      blob.set(new Uint8Array(h.buffer, h.byteOffset, h.byteLength), at);
      at += h.byteLength;
    }
    return blob;
  }
  const perChannel = codec === 'int8-channel';
  const ns = scalesPerTensor(codec, kv);
  const n = kv.kvHeads * kv.tokens * kv.headDim;
  // Buffer.alloc of this size is not pooled, so its offset is 0 and the float32 view is aligned.
  const scales = new Float32Array(blob.buffer, blob.byteOffset + KV_HEADER_BYTES, ns * tensors.length);
  const values = new Int8Array(blob.buffer, scales.byteOffset + scales.byteLength, n * tensors.length);
  tensors.forEach((t, i) => {
    quantize(asFloats(t), kv, perChannel, scales.subarray(i * ns, (i + 1) * ns), values.subarray(i * n, (i + 1) * n));
  });
  return blob;
}

/** The header of a blob, checked for magic, version, known codec/dtype and exact length. */
export function readKvHeader(blob: Uint8Array): KvBlobHeader {
  if (blob.byteLength < KV_HEADER_BYTES) throw new KvCodecError(`KV blob of ${blob.byteLength} bytes has no header`);
  const view = new DataView(blob.buffer, blob.byteOffset, KV_HEADER_BYTES);
  if (view.getUint32(0, true) !== MAGIC) throw new KvCodecError('KV blob: bad magic');
  const version = view.getUint16(4, true);
  if (version !== VERSION) throw new KvCodecError(`KV blob: format version ${version} is not supported`);
  const codec = KV_CODECS[view.getUint8(6)];
  const dtype = DTYPES[view.getUint8(7)];
  if (!codec || !dtype) throw new KvCodecError(`KV blob: unknown codec ${view.getUint8(6)} or dtype ${view.getUint8(7)}`);
  const header: KvBlobHeader = {
    codec,
    dtype,
    layers: view.getUint32(8, true),
    kvHeads: view.getUint32(12, true),
    headDim: view.getUint32(16, true),
    tokens: view.getUint32(20, true),
    payloadBytes: view.getUint32(24, true),
  };
  const expected = kvPayloadBytes(codec, header);
  if (header.payloadBytes !== expected || blob.byteLength !== KV_HEADER_BYTES + expected) {
    throw new KvCodecError(
      `KV blob: ${blob.byteLength} bytes, header says ${header.payloadBytes}, shape needs ${KV_HEADER_BYTES + expected}`,
    );
  }
  return header;
}

/**
 * The cache a blob holds, as `dtype` (default: the dtype that was encoded). float16 -> float16
 * returns views over `blob` (no copy) when it is 2-byte aligned, so don't reuse the blob's memory.
 */
export function decodeKv(blob: Uint8Array, options: { dtype?: KvDtype } = {}): KvCache {
  const h = readKvHeader(blob);
  const dtype = options.dtype ?? h.dtype;
  const n = h.kvHeads * h.tokens * h.headDim;
  const count = 2 * h.layers;
  const tensors: KvData[] = [];
  if (h.codec === 'float16') {
    let payload = blob.subarray(KV_HEADER_BYTES);
    if (payload.byteOffset % 2 !== 0) payload = new Uint8Array(payload); // a copy: aligned
    const halves = new Uint16Array(payload.buffer, payload.byteOffset, count * n);
    for (let i = 0; i < count; i++) {
      const t = halves.subarray(i * n, (i + 1) * n);
      tensors.push(dtype === 'float16' ? t : float16ToFloat32Array(t));
    }
  } else {
    const ns = scalesPerTensor(h.codec, h);
    let payload = blob.subarray(KV_HEADER_BYTES);
    if (payload.byteOffset % 4 !== 0) payload = new Uint8Array(payload);
    const scales = new Float32Array(payload.buffer, payload.byteOffset, ns * count);
    const values = new Int8Array(payload.buffer, payload.byteOffset + scales.byteLength, n * count);
    for (let i = 0; i < count; i++) {
      const x = dequantize(values.subarray(i * n, (i + 1) * n), h, h.codec === 'int8-channel', scales.subarray(i * ns, (i + 1) * ns));
      tensors.push(dtype === 'float32' ? x : float32ToFloat16Array(x));
    }
  }
  return {
    dtype,
    layers: h.layers,
    kvHeads: h.kvHeads,
    headDim: h.headDim,
    tokens: h.tokens,
    keys: tensors.filter((_, i) => i % 2 === 0),
    values: tensors.filter((_, i) => i % 2 === 1),
  };
}
