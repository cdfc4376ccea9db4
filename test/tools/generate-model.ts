// Writes a seeded random Llama/Qwen2 decoder as a Hugging Face style ONNX folder (config, tokenizer,
// onnx/model.onnx with its weights in onnx/model.onnx_data), in the input/output layout of Optimum's
// "text-generation-with-past" exports. Standard ai.onnx operators only, computed in float32, so it
// runs anywhere onnxruntime does and can be checked against the plain TypeScript reference forward.
import { mkdir, open, writeFile } from 'node:fs/promises';
import path from 'node:path';
import {
  encodeModel,
  OnnxDataType,
  type AttributeProto,
  type ExternalDataRef,
  type NodeProto,
  type TensorProto,
  type ValueInfoProto,
} from './onnx-proto.ts';
import { ropeParamsFromConfig } from '../../native-models/rope-config.ts';
import {
  buildWeights,
  specToHfConfig,
  type TinyLayerWeights,
  type TinyModelSpec,
  type TinyWeights,
} from './tiny-model-spec.ts';
import { BOS_TOKEN_ID, EOS_TOKEN_ID, generateTokenizer, PAD_TOKEN_ID } from './generate-tokenizer.ts';

const OPSET_VERSION = 17;
const IR_VERSION = 8;
const EXTERNAL_DATA_FILE = 'model.onnx_data';
/** The ONNX spec asks for page-aligned external data offsets so runtimes can memory-map them. */
const EXTERNAL_DATA_ALIGNMENT = 4096;
/** Added to masked scores: float32's lowest value, as in transformers (-inf would make fully padded rows NaN). */
const MASKED_SCORE = -3.4028234663852886e38;

const int = (name: string, value: number): AttributeProto => ({ name, kind: 'int', value });
const ints = (name: string, value: number[]): AttributeProto => ({ name, kind: 'ints', value });

/** Lays float32 weights end to end in the external data file; they are written later, tensor by tensor. */
class ExternalData {
  readonly tensors: { data: Float32Array; offset: number }[] = [];
  private size = 0;

  add(data: Float32Array): ExternalDataRef {
    const offset = Math.ceil(this.size / EXTERNAL_DATA_ALIGNMENT) * EXTERNAL_DATA_ALIGNMENT;
    this.tensors.push({ data, offset });
    this.size = offset + data.byteLength;
    return { location: EXTERNAL_DATA_FILE, offset, length: data.byteLength };
  }

  /** Streams each tensor to its offset (the gaps read back as zeros), never joining them in memory. */
  async write(file: string): Promise<void> {
    const handle = await open(file, 'w');
    try {
      // ONNX raw data is little-endian, like every platform Node runs on
      for (const { data, offset } of this.tensors) {
        await handle.write(new Uint8Array(data.buffer, data.byteOffset, data.byteLength), 0, data.byteLength, offset);
      }
    } finally {
      await handle.close();
    }
  }
}

/** Collects nodes and initializers; node outputs get unique names unless the graph fixes them. */
class GraphBuilder {
  readonly nodes: NodeProto[] = [];
  readonly initializers: TensorProto[] = [];
  readonly externalData = new ExternalData();
  private readonly constants = new Map<string, string>();
  private counter = 0;

  /** A node with one output; returns the output's name (`output` when given, e.g. a graph output). */
  op(opType: string, inputs: string[], attributes: AttributeProto[] = [], output?: string): string {
    const name = `${opType}_${this.counter++}`;
    const out = output ?? `${name}/out`;
    this.nodes.push({ opType, inputs, outputs: [out], name, attributes });
    return out;
  }

  /** Split along the last axis into parts of the given sizes. */
  split(x: string, sizes: number[]): string[] {
    const name = `Split_${this.counter++}`;
    const outputs = sizes.map((_, i) => `${name}/out${i}`);
    this.nodes.push({ opType: 'Split', inputs: [x, this.int64(sizes)], outputs, name, attributes: [int('axis', -1)] });
    return outputs;
  }

  /** An int64 constant (a scalar when `dims` is []), shared between uses. */
  int64(values: number[], dims: number[] = [values.length]): string {
    return this.constant(`int64:${dims}:${values}`, () => ({ dataType: OnnxDataType.INT64, dims, int64Data: values }));
  }

  float32(values: Float32Array | number[], dims: number[] = [values.length]): string {
    const data = Float32Array.from(values);
    return this.constant(`float32:${dims}:${data}`, () => ({
      dataType: OnnxDataType.FLOAT,
      dims,
      rawData: new Uint8Array(data.buffer),
    }));
  }

  private constant(key: string, make: () => Omit<TensorProto, 'name'>): string {
    let name = this.constants.get(key);
    if (!name) {
      name = `const_${this.constants.size}`;
      this.initializers.push({ name, ...make() });
      this.constants.set(key, name);
    }
    return name;
  }

