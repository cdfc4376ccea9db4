// KV caches <-> bytes for storage: a fixed header (shape, source dtype, codec) and the tensors.
// Integrity (checksums) is the store's job; this file only checks that the bytes are well-formed.
//
// Layout, little-endian:
//   0  "QKVB"           magic
//   4  u16 version       1
//   6  u8  codec         0 float16, 3 int8, 4 int4 (1 and 2 were the first int8 codecs: retired)
//   7  u8  source dtype  0 float32, 1 float16 (what decodeKv gives back by default)
//   8  u32 layers, 12 u32 kvHeads, 16 u32 headDim, 20 u32 tokens
//   24 u32 payload bytes, 28 u32 key group tokens (int8/int4; 0 for float16)
//   32 payload
// float16 payload: K0 V0 K1 V1 ... as raw half bits, each [kvHeads, tokens, headDim].
// int8/int4 payload: see kv-grouped.ts.
//
// Error statement:
// - float16 codec, float16 cache: bit-exact (the half bits are copied).
// - float16 codec, float32 cache: round to nearest even, |error| <= |x| * 2^-11 for |x| >= 2^-14
//   (normal halves) and <= 2^-25 below that; a finite value that would overflow (|x| >= 65520)
//   is refused with a RangeError rather than stored as infinity.
// - int8/int4: |error| <= step / 2 of the element's group (plus float32 and, for a float16 cache,
//   half rounding), step = the group's range / 255 or / 15; bounds in kv-grouped.ts.
//
// Blobs of the retired int8-channel/int8-token codecs (an option, never the default, before the
// grouped codecs) fail readKvHeader with a KvCodecError, so the store treats them as corrupt: the
// block is recomputed and stored again with the current codec.
import os from 'node:os';
import type { KvCache, KvData, KvDtype } from '../native-models/kv.ts';
import { float16ToFloat32Array, float32ToFloat16Array } from '../native-models/float16.ts';
import { decodeGrouped, encodeGrouped, groupedPayloadBytes, KEY_GROUP_TOKENS } from './kv-grouped.ts';

export type KvCodec = 'float16' | 'int8' | 'int4';
export const KV_CODECS: readonly KvCodec[] = ['float16', 'int8', 'int4'];
const CODEC_IDS: Record<KvCodec, number> = { float16: 0, int8: 3, int4: 4 };
const RETIRED_CODECS: Record<number, string> = { 1: 'int8-channel', 2: 'int8-token' };

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
  /** int8/int4: the longest run of tokens sharing a key group; 0 for float16. */
  keyGroupTokens: number;
}

type Dims = Pick<KvCache, 'layers' | 'kvHeads' | 'headDim' | 'tokens'>;

/** Payload bytes of a cache of these dimensions under a codec (header not included). */
export function kvPayloadBytes(codec: KvCodec, d: Dims, keyGroupTokens = KEY_GROUP_TOKENS): number {
  if (codec === 'float16') return 2 * d.layers * d.kvHeads * d.tokens * d.headDim * 2;
  return groupedPayloadBytes(codec, d, keyGroupTokens);
}

