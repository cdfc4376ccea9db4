// What the tiny-model generator builds: the shape of a seeded random decoder of a model family and
// export style, and its weights, derived deterministically from the seed. The ONNX writers
// (generate-model.ts, generate-genai-model.ts) and the reference forward (reference.ts) all start
// from these weights, so they can be checked against each other without reading ONNX files back.
import { EXPORT_STYLES, type ExportStyleId } from '../../native-models/export-style.ts';
import type { KvDtype } from '../../native-models/kv.ts';
import { seededRandom } from '../../native-models/seeded-random.ts';
import { ropeParamsFromConfig, type RopeParams, type RopeScaling } from '../../native-models/rope-config.ts';

/**
 * The family the config names. All share the Llama body (RMSNorm, SwiGLU MLP, rotate-half RoPE);
 * they differ only where block attention can tell: qwen2 adds q/k/v biases; qwen3 normalises q and
 * k per head before RoPE; mistral attends through a sliding window in every layer; gemma3 has
 * sliding-window local layers with their own RoPE theta between global layers, and q/k norms
 * (Gemma's other differences, such as GELU and norm offsets, change no KV path and are left out).
 */
export type TinyArch = 'llama' | 'qwen2' | 'qwen3' | 'mistral' | 'gemma3';

export interface TinyModelSpec {
  arch: TinyArch;
  /** How the ONNX file is written: graph layout, weight format and activation type (native-models/export-style.ts). */
  exportStyle: ExportStyleId;
  /** Optimum layout: false writes a graph without a position_ids input (positions from the attention mask). */
  positionIdsInput: boolean;
  /** mistral / gemma3: keys a sliding-window layer's query sees, itself included. */
  slidingWindow: number | null;
  /** gemma3: every slidingWindowPattern-th layer is global, the others local. */
  slidingWindowPattern: number;
  /** gemma3: the local layers' RoPE theta (rope_local_base_freq). */
  ropeLocalTheta: number;
  seed: number;
  vocabSize: number;
  hiddenSize: number;
  layers: number;
  heads: number;
  kvHeads: number;
  headDim: number;
  intermediateSize: number;
  ropeTheta: number;
  partialRotaryFactor: number;
  ropeScaling: RopeScaling | null;
  maxPositionEmbeddings: number;
  rmsNormEps: number;
  kvDtype: KvDtype;
  tieWordEmbeddings: boolean;
  /** Whether the tokenizer prepends a BOS token (Llama style) or not (Qwen2 style). */
  addBos: boolean;
}

/** Row-major matrices stored [in, out], so y = x W is a plain MatMul. */
export interface TinyLayerWeights {
  inputNorm: Float32Array; // [hidden]
  q: Float32Array; // [hidden, heads*headDim]
  k: Float32Array; // [hidden, kvHeads*headDim]
  v: Float32Array; // [hidden, kvHeads*headDim]
  qBias?: Float32Array; // qwen2 only
  kBias?: Float32Array;
  vBias?: Float32Array;
  o: Float32Array; // [heads*headDim, hidden]
  postNorm: Float32Array; // [hidden]
  gate: Float32Array; // [hidden, intermediate]
  up: Float32Array; // [hidden, intermediate]
  down: Float32Array; // [intermediate, hidden]
  qNorm?: Float32Array; // [headDim], qwen3 / gemma3
  kNorm?: Float32Array; // [headDim]
}

export interface TinyWeights {
  embed: Float32Array; // [vocab, hidden]
  layers: TinyLayerWeights[];
  finalNorm: Float32Array; // [hidden]
  lmHead: Float32Array; // [hidden, vocab]; the transposed embedding when tied
}

/**
 * A small default; tests override fields to cover GQA, partial rotary, scaling, fp16 KV, families
 * and export styles (a float16 style's KV cache is float16 unless kvDtype says otherwise).
 */
