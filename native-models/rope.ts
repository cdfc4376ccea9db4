// RoPE re-encoding: moves stored keys to other positions by rotating them. Rotations compose,
// R(p + delta) = R(delta) R(p), so a key computed at position p becomes the key at p + delta without
// running the model again (docs/block-attention.md, "Positions and re-encoding"). Values never move.
import { roundToFloat16, widenFromFloat16 } from './float16.ts';
import type { KvCache, KvData } from './kv.ts';
import { ropeOfLayer, type RopeParams } from './rope-config.ts';

/** cos and sin of delta x invFreq[m], one entry per rotary pair m. */
export interface RotationTables {
  cos: Float32Array;
  sin: Float32Array;
}

/** Angles in float64 (they reach 1e5 rad and more), stored as float32. */
export function rotationTables(rope: RopeParams, delta: number): RotationTables {
  const half = rope.rotaryDim / 2;
  const cos = new Float32Array(half);
  const sin = new Float32Array(half);
  for (let m = 0; m < half; m++) {
    const angle = delta * rope.invFreq[m];
    cos[m] = Math.cos(angle);
    sin[m] = Math.sin(angle);
  }
  return { cos, sin };
}

/** Throws unless `rope` can turn the keys of `kv` by `delta` (layer count, head size, rotary dims, buffer lengths). */
export function checkRotatable(kv: KvCache, rope: RopeParams, delta: number): void {
  if (!Number.isSafeInteger(delta)) throw new RangeError(`rotateKeys: delta must be an integer, got ${delta}`);
  if (rope.layers && rope.layers.length !== kv.layers) {
    throw new Error(`rotateKeys: RoPE parameters for ${rope.layers.length} layers, but the cache has ${kv.layers}`);
  }
  for (let l = 0; l < kv.layers; l++) {
    const layer = ropeOfLayer(rope, l);
    if (layer.headDim !== kv.headDim) {
      throw new Error(`rotateKeys: RoPE head dim ${layer.headDim} does not match the cache's head dim ${kv.headDim}`);
    }
    const half = layer.rotaryDim / 2;
    if (!Number.isInteger(half) || half < 1 || layer.rotaryDim > layer.headDim || layer.invFreq.length !== half) {
      throw new Error(
        `rotateKeys: rotary dim ${layer.rotaryDim} (${layer.invFreq.length} frequencies) does not fit head dim ${layer.headDim}`,
      );
    }
  }
  const length = kv.kvHeads * kv.tokens * kv.headDim;
  if (kv.keys.length !== kv.layers || kv.keys.some((k) => k.length !== length)) {
    throw new Error(`rotateKeys: key buffers do not hold ${kv.layers} layers of ${length} elements`);
  }
}

/**
 * Rotates `rows` head rows of one layer's keys in place, from the start of `data` (a whole layer,
 * or a view of one head's tokens inside a larger past: assemble.ts lays blocks out that way). A pair
 * is (x_a, x_b) with a = row + m * step and b = a + partner: rotate-half pairs (m, m + rotaryDim/2), interleaved pairs (2m, 2m + 1).
 * Products and the sum are exact-then-rounded-once in float64, then stored as float32 (and, for
 * float16 caches, rounded on to half, nearest even): the float32 rotation the design asks for.
 */
export function rotateRows(data: KvData, rows: number, rope: RopeParams, { cos, sin }: RotationTables): void {
  const { headDim } = rope;
  const half = rope.rotaryDim / 2;
  const step = rope.layout === 'interleaved' ? 2 : 1;
  const partner = rope.layout === 'interleaved' ? 1 : half;
  if (data instanceof Float32Array) {
    for (let row = 0; row < rows * headDim; row += headDim) {
      for (let m = 0, a = row; m < half; m++, a += step) {
        const xa = data[a];
        const xb = data[a + partner];
        data[a] = xa * cos[m] - xb * sin[m];
        data[a + partner] = xb * cos[m] + xa * sin[m];
      }
    }
  } else {
    rotateHalfRows(data, rows, rope, cos, sin);
  }
}

/**
 * rotateRows for float16 keys. A row's rotary dims are widened to float32 together
 * (widenFromFloat16), rotated into a float32 scratch (the store rounds float64 to float32, as for
 * float32 keys), then rounded to half together (roundToFloat16): several times faster than a table
 * lookup and a rounding call per value, bit for bit the same (docs/BENCHMARKS.md). Its own function
 * so that every access here is to a Uint16Array.
 */
function rotateHalfRows(data: Uint16Array, rows: number, rope: RopeParams, cos: Float32Array, sin: Float32Array): void {
  const { headDim } = rope;
  const half = rope.rotaryDim / 2;
  const step = rope.layout === 'interleaved' ? 2 : 1;
  const partner = rope.layout === 'interleaved' ? 1 : half;
  const x = new Float32Array(rope.rotaryDim);
  const xBits = new Uint32Array(x.buffer);
  const rotated = new Float32Array(rope.rotaryDim);
  const rotatedBits = new Uint32Array(rotated.buffer);
  for (let row = 0; row < rows * headDim; row += headDim) {
    widenFromFloat16(data, row, x, xBits);
    for (let m = 0, a = 0; m < half; m++, a += step) {
      const xa = x[a];
      const xb = x[a + partner];
      rotated[a] = xa * cos[m] - xb * sin[m];
      rotated[a + partner] = xb * cos[m] + xa * sin[m];
    }
    roundToFloat16(rotated, data, row, rotatedBits);
  }
}

/**
 * Moves the keys of `kv` by `delta` positions in place (a key stored at p now sits at p + delta;
 * delta may be negative). Only the first rotaryDim dims of each head turn; values are untouched.
 * Each layer turns with its own parameters where the model has per-layer RoPE (rope.layers).
 * The attention factor (yarn) is not applied: it is already inside the stored keys.
 */
export function rotateKeysInPlace(kv: KvCache, rope: RopeParams, delta: number): void {
  checkRotatable(kv, rope, delta);
  if (delta === 0 || kv.tokens === 0) return;
  const tables = new Map<RopeParams, RotationTables>();
  kv.keys.forEach((keys, l) => {
    const layer = ropeOfLayer(rope, l);
    let table = tables.get(layer);
    if (!table) {
      table = rotationTables(layer, delta);
      tables.set(layer, table);
    }
    rotateRows(keys, kv.kvHeads * kv.tokens, layer, table);
  });
}

/**
 * A cache whose keys are those of `kv` moved by `delta` positions (see rotateKeysInPlace). The key
 * buffers are new; the value buffers are shared with `kv`, since re-encoding never changes values.
 */
export function rotateKeys(kv: KvCache, rope: RopeParams, delta: number): KvCache {
  const moved: KvCache = { ...kv, keys: kv.keys.map((k) => k.slice()) };
  rotateKeysInPlace(moved, rope, delta);
  return moved;
}