  weight(name: string, data: Float32Array, dims: number[]): string {
    this.initializers.push({ name, dataType: OnnxDataType.FLOAT, dims, external: this.externalData.add(data) });
    return name;
  }
}

/** x / sqrt(mean(x^2) + eps) * w over the last axis, as transformers' LlamaRMSNorm. */
function rmsNorm(g: GraphBuilder, x: string, weight: string, eps: number): string {
  const meanSquare = g.op('ReduceMean', [g.op('Mul', [x, x])], [ints('axes', [-1]), int('keepdims', 1)]);
  const inverseRms = g.op('Reciprocal', [g.op('Sqrt', [g.op('Add', [meanSquare, g.float32([eps], [])])])]);
  return g.op('Mul', [g.op('Mul', [x, inverseRms]), weight]);
}

/** x W (+ b) */
function linear(g: GraphBuilder, x: string, weight: string, bias?: string): string {
  const y = g.op('MatMul', [x, weight]);
  return bias ? g.op('Add', [y, bias]) : y;
}

/** [batch, seq, heads*headDim] -> [batch, heads, seq, headDim] */
function splitHeads(g: GraphBuilder, x: string, heads: number, headDim: number): string {
  return g.op('Transpose', [g.op('Reshape', [x, g.int64([0, 0, heads, headDim])])], [ints('perm', [0, 2, 1, 3])]);
}

interface Rotary {
  cos: string; // [batch, 1, seq, rotaryDim]
  sin: string;
  rotaryDim: number;
  headDim: number;
}

/**
 * cos and sin of position_ids x invFreq, duplicated over both halves and multiplied by the attention
 * factor, as LlamaRotaryEmbedding computes them (float32 product, then cos/sin).
 */
function rotaryTables(g: GraphBuilder, spec: TinyModelSpec, positionIds: string): Rotary {
  const rope = ropeParamsFromConfig(specToHfConfig(spec));
  const positions = g.op('Unsqueeze', [g.op('Cast', [positionIds], [int('to', OnnxDataType.FLOAT)]), g.int64([-1])]);
  const freqs = g.op('Mul', [positions, g.float32(Float32Array.from(rope.invFreq))]); // [batch, seq, rotaryDim/2]
  const angles = g.op('Unsqueeze', [g.op('Concat', [freqs, freqs], [int('axis', -1)]), g.int64([1])]);
  const factor = g.float32([rope.attentionFactor], []);
  return {
    cos: g.op('Mul', [g.op('Cos', [angles]), factor]),
    sin: g.op('Mul', [g.op('Sin', [angles]), factor]),
    rotaryDim: rope.rotaryDim,
    headDim: spec.headDim,
  };
}

/** apply_rotary_pos_emb with rotate_half on the first rotaryDim dims of each head; the rest pass through. */
function applyRotary(g: GraphBuilder, x: string, r: Rotary): string {
  const partial = r.rotaryDim < r.headDim;
  const [rotated, passed] = partial ? g.split(x, [r.rotaryDim, r.headDim - r.rotaryDim]) : [x, undefined];
  const [x1, x2] = g.split(rotated, [r.rotaryDim / 2, r.rotaryDim / 2]);
  const rotatedHalf = g.op('Concat', [g.op('Neg', [x2]), x1], [int('axis', -1)]);
  const out = g.op('Add', [g.op('Mul', [rotated, r.cos]), g.op('Mul', [rotatedHalf, r.sin])]);
  return passed ? g.op('Concat', [out, passed], [int('axis', -1)]) : out;
}

/**
 * Additive attention bias [batch, 1, 1, seq, total]: 0 where new token i (at index past+i of the
 * concatenated sequence) may see key j, i.e. j <= past+i and attention_mask[j] == 1; MASKED_SCORE elsewhere.
 */
function attentionBias(g: GraphBuilder, inputIds: string, attentionMask: string): string {
  const axisLength = (x: string, axis: number) => g.op('Gather', [g.op('Shape', [x]), g.int64([axis], [])]);
  const newTokens = axisLength(inputIds, 1);
  const total = axisLength(attentionMask, 1);
  const one = g.int64([1], []);
  const queryIndex = g.op('Range', [g.op('Sub', [total, newTokens]), total, one]); // [seq]
  const keyIndex = g.op('Range', [g.int64([0], []), total, one]); // [total]
  const causal = g.op('LessOrEqual', [
    g.op('Unsqueeze', [keyIndex, g.int64([0])]),
    g.op('Unsqueeze', [queryIndex, g.int64([1])]),
  ]); // [seq, total]
  // [batch, 1, 1, 1, total]
  const notPadding = g.op('Unsqueeze', [g.op('Equal', [attentionMask, one]), g.int64([1, 2, 3])]);
  const allowed = g.op('And', [causal, notPadding]);
  return g.op('Where', [allowed, g.float32([0], []), g.float32([MASKED_SCORE], [])]);
}

