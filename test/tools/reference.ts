// The reference forward pass: a plain float64 decoder over the weights of a TinyModelSpec (the
// Llama body with each family's KV-relevant details: qwen2 biases, qwen3/gemma3 q/k norms before
// RoPE, gemma3's per-layer RoPE, sliding windows), with an arbitrary attention mask and arbitrary
// per-token positions. It shares no code with the ONNX path, so every KV path (cached blocks,
// re-encoded keys, boundary recompute) is checked against it. It computes with the weights as the
// export style stores them (float16-rounded, or dequantised 4-bit: weight-formats.ts).
// Written for readability; matrices are [in, out] row-major as in TinyWeights.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { RopeParams } from '../../native-models/rope-config.ts';
import { buildWeights, layerRope, slidingLayers, type TinyModelSpec, type TinyWeights } from './tiny-model-spec.ts';
import { storedWeights } from './weight-formats.ts';

/** Whether the token at index `query` may attend to the token at index `key` (indices into the token list). */
export type AttendsFn = (query: number, key: number) => boolean;

export interface ReferenceResult {
  /** One row per input token, length vocab; rows left out by `logitsFor` are empty (length 0). */
  logits: Float64Array[];
  /** Per layer, [kvHeads, N, headDim] row-major, after RoPE: what a KV cache stores. */
  keys: Float64Array[];
  /** Per layer, [kvHeads, N, headDim] row-major. */
  values: Float64Array[];
}

/** Ordinary causal attention: every token sees itself and everything before it. */
export function causalMask(): AttendsFn {
  return (query, key) => key <= query;
}

/** Start index of each block and the block of each token, for blocks laid end to end. */
function layOut(blockLengths: number[]): { starts: number[]; blockOf: Int32Array } {
  if (blockLengths.length === 0) throw new RangeError('at least one block is needed');
  const starts: number[] = [];
  let total = 0;
  for (const length of blockLengths) {
    if (!Number.isInteger(length) || length <= 0) throw new RangeError(`block length ${length} must be a positive integer`);
    starts.push(total);
    total += length;
  }
  const blockOf = new Int32Array(total);
  blockLengths.forEach((length, b) => blockOf.fill(b, starts[b], starts[b] + length));
  return { starts, blockOf };
}

function checkIndex(index: number, total: number): void {
  if (!Number.isInteger(index) || index < 0 || index >= total) {
    throw new RangeError(`token index ${index} is outside the ${total} tokens the mask covers`);
  }
}

/**
 * Block attention (the paper's mask): a token of a non-final block attends to earlier-or-same tokens
 * of its own block only; a token of the final block attends to every earlier-or-same token.
 */
export function blockMask(blockLengths: number[]): AttendsFn {
  const { starts, blockOf } = layOut(blockLengths);
  const final = blockLengths.length - 1;
  return (query, key) => {
    checkIndex(query, blockOf.length);
    checkIndex(key, blockOf.length);
    if (key > query) return false;
    const block = blockOf[query];
    return block === final || key >= starts[block];
  };
}

/**
 * Shared prefix (APE): the prefix is causal; a token of a middle (passage) block attends to the whole
 * prefix and to earlier-or-same tokens of its own block; a token of the final block (the last of
 * `blockLengths`) attends to every earlier-or-same token. A prefix of length 0 is blockMask.
 */
export function sharedPrefixMask(prefixLength: number, blockLengths: number[]): AttendsFn {
  if (!Number.isInteger(prefixLength) || prefixLength < 0) {
    throw new RangeError(`prefix length ${prefixLength} must be a non-negative integer`);
  }
  const { starts, blockOf } = layOut(blockLengths);
  const total = prefixLength + blockOf.length;
  const final = blockLengths.length - 1;
  return (query, key) => {
    checkIndex(query, total);
    checkIndex(key, total);
    if (key > query) return false;
    if (query < prefixLength || key < prefixLength) return true;
    const block = blockOf[query - prefixLength];
    return block === final || key - prefixLength >= starts[block];
  };
}

/**
 * Reads the spec a generated model folder was built from (config.json's `quire_generator`) and
 * rebuilds the weights its graph computes with (rounded or dequantised as its export style stores them).
 */
export function loadReferenceModel(dir: string): { spec: TinyModelSpec; weights: TinyWeights } {
  const configPath = join(dir, 'config.json');
  const config = JSON.parse(readFileSync(configPath, 'utf8')) as Record<string, unknown>;
  const spec = config.quire_generator;
  if (spec === null || typeof spec !== 'object') {
    throw new Error(`${configPath} has no quire_generator field: only generated tiny models have a reference forward`);
  }
  const tiny = spec as TinyModelSpec;
  return { spec: tiny, weights: storedWeights(tiny, buildWeights(tiny)) };
}

