// The decoder graph in the layout onnxruntime-genai's model builder writes (src/python/py/models/
// builders/base.py): inputs input_ids, attention_mask and past_key_values.{i}.key/value (no
// position_ids: RoPE runs inside com.microsoft GroupQueryAttention from cos/sin caches, at positions
// it derives from seqlens_k = sum(attention_mask) - 1); SimplifiedLayerNormalization first, then
// com.microsoft SkipSimplifiedLayerNormalization carrying the residual; one packed QKV MatMul; and a
// genai_config.json whose search.past_present_share_buffer is true (GroupQueryAttention's runtime
// feeds past as a max-length buffer that present shares). Names follow the builder's.
import { EXPORT_STYLES } from '../../native-models/export-style.ts';
import { encodeModel, OnnxDataType, type ValueInfoProto } from './onnx-proto.ts';
import { float, GraphBuilder, int, linearLayer, MS_DOMAIN, onnxFloat } from './onnx-graph.ts';
import { hasQkNorm, layerRope, slidingLayers, type TinyModelSpec, type TinyWeights } from './tiny-model-spec.ts';

const OPSET_VERSION = 21;
const IR_VERSION = 10;

/** cos and sin of position x invFreq for every position the model supports, [maxPositions, rotaryDim / 2], times the attention factor (the builder's "mscale"). */
function rotaryCaches(g: GraphBuilder, spec: TinyModelSpec, layer: number, suffix: string): { cos: string; sin: string } {
  const rope = layerRope(spec, layer);
  const half = rope.rotaryDim / 2;
  if (half % 8 !== 0) throw new RangeError(`GroupQueryAttention needs rotaryDim / 2 (${half}) to be a multiple of 8`);
  const cos = new Float32Array(spec.maxPositionEmbeddings * half);
  const sin = new Float32Array(spec.maxPositionEmbeddings * half);
  for (let p = 0; p < spec.maxPositionEmbeddings; p++) {
    for (let m = 0; m < half; m++) {
      const angle = Math.fround(p * Math.fround(rope.invFreq[m]));
      cos[p * half + m] = Math.cos(angle) * rope.attentionFactor;
      sin[p * half + m] = Math.sin(angle) * rope.attentionFactor;
    }
  }
  return {
    cos: g.weight(`cos_cache${suffix}`, cos, [spec.maxPositionEmbeddings, half]),
    sin: g.weight(`sin_cache${suffix}`, sin, [spec.maxPositionEmbeddings, half]),
  };
}

/** SimplifiedLayerNormalization (ai.onnx domain in onnxruntime) of x, or SkipSimplified of x + skip, which also returns the sum (the next residual). */
function layerNorm(g: GraphBuilder, x: string, skip: string | undefined, weight: string, eps: number, withSum = true): { out: string; sum: string } {
  if (!skip) {
    const out = g.op('SimplifiedLayerNormalization', [x, weight], [float('epsilon', eps), int('axis', -1), int('stash_type', 1)]);
    return { out, sum: x };
  }
  const outputs = withSum ? [undefined, '', '', undefined] : [undefined];
  const [out, , , sum] = g.node('SkipSimplifiedLayerNormalization', [x, skip, weight], outputs, [float('epsilon', eps)], MS_DOMAIN);
  return { out, sum: sum ?? '' };
}

function graphIo(spec: TinyModelSpec, floatType: OnnxDataType): { inputs: ValueInfoProto[]; outputs: ValueInfoProto[] } {
  const inputs: ValueInfoProto[] = [
    { name: 'input_ids', elemType: OnnxDataType.INT64, shape: ['batch_size', 'sequence_length'] },
    { name: 'attention_mask', elemType: OnnxDataType.INT64, shape: ['batch_size', 'total_sequence_length'] },
  ];
  const outputs: ValueInfoProto[] = [{ name: 'logits', elemType: floatType, shape: ['batch_size', 'sequence_length', spec.vocabSize] }];
  const kv = (name: string, tokens: string): ValueInfoProto => ({ name, elemType: floatType, shape: ['batch_size', spec.kvHeads, tokens, spec.headDim] });
  for (let l = 0; l < spec.layers; l++) {
    inputs.push(kv(`past_key_values.${l}.key`, 'past_sequence_length'), kv(`past_key_values.${l}.value`, 'past_sequence_length'));
    outputs.push(kv(`present.${l}.key`, 'total_sequence_length'), kv(`present.${l}.value`, 'total_sequence_length'));
  }
  return { inputs, outputs };
}

