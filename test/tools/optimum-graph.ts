// The decoder graph in the layout of Optimum's "text-generation-with-past" exports, which
// transformers.js' onnx-community files share: inputs input_ids, attention_mask, position_ids,
// past_key_values.{i}.key/value; outputs logits, present.{i}.key/value; standard ai.onnx ops. The
// export style picks the weights (float32, float16, or 4-bit MatMulNBits) and the activations'
// type; in float16 graphs RMSNorm, RoPE tables and softmax run in float32 as transformers' modules
// compute them (LlamaRMSNorm upcasts; eager attention takes softmax in float32).
import { EXPORT_STYLES } from '../../native-models/export-style.ts';
import { encodeModel, OnnxDataType, type ValueInfoProto } from './onnx-proto.ts';
import { GraphBuilder, int, ints, linearLayer, MS_DOMAIN, onnxFloat } from './onnx-graph.ts';
import { layerRope, slidingLayers, type TinyLayerWeights, type TinyModelSpec, type TinyWeights } from './tiny-model-spec.ts';
import { lmHeadQuantized } from './weight-formats.ts';

const OPSET_VERSION = 17;
const IR_VERSION = 8;
/** Added to masked scores: float32's lowest value, as in transformers (-inf would make fully padded rows NaN). */
const MASKED_SCORE = -3.4028234663852886e38;

/** x / sqrt(mean(x^2) + eps) * w over the last axis, in float32 (as LlamaRMSNorm), the weight product in the activations' type. */
function rmsNorm(g: GraphBuilder, x: string, weight: string, eps: number): string {
  const x32 = g.toFloat32(x);
  const meanSquare = g.op('ReduceMean', [g.op('Mul', [x32, x32])], [ints('axes', [-1]), int('keepdims', 1)]);
  const inverseRms = g.op('Reciprocal', [g.op('Sqrt', [g.op('Add', [meanSquare, g.float32([eps], [])])])]);
  return g.op('Mul', [g.toFloatType(g.op('Mul', [x32, inverseRms])), weight]);
}

/** [batch, seq, heads*headDim] -> [batch, heads, seq, headDim] */
function splitHeads(g: GraphBuilder, x: string, heads: number, headDim: number): string {
  return g.op('Transpose', [g.op('Reshape', [x, g.int64([0, 0, heads, headDim])])], [ints('perm', [0, 2, 1, 3])]);
}

interface Rotary {
  cos: string; // [batch, 1, seq, rotaryDim], activations' type
  sin: string;
  rotaryDim: number;
  headDim: number;
}

/**
 * cos and sin of positions x invFreq, duplicated over both halves and multiplied by the attention
 * factor, as LlamaRotaryEmbedding computes them (float32 product, then cos/sin); one table per
 * distinct RoPE (gemma3's local and global layers differ).
 */