/** y[n] = x[n] W (+ bias) for every row n; W is [inDim, outDim] row-major. */
function matmul(x: Float64Array[], w: Float32Array, inDim: number, outDim: number, bias?: Float32Array): Float64Array[] {
  const y = x.map(() => (bias ? Float64Array.from(bias) : new Float64Array(outDim)));
  // each row of W is read once and applied to every token while it is in cache
  for (let i = 0; i < inDim; i++) {
    const wRow = w.subarray(i * outDim, (i + 1) * outDim);
    for (let t = 0; t < x.length; t++) {
      const xi = x[t][i];
      const yt = y[t];
      for (let j = 0; j < outDim; j++) yt[j] += xi * wRow[j];
    }
  }
  return y;
}

function rmsNorm(x: Float64Array, weight: Float32Array, eps: number): Float64Array {
  let sumSquares = 0;
  for (const v of x) sumSquares += v * v;
  const scale = 1 / Math.sqrt(sumSquares / x.length + eps);
  return x.map((v, i) => v * scale * weight[i]);
}

/** Qwen 3 / Gemma 3: RMSNorm of each head's slice of a projected row [heads * headDim], in place, before RoPE. */
function normalizeHeads(row: Float64Array, heads: number, headDim: number, weight: Float32Array, eps: number): void {
  for (let h = 0; h < heads; h++) row.set(rmsNorm(row.subarray(h * headDim, (h + 1) * headDim), weight, eps), h * headDim);
}

const silu = (v: number) => v / (1 + Math.exp(-v));

/**
 * Rotate-half RoPE in place on each head of a projected row [heads * headDim] at one position:
 * pairs (m, m + rotaryDim/2) of the first rotaryDim dimensions rotate by position * invFreq[m], with
 * cos and sin both scaled by the attention factor (yarn; 1 otherwise); trailing dimensions pass through.
 */
function applyRope(row: Float64Array, heads: number, rope: RopeParams, position: number): void {
  const half = rope.rotaryDim / 2;
  for (let m = 0; m < half; m++) {
    const angle = position * rope.invFreq[m];
    const cos = Math.cos(angle) * rope.attentionFactor;
    const sin = Math.sin(angle) * rope.attentionFactor;
    for (let h = 0; h < heads; h++) {
      const a = h * rope.headDim + m;
      const b = a + half;
      const xa = row[a];
      const xb = row[b];
      row[a] = xa * cos - xb * sin;
      row[b] = xb * cos + xa * sin;
    }
  }
}

function checkInputs(spec: TinyModelSpec, tokenIds: number[], positions: number[], logitsFor?: number[]): void {
  if (tokenIds.length === 0) throw new RangeError('no tokens');
  if (positions.length !== tokenIds.length) {
    throw new RangeError(`${tokenIds.length} tokens but ${positions.length} positions`);
  }
  for (const id of tokenIds) {
    if (!Number.isInteger(id) || id < 0 || id >= spec.vocabSize) {
      throw new RangeError(`token id ${id} outside vocab ${spec.vocabSize}`);
    }
  }
  for (const p of positions) if (!Number.isInteger(p)) throw new RangeError(`position ${p} is not an integer`);
  if (spec.heads % spec.kvHeads !== 0) throw new RangeError(`heads ${spec.heads} is not a multiple of kvHeads ${spec.kvHeads}`);
  for (const i of logitsFor ?? []) {
    if (!Number.isInteger(i) || i < 0 || i >= tokenIds.length) {
      throw new RangeError(`logitsFor index ${i} outside the ${tokenIds.length} tokens`);
    }
  }
}

/** The mask as a matrix, evaluated once; refuses a query that would attend to nothing (softmax of nothing). */
function maskMatrix(n: number, attends: AttendsFn): Uint8Array {
  const allowed = new Uint8Array(n * n);
  for (let q = 0; q < n; q++) {
    let any = false;
    for (let k = 0; k < n; k++) {
      if (attends(q, k)) {
        allowed[q * n + k] = 1;
        any = true;
      }
    }
    if (!any) throw new Error(`token ${q} attends to no token: the mask leaves its attention undefined`);
  }
  return allowed;
}

/**
 * One forward pass over `tokenIds` at `positions` (any integers, one per token) with attention
 * restricted by `attends`, in float64 throughout (the spec's kvDtype is ignored: this is the exact
 * answer the float32/float16 paths approximate). `logitsFor` (token indices) limits which logits
 * rows are computed; by default every row is.
 */