export function buildGenaiGraph(spec: TinyModelSpec, weights: TinyWeights, externalDataFile: string): { model: Uint8Array; graph: GraphBuilder } {
  const style = EXPORT_STYLES[spec.exportStyle];
  if (spec.kvDtype !== style.activations) throw new RangeError(`genai exports keep the KV cache in the activations' type (${style.activations})`);
  if (slidingLayers(spec).some(Boolean)) throw new RangeError('the genai generator writes no sliding-window layers');
  const g = new GraphBuilder(externalDataFile, style.activations);
  const int4 = style.weights === 'int4';
  const { hiddenSize: h, vocabSize: v, heads, kvHeads, headDim, intermediateSize: f, rmsNormEps: eps } = spec;
  const qDim = heads * headDim;
  const kvDim = kvHeads * headDim;

  // /model/attn_mask_reformat: seqlens_k = sum(mask) - 1 and total_seq_len = mask length, both int32
  const one = g.int64([1]);
  const maskSum = g.op('ReduceSum', ['attention_mask', one], [int('keepdims', 0)]);
  const seqlensK = g.op('Cast', [g.op('Sub', [maskSum, one])], [int('to', OnnxDataType.INT32)]);
  const totalSeqLen = g.op('Cast', [g.op('Gather', [g.op('Shape', ['attention_mask']), g.int64([1], [])], [int('axis', 0)])], [int('to', OnnxDataType.INT32)]);

  const caches = new Map<string, { cos: string; sin: string }>();
  const embed = g.weight('model.embed_tokens.weight', weights.embed, [v, h]);
  let residual = g.op('Gather', [embed, 'input_ids'], [int('axis', 0)]);
  let skip: string | undefined;
  weights.layers.forEach((layer, l) => {
    const base = `model.layers.${l}`;
    const input = layerNorm(g, residual, skip, g.weight(`${base}.input_layernorm.weight`, layer.inputNorm, [h]), eps);
    residual = input.sum;

    // packed QKV projection (and bias), split only where q/k norms must run per head first
    const packedWeight = new Float32Array(h * (qDim + 2 * kvDim));
    for (let i = 0; i < h; i++) {
      packedWeight.set(layer.q.subarray(i * qDim, (i + 1) * qDim), i * (qDim + 2 * kvDim));
      packedWeight.set(layer.k.subarray(i * kvDim, (i + 1) * kvDim), i * (qDim + 2 * kvDim) + qDim);
      packedWeight.set(layer.v.subarray(i * kvDim, (i + 1) * kvDim), i * (qDim + 2 * kvDim) + qDim + kvDim);
    }
    let qkv = linearLayer(g, input.out, `${base}.attn.qkv_proj.MatMul`, packedWeight, h, qDim + 2 * kvDim, int4);
    if (layer.qBias && layer.kBias && layer.vBias) {
      const packedBias = Float32Array.from([...layer.qBias, ...layer.kBias, ...layer.vBias]);
      qkv = g.op('Add', [qkv, g.weight(`${base}.attn.qkv_proj.Add.bias`, packedBias, [qDim + 2 * kvDim])]);
    }
    let qkvInputs: string[] = [qkv, '', ''];
    if (hasQkNorm(spec) && layer.qNorm && layer.kNorm) {
      const [q, k, vv] = g.split(qkv, [qDim, kvDim, kvDim]);
      const perHead = (x: string, name: string, w: Float32Array, width: number) => {
        const rows = g.op('Reshape', [x, g.int64([0, -1, headDim])]);
        const normed = layerNorm(g, rows, undefined, g.weight(`${base}.attn.${name}.layernorm.weight`, w, [headDim]), eps).out;
        return g.op('Reshape', [normed, g.int64([0, -1, width])]);
      };
      qkvInputs = [perHead(q, 'q_norm', layer.qNorm, qDim), perHead(k, 'k_norm', layer.kNorm, kvDim), vv];
    }
    const rope = layerRope(spec, l);
    const key = String(rope.invFreq);
    if (!caches.has(key)) caches.set(key, rotaryCaches(g, spec, l, caches.size === 0 ? '' : `_${caches.size}`));
    const { cos, sin } = caches.get(key)!;
    const [attn] = g.node(
      'GroupQueryAttention',
      [...qkvInputs, `past_key_values.${l}.key`, `past_key_values.${l}.value`, seqlensK, totalSeqLen, cos, sin],
      [undefined, `present.${l}.key`, `present.${l}.value`],
      [
        int('num_heads', heads),
        int('kv_num_heads', kvHeads),
        float('scale', 1 / Math.sqrt(headDim)),
        int('local_window_size', -1),
        float('softcap', 0),
        int('do_rotary', 1),
        int('rotary_interleaved', 0),
      ],
      MS_DOMAIN,
    );
    const attnOut = linearLayer(g, attn, `${base}.attn.o_proj.MatMul`, layer.o, qDim, h, int4);

    const post = layerNorm(g, residual, attnOut, g.weight(`${base}.post_attention_layernorm.weight`, layer.postNorm, [h]), eps);
    residual = post.sum;
    const gate = linearLayer(g, post.out, `${base}.mlp.gate_proj.MatMul`, layer.gate, h, f, int4);
    const up = linearLayer(g, post.out, `${base}.mlp.up_proj.MatMul`, layer.up, h, f, int4);
    const act = g.op('Mul', [gate, g.op('Sigmoid', [gate])]);
    skip = linearLayer(g, g.op('Mul', [act, up]), `${base}.mlp.down_proj.MatMul`, layer.down, f, h, int4);
  });
  const final = layerNorm(g, residual, skip, g.weight('model.norm.weight', weights.finalNorm, [h]), eps, false);
  // the builder writes the head as its own MatMul even for tied embeddings (and quantizes it in int4 exports)
  const logits = linearLayer(g, final.out, 'lm_head.MatMul', weights.lmHead, h, v, int4);
  g.op('Identity', [logits], [], 'logits');

  const model = encodeModel({
    irVersion: IR_VERSION,
    opsetVersion: OPSET_VERSION,
    extraOpsets: [{ domain: MS_DOMAIN, version: 1 }],
    producerName: 'quire-tiny-model-generator (onnxruntime-genai builder layout)',
    graph: { name: 'main_graph', nodes: g.nodes, initializers: g.initializers, ...graphIo(spec, onnxFloat(style.activations)) },
  });
  return { model, graph: g };
}

