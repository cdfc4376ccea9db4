// KV tensors: the key/value states of a run of tokens for every layer, in the ONNX past/present layout.
// One place for slicing, concatenating and dtype conversion so callers never index raw buffers.
import { float16ToFloat32Array, float32ToFloat16Array } from './float16.ts';

export type KvDtype = 'float32' | 'float16';
/** float32 caches as Float32Array; float16 caches as raw IEEE half bits, as onnxruntime-node hands them out. */
export type KvData = Float32Array | Uint16Array;

/**
 * KV states of `tokens` consecutive tokens (batch 1). For each layer, keys[l] and values[l] hold
 * kvHeads x tokens x headDim elements, row-major ([kvHeads, tokens, headDim], the ONNX
 * past_key_values layout without the batch axis). Keys are stored after RoPE at the positions they
 * were computed at (see rope.ts to move them).
 */
export interface KvCache {
  dtype: KvDtype;
  layers: number;
  kvHeads: number;
  headDim: number;
  tokens: number;
  keys: KvData[];
  values: KvData[];
}

export interface KvShape {
  dtype: KvDtype;
  layers: number;
  kvHeads: number;
  headDim: number;
}

function allocate(dtype: KvDtype, length: number): KvData {
  return dtype === 'float16' ? new Uint16Array(length) : new Float32Array(length);
}

export function emptyKv(shape: KvShape): KvCache {
  const none = () => Array.from({ length: shape.layers }, () => allocate(shape.dtype, 0));
  return { ...shape, tokens: 0, keys: none(), values: none() };
}

export function kvShapeOf(kv: KvCache): KvShape {
  return { dtype: kv.dtype, layers: kv.layers, kvHeads: kv.kvHeads, headDim: kv.headDim };
}

function sameShape(a: KvShape, b: KvShape): boolean {
  return a.dtype === b.dtype && a.layers === b.layers && a.kvHeads === b.kvHeads && a.headDim === b.headDim;
}

/** Tokens [start, end) of a cache, as a new cache that owns its buffers. */
export function sliceKv(kv: KvCache, start: number, end: number): KvCache {
  if (start < 0 || end > kv.tokens || start > end) {
    throw new RangeError(`sliceKv: [${start}, ${end}) is outside 0..${kv.tokens}`);
  }
  const n = end - start;
  const cut = (data: KvData): KvData => {
    const out = allocate(kv.dtype, kv.kvHeads * n * kv.headDim);
    for (let h = 0; h < kv.kvHeads; h++) {
      const from = (h * kv.tokens + start) * kv.headDim;
      out.set(data.subarray(from, from + n * kv.headDim), h * n * kv.headDim);
    }
    return out;
  };
  return { ...kvShapeOf(kv), tokens: n, keys: kv.keys.map(cut), values: kv.values.map(cut) };
}

/** Caches laid end to end along the token axis (the order of the list is the order in the prompt). */
export function concatKv(parts: readonly KvCache[], shape?: KvShape): KvCache {
  const first = shape ?? (parts[0] ? kvShapeOf(parts[0]) : undefined);
  if (!first) throw new Error('concatKv: nothing to concatenate and no shape given');
  for (const p of parts) {
    if (!sameShape(p, first)) {
      throw new Error(`concatKv: shape mismatch (${JSON.stringify(kvShapeOf(p))} vs ${JSON.stringify(first)})`);
    }
  }
  const total = parts.reduce((s, p) => s + p.tokens, 0);
  const join = (pick: (p: KvCache) => KvData[]) =>
    Array.from({ length: first.layers }, (_, l) => {
      const out = allocate(first.dtype, first.kvHeads * total * first.headDim);
      for (let h = 0; h < first.kvHeads; h++) {
        let at = h * total * first.headDim;
        for (const p of parts) {
          const len = p.tokens * first.headDim;
          const from = h * len;
          out.set(pick(p)[l].subarray(from, from + len), at);
          at += len;
        }
      }
      return out;
    });
  return { ...first, tokens: total, keys: join((p) => p.keys), values: join((p) => p.values) };
}

/** The same cache stored as another element type (float32 <-> float16, round to nearest even). */
export function convertKv(kv: KvCache, dtype: KvDtype): KvCache {
  if (kv.dtype === dtype) return kv;
  const conv = (d: KvData): KvData =>
    dtype === 'float16' ? float32ToFloat16Array(d as Float32Array) : float16ToFloat32Array(d as Uint16Array);
  return { ...kv, dtype, keys: kv.keys.map(conv), values: kv.values.map(conv) };
}

/** Bytes held by the tensors of a cache. */
export function kvByteLength(kv: KvCache): number {
  const per = kv.dtype === 'float16' ? 2 : 4;
  return 2 * kv.layers * kv.kvHeads * kv.tokens * kv.headDim * per;
}