type KvPart = 'key' | 'value';
const pastName = (layer: number, part: KvPart) => `past_key_values.${layer}.${part}`;
const presentName = (layer: number, part: KvPart) => `present.${layer}.${part}`;

/**
 * present = concat(past, new) along the token axis, stored as spec.kvDtype. Returns the float32
 * tensor attention reads: for a float16 cache that is the rounded present, so attending over a
 * cache handed back as past gives the same result as attending within one run.
 */
function appendToCache(g: GraphBuilder, spec: TinyModelSpec, layer: number, part: KvPart, current: string): string {
  const [past, present] = [pastName(layer, part), presentName(layer, part)];
  if (spec.kvDtype === 'float32') return g.op('Concat', [past, current], [int('axis', 2)], present);
  const pastFloat = g.op('Cast', [past], [int('to', OnnxDataType.FLOAT)]);
  const joined = g.op('Concat', [pastFloat, current], [int('axis', 2)]);
  const stored = g.op('Cast', [joined], [int('to', OnnxDataType.FLOAT16)], present);
  return g.op('Cast', [stored], [int('to', OnnxDataType.FLOAT)]);
}

/**
 * Self-attention with GQA: each KV head serves heads/kvHeads query heads. Queries are grouped as
 * [batch, kvHeads, group, seq, headDim] so MatMul broadcasts K and V over the group without copying
 * them (query head h uses KV head floor(h / group), as transformers' repeat_kv).
 */
function attention(
  g: GraphBuilder,
  spec: TinyModelSpec,
  x: string,
  layer: number,
  weights: TinyLayerWeights,
  rotary: Rotary,
  bias: string,
): string {
  const { heads, kvHeads, headDim, hiddenSize: h } = spec;
  const prefix = `model.layers.${layer}.self_attn`;
  const group = heads / kvHeads;
  const qDim = heads * headDim;
  const kvDim = kvHeads * headDim;
  const projection = (name: string, matrix: Float32Array, bias: Float32Array | undefined, out: number) =>
    linear(
      g,
      x,
      g.weight(`${prefix}.${name}.weight`, matrix, [h, out]),
      bias && g.weight(`${prefix}.${name}.bias`, bias, [out]),
    );
  const q = splitHeads(g, projection('q_proj', weights.q, weights.qBias, qDim), heads, headDim);
  const k = splitHeads(g, projection('k_proj', weights.k, weights.kBias, kvDim), kvHeads, headDim);
  const v = splitHeads(g, projection('v_proj', weights.v, weights.vBias, kvDim), kvHeads, headDim);
  const keys = appendToCache(g, spec, layer, 'key', applyRotary(g, k, rotary));
  const values = appendToCache(g, spec, layer, 'value', v);

  const groupedQ = g.op('Reshape', [applyRotary(g, q, rotary), g.int64([0, kvHeads, group, -1, headDim])]);
  const keysT = g.op('Unsqueeze', [g.op('Transpose', [keys], [ints('perm', [0, 1, 3, 2])]), g.int64([2])]);
  const scores = g.op('Mul', [g.op('MatMul', [groupedQ, keysT]), g.float32([1 / Math.sqrt(headDim)], [])]);
  const probs = g.op('Softmax', [g.op('Add', [scores, bias])], [int('axis', -1)]);
  // [batch, kvHeads, group, seq, headDim]
  const context = g.op('MatMul', [probs, g.op('Unsqueeze', [values, g.int64([2])])]);
  const perHead = g.op('Reshape', [context, g.int64([0, heads, -1, headDim])]);
  const merged = g.op('Reshape', [g.op('Transpose', [perHead], [ints('perm', [0, 2, 1, 3])]), g.int64([0, 0, qDim])]);
  return linear(g, merged, g.weight(`${prefix}.o_proj.weight`, weights.o, [qDim, h]));
}

/** down(silu(gate x) * up x) */
function mlp(g: GraphBuilder, spec: TinyModelSpec, x: string, layer: number, weights: TinyLayerWeights): string {
  const { hiddenSize: h, intermediateSize: f } = spec;
  const prefix = `model.layers.${layer}.mlp`;
  const gate = linear(g, x, g.weight(`${prefix}.gate_proj.weight`, weights.gate, [h, f]));
  const up = linear(g, x, g.weight(`${prefix}.up_proj.weight`, weights.up, [h, f]));
  const silu = g.op('Mul', [gate, g.op('Sigmoid', [gate])]);
  return linear(g, g.op('Mul', [silu, up]), g.weight(`${prefix}.down_proj.weight`, weights.down, [f, h]));
}