/** genai_config.json as the builder writes it (make_genai_config), for this spec. */
export function genaiConfigOf(spec: TinyModelSpec, eosTokenId: number, padTokenId: number): Record<string, unknown> {
  return {
    model: {
      bos_token_id: 1,
      context_length: spec.maxPositionEmbeddings,
      decoder: {
        session_options: { log_id: 'onnxruntime-genai', provider_options: [] },
        filename: 'model.onnx',
        head_size: spec.headDim,
        hidden_size: spec.hiddenSize,
        inputs: {
          input_ids: 'input_ids',
          attention_mask: 'attention_mask',
          past_key_names: 'past_key_values.%d.key',
          past_value_names: 'past_key_values.%d.value',
        },
        outputs: { logits: 'logits', present_key_names: 'present.%d.key', present_value_names: 'present.%d.value' },
        num_attention_heads: spec.heads,
        num_hidden_layers: spec.layers,
        num_key_value_heads: spec.kvHeads,
      },
      eos_token_id: eosTokenId,
      pad_token_id: padTokenId,
      type: spec.arch === 'gemma3' ? 'gemma3_text' : spec.arch,
      vocab_size: spec.vocabSize,
    },
    search: {
      diversity_penalty: 0,
      do_sample: false,
      early_stopping: true,
      length_penalty: 1,
      max_length: spec.maxPositionEmbeddings,
      min_length: 0,
      no_repeat_ngram_size: 0,
      num_beams: 1,
      num_return_sequences: 1,
      past_present_share_buffer: true,
      repetition_penalty: 1,
      temperature: 1,
      top_k: 50,
      top_p: 1,
    },
  };
}