export function tinySpec(overrides: Partial<TinyModelSpec> = {}): TinyModelSpec {
  const float16Style = EXPORT_STYLES[overrides.exportStyle ?? 'optimum-fp32'].activations === 'float16';
  return {
    arch: 'llama',
    exportStyle: 'optimum-fp32',
    positionIdsInput: true,
    slidingWindow: null,
    slidingWindowPattern: 2,
    ropeLocalTheta: 10000,
    seed: 1,
    vocabSize: 384,
    hiddenSize: 64,
    layers: 2,
    heads: 4,
    kvHeads: 2,
    headDim: 16,
    intermediateSize: 128,
    ropeTheta: 10000,
    partialRotaryFactor: 1,
    ropeScaling: null,
    maxPositionEmbeddings: 4096,
    rmsNormEps: 1e-6,
    kvDtype: float16Style ? 'float16' : 'float32',
    tieWordEmbeddings: false,
    addBos: true,
    ...overrides,
  };
}

/** Qwen2.5-0.5B's shape (vocab reduced) for benchmarks. */
export function benchSpec(overrides: Partial<TinyModelSpec> = {}): TinyModelSpec {
  return tinySpec({
    arch: 'qwen2',
    vocabSize: 8192,
    hiddenSize: 896,
    layers: 24,
    heads: 14,
    kvHeads: 2,
    headDim: 64,
    intermediateSize: 4864,
    ropeTheta: 1000000,
    maxPositionEmbeddings: 32768,
    kvDtype: 'float16',
    tieWordEmbeddings: true,
    addBos: false,
    ...overrides,
  });
}

/**
 * Issue 15's fp32-KV shape: a Llama body of dim 512, 8 layers, 8 heads over 4 KV heads (head size
 * 64), float32 KV, vocabulary 32000 to take the real Llama 2 tokenizer (generateModel's tokenizerFrom).
 */
export function llamaBenchSpec(overrides: Partial<TinyModelSpec> = {}): TinyModelSpec {
  return tinySpec({
    arch: 'llama',
    vocabSize: 32000,
    hiddenSize: 512,
    layers: 8,
    heads: 8,
    kvHeads: 4,
    headDim: 64,
    intermediateSize: 1536,
    ropeTheta: 10000,
    maxPositionEmbeddings: 8192,
    kvDtype: 'float32',
    addBos: true,
    ...overrides,
  });
}

function normals(rand: () => number, n: number, std: number, mean = 0): Float32Array {
  const out = new Float32Array(n);
  for (let i = 0; i < n; i += 2) {
    // Box-Muller; 1 - u keeps log away from 0
    const r = Math.sqrt(-2 * Math.log(1 - rand()));
    const a = 2 * Math.PI * rand();
    out[i] = mean + std * r * Math.cos(a);
    if (i + 1 < n) out[i + 1] = mean + std * r * Math.sin(a);
  }
  return out;
}

/**
 * The weights of a spec. Standard deviations of 1/sqrt(fan-in) keep activations of order 1, so
 * logits differ visibly between tokens and attention patterns are not uniform (a test that could
 * not tell masks apart would prove nothing).
 */
export function buildWeights(spec: TinyModelSpec): TinyWeights {
  const rand = seededRandom(spec.seed);
  const { hiddenSize: h, heads, kvHeads, headDim, intermediateSize: f, vocabSize: v } = spec;
  const qDim = heads * headDim;
  const kvDim = kvHeads * headDim;
  const embed = normals(rand, v * h, 1);
  const layers: TinyLayerWeights[] = [];
  for (let l = 0; l < spec.layers; l++) {
    const layer: TinyLayerWeights = {
      inputNorm: normals(rand, h, 0.1, 1),
      q: normals(rand, h * qDim, 1 / Math.sqrt(h)),
      k: normals(rand, h * kvDim, 1 / Math.sqrt(h)),
      v: normals(rand, h * kvDim, 1 / Math.sqrt(h)),
      o: normals(rand, qDim * h, 1 / Math.sqrt(qDim)),
      postNorm: normals(rand, h, 0.1, 1),
      gate: normals(rand, h * f, 1 / Math.sqrt(h)),
      up: normals(rand, h * f, 1 / Math.sqrt(h)),
      down: normals(rand, f * h, 1 / Math.sqrt(f)),
    };
    if (spec.arch === 'qwen2') {
      layer.qBias = normals(rand, qDim, 0.1);
      layer.kBias = normals(rand, kvDim, 0.1);
      layer.vBias = normals(rand, kvDim, 0.1);
    }
    if (hasQkNorm(spec)) {
      layer.qNorm = normals(rand, headDim, 0.1, 1);
      layer.kNorm = normals(rand, headDim, 0.1, 1);
    }
    layers.push(layer);
  }
  const finalNorm = normals(rand, h, 0.1, 1);
  let lmHead: Float32Array;
  if (spec.tieWordEmbeddings) {
    lmHead = new Float32Array(h * v);
    for (let t = 0; t < v; t++) for (let i = 0; i < h; i++) lmHead[i * v + t] = embed[t * h + i];
  } else {
    lmHead = normals(rand, h * v, 1 / Math.sqrt(h));
  }
  return { embed, layers, finalNorm, lmHead };
}