/** The graph's inputs and outputs, named and shaped as Optimum exports them. */
function graphIo(spec: TinyModelSpec): { inputs: ValueInfoProto[]; outputs: ValueInfoProto[] } {
  const kvType = spec.kvDtype === 'float16' ? OnnxDataType.FLOAT16 : OnnxDataType.FLOAT;
  const inputs: ValueInfoProto[] = [
    { name: 'input_ids', elemType: OnnxDataType.INT64, shape: ['batch_size', 'sequence_length'] },
    { name: 'attention_mask', elemType: OnnxDataType.INT64, shape: ['batch_size', 'total_sequence_length'] },
    { name: 'position_ids', elemType: OnnxDataType.INT64, shape: ['batch_size', 'sequence_length'] },
  ];
  const outputs: ValueInfoProto[] = [
    { name: 'logits', elemType: OnnxDataType.FLOAT, shape: ['batch_size', 'sequence_length', spec.vocabSize] },
  ];
  const kv = (name: string, tokens: string): ValueInfoProto => ({
    name,
    elemType: kvType,
    shape: ['batch_size', spec.kvHeads, tokens, spec.headDim],
  });
  for (let l = 0; l < spec.layers; l++) {
    for (const part of ['key', 'value'] as const) {
      inputs.push(kv(pastName(l, part), 'past_sequence_length'));
      outputs.push(kv(presentName(l, part), 'total_sequence_length'));
    }
  }
  return { inputs, outputs };
}

/** The decoder graph of a spec; its weights are referenced from the external data, not copied. */
function buildDecoderGraph(
  spec: TinyModelSpec,
  weights: TinyWeights,
): { model: Uint8Array; externalData: ExternalData } {
  if (spec.heads % spec.kvHeads !== 0) {
    throw new RangeError(`heads ${spec.heads} is not a multiple of kvHeads ${spec.kvHeads}`);
  }
  const g = new GraphBuilder();
  const { hiddenSize: h, vocabSize: v } = spec;
  const norm = (x: string, name: string, weight: Float32Array) =>
    rmsNorm(g, x, g.weight(`${name}.weight`, weight, [h]), spec.rmsNormEps);
  const embed = g.weight('model.embed_tokens.weight', weights.embed, [v, h]);
  const rotary = rotaryTables(g, spec, 'position_ids');
  const bias = attentionBias(g, 'input_ids', 'attention_mask');
  let hidden = g.op('Gather', [embed, 'input_ids'], [int('axis', 0)]);
  weights.layers.forEach((layer, l) => {
    const attentionInput = norm(hidden, `model.layers.${l}.input_layernorm`, layer.inputNorm);
    hidden = g.op('Add', [hidden, attention(g, spec, attentionInput, l, layer, rotary, bias)]);
    const mlpInput = norm(hidden, `model.layers.${l}.post_attention_layernorm`, layer.postNorm);
    hidden = g.op('Add', [hidden, mlp(g, spec, mlpInput, l, layer)]);
  });
  const normed = norm(hidden, 'model.norm', weights.finalNorm);
  // tied: the head is the embedding read transposed, a constant subgraph onnxruntime folds at load
  const lmHead = spec.tieWordEmbeddings
    ? g.op('Transpose', [embed], [ints('perm', [1, 0])])
    : g.weight('lm_head.weight', weights.lmHead, [h, v]);
  g.op('MatMul', [normed, lmHead], [], 'logits');

  const model = encodeModel({
    irVersion: IR_VERSION,
    opsetVersion: OPSET_VERSION,
    producerName: 'quire-tiny-model-generator',
    graph: { name: `tiny-${spec.arch}`, nodes: g.nodes, initializers: g.initializers, ...graphIo(spec) },
  });
  return { model, externalData: g.externalData };
}

/**
 * Writes the model folder: config.json, generation_config.json, tokenizer.json,
 * tokenizer_config.json, onnx/model.onnx and onnx/model.onnx_data.
 */
export async function generateModel(dir: string, spec: TinyModelSpec): Promise<void> {
  const onnxDir = path.join(dir, 'onnx');
  await mkdir(onnxDir, { recursive: true });
  await writeFile(path.join(dir, 'config.json'), JSON.stringify(specToHfConfig(spec), null, 2));
  const generationConfig = {
    bos_token_id: spec.addBos ? BOS_TOKEN_ID : null,
    eos_token_id: EOS_TOKEN_ID,
    pad_token_id: PAD_TOKEN_ID,
  };
  await writeFile(path.join(dir, 'generation_config.json'), JSON.stringify(generationConfig, null, 2));
  await generateTokenizer(dir, spec);
  const { model, externalData } = buildDecoderGraph(spec, buildWeights(spec));
  await externalData.write(path.join(onnxDir, EXTERNAL_DATA_FILE));
  // last, so an interrupted run leaves no model.onnx that points at incomplete weights
  await writeFile(path.join(onnxDir, 'model.onnx'), model);
}
