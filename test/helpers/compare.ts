// Comparing numeric results (logits, keys, values) in tests. Every comparison checks lengths first:
// a row cut short or a missing row must fail the test, not shrink what gets compared.
import { float16ToFloat32Array } from '../../native-models/float16.ts';
import type { KvData } from '../../native-models/kv.ts';

/** Largest |a[i] - b[i]|; throws when the lengths differ. */
export function maxAbsDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  if (a.length !== b.length) throw new Error(`length ${a.length} vs ${b.length}`);
  let max = 0;
  for (let i = 0; i < a.length; i++) max = Math.max(max, Math.abs(a[i] - b[i]));
  return max;
}

/** maxAbsDiff over rows compared pairwise (one per token, or per layer); throws when the row counts differ. */
export function maxAbsDiffAll(a: readonly ArrayLike<number>[], b: readonly ArrayLike<number>[]): number {
  if (a.length !== b.length) throw new Error(`${a.length} rows vs ${b.length}`);
  let max = 0;
  for (let i = 0; i < a.length; i++) max = Math.max(max, maxAbsDiff(a[i], b[i]));
  return max;
}

/** Largest |a[i]|: the scale a relative tolerance is taken of. */
export function maxAbs(a: ArrayLike<number>): number {
  let max = 0;
  for (let i = 0; i < a.length; i++) max = Math.max(max, Math.abs(a[i]));
  return max;
}

/** KV data as float64 values: float16 (Uint16Array bits) decoded, float32 widened. */
export function kvToFloat64(data: KvData | Float64Array): Float64Array {
  if (data instanceof Float64Array) return data;
  return Float64Array.from(data instanceof Uint16Array ? float16ToFloat32Array(data) : data);
}

/** maxAbsDiff of KV data of either dtype (float16 bits are decoded, never compared as integers). */
export function maxAbsDiffKv(a: KvData | Float64Array, b: KvData | Float64Array): number {
  return maxAbsDiff(kvToFloat64(a), kvToFloat64(b));
}