export function referenceForward(
  spec: TinyModelSpec,
  weights: TinyWeights,
  tokenIds: number[],
  positions: number[],
  attends: AttendsFn,
  logitsFor?: number[],
): ReferenceResult {
  checkInputs(spec, tokenIds, positions, logitsFor);
  const { hiddenSize: hidden, heads, kvHeads, headDim, intermediateSize: inner, vocabSize: vocab, rmsNormEps: eps } = spec;
  const n = tokenIds.length;
  const maskAllowed = maskMatrix(n, attends);
  // sliding-window layers see, besides the mask, only keys fewer than `window` positions back
  const window = spec.slidingWindow ?? Infinity;
  const windowAllowed = maskAllowed.map((ok, i) => (ok && positions[Math.floor(i / n)] - positions[i % n] < window ? 1 : 0));
  const sliding = slidingLayers(spec);
  const group = heads / kvHeads;
  const scale = 1 / Math.sqrt(headDim);

  let x = tokenIds.map((id) => Float64Array.from(weights.embed.subarray(id * hidden, (id + 1) * hidden)));
  const keys: Float64Array[] = [];
  const values: Float64Array[] = [];

  for (const [l, layer] of weights.layers.entries()) {
    const rope = layerRope(spec, l);
    const allowed = sliding[l] ? windowAllowed : maskAllowed;
    const normed = x.map((row) => rmsNorm(row, layer.inputNorm, eps));
    const q = matmul(normed, layer.q, hidden, heads * headDim, layer.qBias);
    const k = matmul(normed, layer.k, hidden, kvHeads * headDim, layer.kBias);
    const v = matmul(normed, layer.v, hidden, kvHeads * headDim, layer.vBias);
    if (layer.qNorm && layer.kNorm) {
      q.forEach((row) => normalizeHeads(row, heads, headDim, layer.qNorm!, eps));
      k.forEach((row) => normalizeHeads(row, kvHeads, headDim, layer.kNorm!, eps));
    }
    q.forEach((row, t) => applyRope(row, heads, rope, positions[t]));
    k.forEach((row, t) => applyRope(row, kvHeads, rope, positions[t]));

    // what a KV cache stores: [kvHeads, N, headDim]
    const layerKeys = new Float64Array(kvHeads * n * headDim);
    const layerValues = new Float64Array(kvHeads * n * headDim);
    for (let g = 0; g < kvHeads; g++) {
      for (let t = 0; t < n; t++) {
        layerKeys.set(k[t].subarray(g * headDim, (g + 1) * headDim), (g * n + t) * headDim);
        layerValues.set(v[t].subarray(g * headDim, (g + 1) * headDim), (g * n + t) * headDim);
      }
    }
    keys.push(layerKeys);
    values.push(layerValues);

    const attention = q.map(() => new Float64Array(heads * headDim));
    const scores = new Float64Array(n);
    for (let h = 0; h < heads; h++) {
      const g = Math.floor(h / group); // grouped-query attention: `group` query heads share one KV head
      for (let t = 0; t < n; t++) {
        const query = q[t].subarray(h * headDim, (h + 1) * headDim);
        let max = -Infinity;
        for (let s = 0; s < n; s++) {
          if (!allowed[t * n + s]) continue;
          const keyBase = (g * n + s) * headDim;
          let dot = 0;
          for (let d = 0; d < headDim; d++) dot += query[d] * layerKeys[keyBase + d];
          scores[s] = dot * scale;
          if (scores[s] > max) max = scores[s];
        }
        // softmax over the allowed keys only; masked keys never enter the sums
        let total = 0;
        for (let s = 0; s < n; s++) {
          if (!allowed[t * n + s]) continue;
          scores[s] = Math.exp(scores[s] - max);
          total += scores[s];
        }
        const out = attention[t];
        for (let s = 0; s < n; s++) {
          if (!allowed[t * n + s]) continue;
          const weight = scores[s] / total;
          const valueBase = (g * n + s) * headDim;
          for (let d = 0; d < headDim; d++) out[h * headDim + d] += weight * layerValues[valueBase + d];
        }
      }
    }
    const projected = matmul(attention, layer.o, heads * headDim, hidden);
    x = x.map((row, t) => row.map((value, i) => value + projected[t][i]));

    const normed2 = x.map((row) => rmsNorm(row, layer.postNorm, eps));
    const gate = matmul(normed2, layer.gate, hidden, inner);
    const up = matmul(normed2, layer.up, hidden, inner);
    const activated = gate.map((row, t) => row.map((value, i) => silu(value) * up[t][i]));
    const down = matmul(activated, layer.down, inner, hidden);
    x = x.map((row, t) => row.map((value, i) => value + down[t][i]));
  }

  const wanted = new Set(logitsFor ?? x.keys());
  const logits = x.map((row, t) =>
    wanted.has(t) ? matmul([rmsNorm(row, weights.finalNorm, eps)], weights.lmHead, hidden, vocab)[0] : new Float64Array(0),
  );
  return { logits, keys, values };
}