function rotaryTables(g: GraphBuilder, spec: TinyModelSpec, layer: number, positions: string): Rotary {
  const rope = layerRope(spec, layer);
  const freqs = g.op('Mul', [positions, g.float32(Float32Array.from(rope.invFreq))]); // [batch, seq, rotaryDim/2]
  const angles = g.op('Unsqueeze', [g.op('Concat', [freqs, freqs], [int('axis', -1)]), g.int64([1])]);
  const factor = g.float32([rope.attentionFactor], []);
  return {
    cos: g.toFloatType(g.op('Mul', [g.op('Cos', [angles]), factor])),
    sin: g.toFloatType(g.op('Mul', [g.op('Sin', [angles]), factor])),
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
 * Positions of the new tokens: the position_ids input, or, in graphs without it, what transformers
 * derived before position_ids became an input: cumsum(attention_mask) - 1 over the whole sequence,
 * its last `sequence_length` entries (all-ones masks make that past_length..total-1).
 */
function positionsOf(g: GraphBuilder, spec: TinyModelSpec): string {
  const asFloat = (x: string) => g.op('Unsqueeze', [g.op('Cast', [x], [int('to', OnnxDataType.FLOAT)]), g.int64([-1])]);
  if (spec.positionIdsInput) return asFloat('position_ids');
  const fromMask = g.op('Sub', [g.op('CumSum', ['attention_mask', g.int64([1], [])]), g.int64([1], [])]);
  const newTokens = g.op('Gather', [g.op('Shape', ['input_ids']), g.int64([1], [])]);
  const last = g.op('Slice', [fromMask, g.op('Unsqueeze', [g.op('Neg', [newTokens]), g.int64([0])]), g.int64([Number.MAX_SAFE_INTEGER]), g.int64([1])]);
  return asFloat(last);
}

/**
 * Additive attention bias [batch, 1, 1, seq, total] in float32: 0 where new token i (at index
 * past+i of the concatenated sequence) may see key j, i.e. j <= past+i, attention_mask[j] == 1 and,
 * for a sliding-window layer, past+i - j < window (by index, as transformers' sliding mask); the
 * lowest float32 elsewhere.
 */
function attentionBias(g: GraphBuilder, window: number | null): string {
  const axisLength = (x: string, axis: number) => g.op('Gather', [g.op('Shape', [x]), g.int64([axis], [])]);
  const newTokens = axisLength('input_ids', 1);
  const total = axisLength('attention_mask', 1);
  const one = g.int64([1], []);
  const queryIndex = g.op('Unsqueeze', [g.op('Range', [g.op('Sub', [total, newTokens]), total, one]), g.int64([1])]); // [seq, 1]
  const keyIndex = g.op('Unsqueeze', [g.op('Range', [g.int64([0], []), total, one]), g.int64([0])]); // [1, total]
  let allowed = g.op('LessOrEqual', [keyIndex, queryIndex]); // [seq, total]
  if (window !== null) allowed = g.op('And', [allowed, g.op('Less', [g.op('Sub', [queryIndex, keyIndex]), g.int64([window], [])])]);
  // [batch, 1, 1, 1, total]
  const notPadding = g.op('Unsqueeze', [g.op('Equal', ['attention_mask', one]), g.int64([1, 2, 3])]);
  return g.op('Where', [g.op('And', [allowed, notPadding]), g.float32([0], []), g.float32([MASKED_SCORE], [])]);
}

type KvPart = 'key' | 'value';
const pastName = (layer: number, part: KvPart) => `past_key_values.${layer}.${part}`;
const presentName = (layer: number, part: KvPart) => `present.${layer}.${part}`;

/**
 * present = concat(past, new) along the token axis, stored as spec.kvDtype. Returns the tensor
 * attention reads: for a float16 cache in a float32 graph that is the rounded present, so attending
 * over a cache handed back as past gives the same result as attending within one run.
 */
function appendToCache(g: GraphBuilder, spec: TinyModelSpec, layer: number, part: KvPart, current: string): string {
  const [past, present] = [pastName(layer, part), presentName(layer, part)];
  if (spec.kvDtype === g.floatType) return g.op('Concat', [past, current], [int('axis', 2)], present);
  const pastFloat = g.op('Cast', [past], [int('to', OnnxDataType.FLOAT)]);
  const joined = g.op('Concat', [pastFloat, current], [int('axis', 2)]);
  const stored = g.op('Cast', [joined], [int('to', OnnxDataType.FLOAT16)], present);
  return g.op('Cast', [stored], [int('to', OnnxDataType.FLOAT)]);
}

interface LayerContext {
  spec: TinyModelSpec;
  int4: boolean;
  rotary: Rotary;
  bias: string;
}

/**
 * Self-attention with GQA: each KV head serves heads/kvHeads query heads. Queries are grouped as
 * [batch, kvHeads, group, seq, headDim] so MatMul broadcasts K and V over the group without copying
 * them (query head h uses KV head floor(h / group), as transformers' repeat_kv). Qwen 3 / Gemma 3
 * normalise q and k per head before RoPE.
 */
function attention(g: GraphBuilder, x: string, layer: number, weights: TinyLayerWeights, c: LayerContext): string {
  const { heads, kvHeads, headDim, hiddenSize: h, rmsNormEps: eps } = c.spec;
  const prefix = `model.layers.${layer}.self_attn`;
  const group = heads / kvHeads;
  const qDim = heads * headDim;
  const kvDim = kvHeads * headDim;
  const projection = (name: string, matrix: Float32Array, bias: Float32Array | undefined, out: number) => {
    const y = linearLayer(g, x, `${prefix}.${name}`, matrix, h, out, c.int4);
    return bias ? g.op('Add', [y, g.weight(`${prefix}.${name}.bias`, bias, [out])]) : y;
  };
  const headNorm = (t: string, name: string, weight: Float32Array | undefined) =>
    weight ? rmsNorm(g, t, g.weight(`${prefix}.${name}.weight`, weight, [headDim]), eps) : t;
  const q = headNorm(splitHeads(g, projection('q_proj', weights.q, weights.qBias, qDim), heads, headDim), 'q_norm', weights.qNorm);
  const k = headNorm(splitHeads(g, projection('k_proj', weights.k, weights.kBias, kvDim), kvHeads, headDim), 'k_norm', weights.kNorm);
  const v = splitHeads(g, projection('v_proj', weights.v, weights.vBias, kvDim), kvHeads, headDim);
  const keys = appendToCache(g, c.spec, layer, 'key', applyRotary(g, k, c.rotary));
  const values = appendToCache(g, c.spec, layer, 'value', v);

  const groupedQ = g.op('Reshape', [applyRotary(g, q, c.rotary), g.int64([0, kvHeads, group, -1, headDim])]);
  const keysT = g.op('Unsqueeze', [g.op('Transpose', [keys], [ints('perm', [0, 1, 3, 2])]), g.int64([2])]);
  const scores = g.op('Mul', [g.op('MatMul', [groupedQ, keysT]), g.float([1 / Math.sqrt(headDim)], [])]);
  const probs = g.toFloatType(g.op('Softmax', [g.op('Add', [g.toFloat32(scores), c.bias])], [int('axis', -1)]));
  // [batch, kvHeads, group, seq, headDim]
  const context = g.op('MatMul', [probs, g.op('Unsqueeze', [values, g.int64([2])])]);
  const perHead = g.op('Reshape', [context, g.int64([0, heads, -1, headDim])]);
  const merged = g.op('Reshape', [g.op('Transpose', [perHead], [ints('perm', [0, 2, 1, 3])]), g.int64([0, 0, qDim])]);
  return linearLayer(g, merged, `${prefix}.o_proj`, weights.o, qDim, h, c.int4);
}

/** down(silu(gate x) * up x) */
function mlp(g: GraphBuilder, x: string, layer: number, weights: TinyLayerWeights, c: LayerContext): string {
  const { hiddenSize: h, intermediateSize: f } = c.spec;
  const prefix = `model.layers.${layer}.mlp`;
  const gate = linearLayer(g, x, `${prefix}.gate_proj`, weights.gate, h, f, c.int4);
  const up = linearLayer(g, x, `${prefix}.up_proj`, weights.up, h, f, c.int4);
  const silu = g.op('Mul', [gate, g.op('Sigmoid', [gate])]);
  return linearLayer(g, g.op('Mul', [silu, up]), `${prefix}.down_proj`, weights.down, f, h, c.int4);
}

/** The graph's inputs and outputs, named and shaped as Optimum exports them. */
function graphIo(spec: TinyModelSpec, floatType: OnnxDataType): { inputs: ValueInfoProto[]; outputs: ValueInfoProto[] } {
  const kvType = spec.kvDtype === 'float16' ? OnnxDataType.FLOAT16 : OnnxDataType.FLOAT;
  const inputs: ValueInfoProto[] = [
    { name: 'input_ids', elemType: OnnxDataType.INT64, shape: ['batch_size', 'sequence_length'] },
    { name: 'attention_mask', elemType: OnnxDataType.INT64, shape: ['batch_size', 'total_sequence_length'] },
  ];
  if (spec.positionIdsInput) inputs.push({ name: 'position_ids', elemType: OnnxDataType.INT64, shape: ['batch_size', 'sequence_length'] });
  const outputs: ValueInfoProto[] = [{ name: 'logits', elemType: floatType, shape: ['batch_size', 'sequence_length', spec.vocabSize] }];
  const kv = (name: string, tokens: string): ValueInfoProto => ({ name, elemType: kvType, shape: ['batch_size', spec.kvHeads, tokens, spec.headDim] });
  for (let l = 0; l < spec.layers; l++) {
    for (const part of ['key', 'value'] as const) {
      inputs.push(kv(pastName(l, part), 'past_sequence_length'));
      outputs.push(kv(presentName(l, part), 'total_sequence_length'));
    }
  }
  return { inputs, outputs };
}

/** The decoder graph of a spec; its weights are referenced from `externalDataFile`, not copied. */
export function buildOptimumGraph(spec: TinyModelSpec, weights: TinyWeights, externalDataFile: string): { model: Uint8Array; graph: GraphBuilder } {
  const style = EXPORT_STYLES[spec.exportStyle];
  const g = new GraphBuilder(externalDataFile, style.activations);
  const int4 = style.weights === 'int4';
  const { hiddenSize: h, vocabSize: v } = spec;
  const norm = (x: string, name: string, weight: Float32Array) => rmsNorm(g, x, g.weight(`${name}.weight`, weight, [h]), spec.rmsNormEps);
  const embed = g.weight('model.embed_tokens.weight', weights.embed, [v, h]);
  const positions = positionsOf(g, spec);
  const sliding = slidingLayers(spec);
  const tables = new Map<string, Rotary>();
  const biases = new Map<number | null, string>();
  let hidden = g.op('Gather', [embed, 'input_ids'], [int('axis', 0)]);
  weights.layers.forEach((layer, l) => {
    const window = sliding[l] ? spec.slidingWindow : null;
    const ropeKey = String(layerRope(spec, l).invFreq);
    if (!tables.has(ropeKey)) tables.set(ropeKey, rotaryTables(g, spec, l, positions));
    if (!biases.has(window)) biases.set(window, attentionBias(g, window));
    const context: LayerContext = { spec, int4, rotary: tables.get(ropeKey)!, bias: biases.get(window)! };
    const attentionInput = norm(hidden, `model.layers.${l}.input_layernorm`, layer.inputNorm);
    hidden = g.op('Add', [hidden, attention(g, attentionInput, l, layer, context)]);
    const mlpInput = norm(hidden, `model.layers.${l}.post_attention_layernorm`, layer.postNorm);
    hidden = g.op('Add', [hidden, mlp(g, mlpInput, l, layer, context)]);
  });
  const normed = norm(hidden, 'model.norm', weights.finalNorm);
  if (lmHeadQuantized(spec)) {
    const logits = linearLayer(g, normed, 'lm_head', weights.lmHead, h, v, true);
    g.op('Identity', [logits], [], 'logits');
  } else {
    // tied: the head is the embedding read transposed, a constant subgraph onnxruntime folds at load
    const lmHead = spec.tieWordEmbeddings ? g.op('Transpose', [embed], [ints('perm', [1, 0])]) : g.weight('lm_head.weight', weights.lmHead, [h, v]);
    g.op('MatMul', [normed, lmHead], [], 'logits');
  }
  const model = encodeModel({
    irVersion: IR_VERSION,
    opsetVersion: OPSET_VERSION,
    extraOpsets: int4 ? [{ domain: MS_DOMAIN, version: 1 }] : [],
    producerName: 'quire-tiny-model-generator',
    graph: { name: `tiny-${spec.arch}`, nodes: g.nodes, initializers: g.initializers, ...graphIo(spec, onnxFloat(style.activations)) },
  });
  return { model, graph: g };
}