export function hasQkNorm(spec: TinyModelSpec): boolean {
  return spec.arch === 'qwen3' || spec.arch === 'gemma3';
}

/** Which layers attend through the sliding window, by the spec's own rule (the engine reads it from config.json instead). */
export function slidingLayers(spec: TinyModelSpec): boolean[] {
  return Array.from({ length: spec.layers }, (_, l) =>
    spec.arch === 'mistral' ? spec.slidingWindow !== null : spec.arch === 'gemma3' && (l + 1) % spec.slidingWindowPattern !== 0,
  );
}

/** Layer l's RoPE: gemma3's local layers use ropeLocalTheta without scaling; every other layer the config's. */
export function layerRope(spec: TinyModelSpec, layer: number): RopeParams {
  const config = specToHfConfig(spec);
  const local = spec.arch === 'gemma3' && slidingLayers(spec)[layer];
  return ropeParamsFromConfig(local ? { ...config, rope_theta: spec.ropeLocalTheta, rope_scaling: null } : config);
}

const ARCHITECTURES: Record<TinyArch, [modelType: string, architecture: string]> = {
  llama: ['llama', 'LlamaForCausalLM'],
  qwen2: ['qwen2', 'Qwen2ForCausalLM'],
  qwen3: ['qwen3', 'Qwen3ForCausalLM'],
  mistral: ['mistral', 'MistralForCausalLM'],
  gemma3: ['gemma3_text', 'Gemma3ForCausalLM'],
};

/** The config fields of a family that the engine reads to tell sliding layers and their RoPE apart. */
function familyConfig(spec: TinyModelSpec): Record<string, unknown> {
  if (spec.arch === 'mistral') return { sliding_window: spec.slidingWindow };
  if (spec.arch === 'gemma3') {
    if (spec.slidingWindow === null) throw new RangeError('gemma3 specs need a slidingWindow');
    return {
      sliding_window: spec.slidingWindow,
      sliding_window_pattern: spec.slidingWindowPattern,
      rope_local_base_freq: spec.ropeLocalTheta,
    };
  }
  if (spec.arch === 'qwen2' || spec.arch === 'qwen3') return { use_sliding_window: false, sliding_window: spec.maxPositionEmbeddings };
  return {};
}

/** The Hugging Face config.json of a spec (read back by the model loader and by transformers.js). */
export function specToHfConfig(spec: TinyModelSpec): Record<string, unknown> {
  const bos = spec.addBos ? 1 : null;
  const [modelType, architecture] = ARCHITECTURES[spec.arch];
  return {
    architectures: [architecture],
    model_type: modelType,
    vocab_size: spec.vocabSize,
    hidden_size: spec.hiddenSize,
    intermediate_size: spec.intermediateSize,
    num_hidden_layers: spec.layers,
    num_attention_heads: spec.heads,
    num_key_value_heads: spec.kvHeads,
    head_dim: spec.headDim,
    hidden_act: 'silu',
    rms_norm_eps: spec.rmsNormEps,
    rope_theta: spec.ropeTheta,
    partial_rotary_factor: spec.partialRotaryFactor,
    rope_scaling: spec.ropeScaling,
    max_position_embeddings: spec.maxPositionEmbeddings,
    tie_word_embeddings: spec.tieWordEmbeddings,
    attention_bias: spec.arch === 'qwen2',
    ...familyConfig(spec),
    bos_token_id: bos,
    eos_token_id: 2,
    torch_dtype: spec.kvDtype === 'float16' ? 'float16' : 'float32',
    // lets the reference forward rebuild the exact weights from the folder alone
    quire_generator: spec,
  };
}
