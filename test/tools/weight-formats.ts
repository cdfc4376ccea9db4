// How exporters store a model's weights, and the exact values a graph then computes with: float16
// rounding (fp16 files) and 4-bit blocks for com.microsoft MatMulNBits (q4 / q4f16 / genai int4
// files). The generator writes what these functions return and the float64 reference computes with
// the dequantised values, so both start from the same numbers.
import { float16ToFloat32, float32ToFloat16, float32ToFloat16Array } from '../../native-models/float16.ts';
import { EXPORT_STYLES } from '../../native-models/export-style.ts';
import type { TinyLayerWeights, TinyModelSpec, TinyWeights } from './tiny-model-spec.ts';

/** MatMulNBits block size along K: onnxruntime's quantizer default, used by transformers.js and the genai builder. */
export const Q4_BLOCK_SIZE = 32;
/** Symmetric 4-bit: the stored nibble minus 8 (MatMulNBits' default zero point when none is given). */
const Q4_ZERO_POINT = 8;

export interface Q4Matrix {
  K: number;
  N: number;
  /** [N][ceil(K / 32)][16] bytes; byte j of a block holds elements 2j (low nibble) and 2j + 1 (high nibble). */
  packed: Uint8Array;
  /** [N * ceil(K / 32)], one per block, as the graph stores them (float16-rounded for fp16 activations). */
  scales: Float32Array;
  /** [K, N] row-major: (q - 8) x scale, the weights MatMulNBits multiplies by. */
  dequantised: Float32Array;
}

export function roundToFloat16(values: Float32Array): Float32Array {
  return values.map((v) => float16ToFloat32(float32ToFloat16(v)));
}

/**
 * Symmetric blockwise 4-bit quantization of a [K, N] row-major matrix (y = x W), as onnxruntime's
 * MatMul4BitsQuantizer does it: per output column and block of 32 inputs, the element of largest
 * magnitude maps to -8, scale = that element / -8, q = clamp(round(w / scale) + 8, 0, 15). K is
 * padded with zeros to whole blocks.
 */
export function quantizeQ4(matrix: Float32Array, K: number, N: number, scaleDtype: 'float32' | 'float16'): Q4Matrix {
  if (matrix.length !== K * N) throw new RangeError(`quantizeQ4: ${matrix.length} elements is not ${K} x ${N}`);
  const blocks = Math.ceil(K / Q4_BLOCK_SIZE);
  const blobSize = Q4_BLOCK_SIZE / 2;
  const packed = new Uint8Array(N * blocks * blobSize);
  const scales = new Float32Array(N * blocks);
  const dequantised = new Float32Array(K * N);
  for (let n = 0; n < N; n++) {
    for (let b = 0; b < blocks; b++) {
      const k0 = b * Q4_BLOCK_SIZE;
      let extreme = 0;
      for (let k = k0; k < Math.min(K, k0 + Q4_BLOCK_SIZE); k++) {
        const w = matrix[k * N + n];
        if (Math.abs(w) > Math.abs(extreme)) extreme = w;
      }
      let scale = extreme / -Q4_ZERO_POINT;
      if (scaleDtype === 'float16') scale = float16ToFloat32(float32ToFloat16(scale));
      scales[n * blocks + b] = scale;
      for (let i = 0; i < Q4_BLOCK_SIZE; i++) {
        const k = k0 + i;
        const w = k < K ? matrix[k * N + n] : 0;
        const q = scale === 0 ? Q4_ZERO_POINT : Math.min(15, Math.max(0, Math.round(w / scale) + Q4_ZERO_POINT));
        packed[(n * blocks + b) * blobSize + (i >> 1)] |= i % 2 === 0 ? q : q << 4;
        if (k < K) dequantised[k * N + n] = Math.fround((q - Q4_ZERO_POINT) * scale);
      }
    }
  }
  return { K, N, packed, scales, dequantised };
}

/** The projection matrices a MatMul multiplies by (and so the ones 4-bit exports quantize): [name, K, N]. */
export function matrixShapes(spec: TinyModelSpec): { name: keyof TinyLayerWeights; K: number; N: number }[] {
  const { hiddenSize: h, heads, kvHeads, headDim, intermediateSize: f } = spec;
  return [
    { name: 'q', K: h, N: heads * headDim },
    { name: 'k', K: h, N: kvHeads * headDim },
    { name: 'v', K: h, N: kvHeads * headDim },
    { name: 'o', K: heads * headDim, N: h },
    { name: 'gate', K: h, N: f },
    { name: 'up', K: h, N: f },
    { name: 'down', K: f, N: h },
  ];
}

/** Whether the lm_head is a quantized MatMul: untied heads are; a tied head reads the float embedding. */
export function lmHeadQuantized(spec: TinyModelSpec): boolean {
  return EXPORT_STYLES[spec.exportStyle].weights === 'int4' && (!spec.tieWordEmbeddings || EXPORT_STYLES[spec.exportStyle].layout === 'genai');
}

/**
 * The weights a graph of this spec's export style computes with: float16-rounded where it stores
 * float16, dequantised 4-bit values where it stores MatMulNBits blocks, the raw float32 otherwise.
 */
export function storedWeights(spec: TinyModelSpec, raw: TinyWeights): TinyWeights {
  const style = EXPORT_STYLES[spec.exportStyle];
  const float = (v: Float32Array) => (style.activations === 'float16' ? roundToFloat16(v) : v);
  const matrix = (v: Float32Array, K: number, N: number) =>
    style.weights === 'int4' ? quantizeQ4(v, K, N, style.activations).dequantised : float(v);
  const layers = raw.layers.map((layer) => {
    const out: TinyLayerWeights = { ...layer };
    for (const key of ['inputNorm', 'postNorm', 'qBias', 'kBias', 'vBias', 'qNorm', 'kNorm'] as const) {
      const v = layer[key];
      if (v) out[key] = float(v);
    }
    for (const { name, K, N } of matrixShapes(spec)) out[name] = matrix(layer[name] as Float32Array, K, N);
    return out;
  });
  const embed = float(raw.embed);
  let lmHead: Float32Array;
  if (lmHeadQuantized(spec)) lmHead = matrix(raw.lmHead, spec.hiddenSize, spec.vocabSize);
  else if (spec.tieWordEmbeddings) {
    lmHead = new Float32Array(raw.lmHead.length);
    const { hiddenSize: h, vocabSize: v } = spec;
    for (let t = 0; t < v; t++) for (let i = 0; i < h; i++) lmHead[i * v + t] = embed[t * h + i];
  } else lmHead = float(raw.lmHead);
  return { embed, layers, finalNorm: float(raw.finalNorm), lmHead };
}

/** Float32 values as the little-endian bytes of the graph's float type. */
export function floatBytes(values: Float32Array, dtype: 'float32' | 'float16'): Uint8Array {
  const data = dtype === 'float16' ? float32ToFloat16Array(values) : values;
  return new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
}