/** Stored bytes of a cache of these dimensions (header included): what the KV budget counts. */
export function kvBlobBytes(codec: KvCodec, d: Dims): number {
  return KV_HEADER_BYTES + kvPayloadBytes(codec, d);
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

function asHalves(t: KvData): Uint16Array {
  if (t instanceof Uint16Array) return t;
  const h = float32ToFloat16Array(t);
  for (let i = 0; i < h.length; i++) {
    if ((h[i] & 0x7fff) === 0x7c00 && Number.isFinite(t[i])) {
      throw new RangeError(`encodeKv: ${t[i]} overflows float16; this cache cannot be stored`);
    }
  }
  return h;
}

/** The cache as a self-describing blob (header + payload). */
export function encodeKv(kv: KvCache, codec: KvCodec = 'float16'): Buffer {
  checkCache(kv);
  if (!KV_CODECS.includes(codec)) throw new KvCodecError(`encodeKv: unknown codec ${String(codec)}`);
  const keyGroupTokens = codec === 'float16' ? 0 : KEY_GROUP_TOKENS;
  const payloadBytes = kvPayloadBytes(codec, kv);
  // Buffer.alloc never comes from the shared pool: offset 0, so typed views of the payload align.
  const blob = Buffer.alloc(KV_HEADER_BYTES + payloadBytes);
  blob.writeUInt32LE(MAGIC, 0);
  blob.writeUInt16LE(VERSION, 4);
  blob.writeUInt8(CODEC_IDS[codec], 6);
  blob.writeUInt8(DTYPES.indexOf(kv.dtype), 7);
  blob.writeUInt32LE(kv.layers, 8);
  blob.writeUInt32LE(kv.kvHeads, 12);
  blob.writeUInt32LE(kv.headDim, 16);
  blob.writeUInt32LE(kv.tokens, 20);
  blob.writeUInt32LE(payloadBytes, 24);
  blob.writeUInt32LE(keyGroupTokens, 28);
  if (codec !== 'float16') {
    encodeGrouped(codec, kv, blob.subarray(KV_HEADER_BYTES), keyGroupTokens);
    return blob;
  }
  let at = KV_HEADER_BYTES;
  for (let l = 0; l < kv.layers; l++) {
    for (const t of [kv.keys[l], kv.values[l]]) {
      const h = asHalves(t);
      blob.set(new Uint8Array(h.buffer, h.byteOffset, h.byteLength), at);
      at += h.byteLength;
    }
  }
  return blob;
}

/** The header of a blob, checked for magic, version, known codec/dtype and exact length. */
export function readKvHeader(blob: Uint8Array): KvBlobHeader {
  if (blob.byteLength < KV_HEADER_BYTES) throw new KvCodecError(`KV blob of ${blob.byteLength} bytes has no header`);
  const view = new DataView(blob.buffer, blob.byteOffset, KV_HEADER_BYTES);
  if (view.getUint32(0, true) !== MAGIC) throw new KvCodecError('KV blob: bad magic');
  const version = view.getUint16(4, true);
  if (version !== VERSION) throw new KvCodecError(`KV blob: format version ${version} is not supported`);
  const id = view.getUint8(6);
  if (RETIRED_CODECS[id]) throw new KvCodecError(`KV blob: codec ${RETIRED_CODECS[id]} is no longer read (recompute the block)`);
  const codec = KV_CODECS.find((c) => CODEC_IDS[c] === id);
  const dtype = DTYPES[view.getUint8(7)];
  if (!codec || !dtype) throw new KvCodecError(`KV blob: unknown codec ${id} or dtype ${view.getUint8(7)}`);
  const header: KvBlobHeader = {
    codec,
    dtype,
    layers: view.getUint32(8, true),
    kvHeads: view.getUint32(12, true),
    headDim: view.getUint32(16, true),
    tokens: view.getUint32(20, true),
    payloadBytes: view.getUint32(24, true),
    keyGroupTokens: view.getUint32(28, true),
  };
  if ((codec === 'float16') !== (header.keyGroupTokens === 0)) {
    throw new KvCodecError(`KV blob: key group of ${header.keyGroupTokens} tokens for codec ${codec}`);
  }
  const expected = kvPayloadBytes(codec, header, header.keyGroupTokens);
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
  const dims = { layers: h.layers, kvHeads: h.kvHeads, headDim: h.headDim, tokens: h.tokens };
  if (h.codec !== 'float16') return decodeGrouped(h.codec, blob.subarray(KV_HEADER_BYTES), dims, h.keyGroupTokens, dtype);
  const n = h.kvHeads * h.tokens * h.headDim;
  let payload = blob.subarray(KV_HEADER_BYTES);
  if (payload.byteOffset % 2 !== 0) payload = new Uint8Array(payload); // a copy: aligned
  const halves = new Uint16Array(payload.buffer, payload.byteOffset, 2 * h.layers * n);
  const tensors: KvData[] = [];
  for (let i = 0; i < 2 * h.layers; i++) {
    const t = halves.subarray(i * n, (i + 1) * n);
    tensors.push(dtype === 'float16' ? t : float16ToFloat32Array(t));
  }
  return {
    dtype,
    ...dims,
    keys: tensors.filter((_, i) => i % 2 === 0),
    values: tensors.filter((_, i) => i % 2 === 1),
  };
}
