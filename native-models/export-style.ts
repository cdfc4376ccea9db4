// Export styles: how the tools that publish ONNX decoders lay out the graph, in one table. The
// engine reads the contract of a loaded model from its session (model-runner.ts); this file holds
// what differs by exporter: where input/output names come from, whether the exporter's own
// runtime shares past and present buffers, and what cannot run. The named styles (layout x weight
// precision) are what the curated catalog names and what test/tools/generate-model.ts imitates.
import type { ModelFolder } from './model-folder.ts';

type Json = Record<string, unknown>;

/** Graph layouts: Optimum's text-generation-with-past (also transformers.js' exports) and onnxruntime-genai's builder. */
export type GraphLayout = 'optimum' | 'genai';

export type ExportStyleId =
  | 'optimum-fp32'
  | 'transformers.js-fp16'
  | 'transformers.js-q4'
  | 'transformers.js-q4f16'
  | 'genai-fp32'
  | 'genai-fp16'
  | 'genai-int4';

export interface ExportStyle {
  id: ExportStyleId;
  layout: GraphLayout;
  /** How MatMul weights are stored: float, or 4-bit blocks (com.microsoft MatMulNBits, block 32, symmetric). */
  weights: 'float32' | 'float16' | 'int4';
  /** Element type of activations, KV cache and logits. */
  activations: 'float32' | 'float16';
  /** The ONNX file's name in the exporter's repositories. */
  onnxFile: string;
  description: string;
}

export const EXPORT_STYLES: Readonly<Record<ExportStyleId, ExportStyle>> = {
  'optimum-fp32': {
    id: 'optimum-fp32',
    layout: 'optimum',
    weights: 'float32',
    activations: 'float32',
    onnxFile: 'onnx/model.onnx',
    description: 'Optimum / transformers.js fp32: standard ONNX ops, position_ids input, past_key_values.{i}.key/value',
  },
  'transformers.js-fp16': {
    id: 'transformers.js-fp16',
    layout: 'optimum',
    weights: 'float16',
    activations: 'float16',
    onnxFile: 'onnx/model_fp16.onnx',
    description: 'transformers.js fp16: the Optimum graph in float16 (norms and softmax in float32), float16 KV and logits',
  },
  'transformers.js-q4': {
    id: 'transformers.js-q4',
    layout: 'optimum',
    weights: 'int4',
    activations: 'float32',
    onnxFile: 'onnx/model_q4.onnx',
    description: 'transformers.js q4: MatMulNBits 4-bit weights (block 32, symmetric), float32 activations and KV',
  },
  'transformers.js-q4f16': {
    id: 'transformers.js-q4f16',
    layout: 'optimum',
    weights: 'int4',
    activations: 'float16',
    onnxFile: 'onnx/model_q4f16.onnx',
    description: 'transformers.js q4f16: MatMulNBits 4-bit weights with float16 scales, float16 activations, KV and logits',
  },
  'genai-fp32': {
    id: 'genai-fp32',
    layout: 'genai',
    weights: 'float32',
    activations: 'float32',
    onnxFile: 'model.onnx',
    description:
      'onnxruntime-genai builder fp32: GroupQueryAttention with RoPE inside (cos/sin caches, positions from the attention mask), SkipSimplifiedLayerNormalization, genai_config.json',
  },
  'genai-fp16': {
    id: 'genai-fp16',
    layout: 'genai',
    weights: 'float16',
    activations: 'float16',
    onnxFile: 'model.onnx',
    description: 'onnxruntime-genai builder fp16: as genai-fp32 in float16',
  },
  'genai-int4': {
    id: 'genai-int4',
    layout: 'genai',
    weights: 'int4',
    activations: 'float32',
    onnxFile: 'model.onnx',
    description: 'onnxruntime-genai builder int4 (its CPU build): MatMulNBits 4-bit weights, float32 activations',
  },
};

/** Input and output names of a decoder session, per layer for the KV. */
export interface DecoderIoNames {
  inputIds: string;
  attentionMask?: string;
  positionIds?: string;
  /** Optimum's merged decoders: a bool input choosing the with-past branch. */
  useCacheBranch?: string;
  pastKeys: string[];
  pastValues: string[];
  logits: string;
  presentKeys: string[];
  presentValues: string[];
}

interface LayoutQuirks {
  /** Names from the session's inputs and outputs (and the layout's own config where it has one). */
  names(inputs: readonly string[], outputs: readonly string[], model: ModelFolder): DecoderIoNames;
  /**
   * Whether the exporter's runtime feeds past as a max-length buffer that present shares. The
   * engine never does: onnxruntime-node cannot alias an output to an input, so sharing would save
   * nothing, and a max-length buffer of a 32K-context model is hundreds of MB per run. It feeds the
   * past at its length; GroupQueryAttention then returns present at past + new tokens
   * (test/export-styles.test.ts checks both ways give the same logits and KV).
   */
  sharedKvBuffer(model: ModelFolder): boolean;
  /** Why this export cannot run in the engine, if it cannot. */
  refusal(model: ModelFolder): string | undefined;
}

function layerNames(names: readonly string[], pattern: RegExp, kind: 'key' | 'value'): string[] {
  const found = new Map<number, string>();
  for (const n of names) {
    const m = pattern.exec(n);
    if (m && m[2] === kind) found.set(Number(m[1]), n);
  }
  return [...found.keys()].sort((a, b) => a - b).map((i) => found.get(i)!);
}

/** Optimum's (and Hugging Face's) names, found by pattern in the session's inputs and outputs. */
function optimumNames(inputs: readonly string[], outputs: readonly string[]): DecoderIoNames {
  const past = /^past(?:_key_values)?\.(\d+)\.(key|value)$/;
  const present = /^present(?:_key_values)?\.(\d+)\.(key|value)$/;
  return {
    inputIds: inputs.find((n) => n === 'input_ids') ?? '',
    attentionMask: inputs.find((n) => n === 'attention_mask'),
    positionIds: inputs.find((n) => n === 'position_ids'),
    useCacheBranch: inputs.find((n) => n === 'use_cache_branch'),
    pastKeys: layerNames(inputs, past, 'key'),
    pastValues: layerNames(inputs, past, 'value'),
    logits: outputs.find((n) => n === 'logits') ?? '',
    presentKeys: layerNames(outputs, present, 'key'),
    presentValues: layerNames(outputs, present, 'value'),
  };
}

const decoderOf = (model: ModelFolder) => ((model.genaiConfig?.model as Json | undefined)?.decoder ?? {}) as Json;

/** genai_config.json's decoder.inputs/outputs (printf patterns such as "past_key_values.%d.key"), falling back to Optimum's names. */
function genaiNames(inputs: readonly string[], outputs: readonly string[], model: ModelFolder): DecoderIoNames {
  const decoder = decoderOf(model);
  const ins = (decoder.inputs ?? {}) as Json;
  const outs = (decoder.outputs ?? {}) as Json;
  const layers = Number(decoder.num_hidden_layers ?? model.config.num_hidden_layers);
  const fallback = optimumNames(inputs, outputs);
  const named = (key: string, table: Json, among: readonly string[]) => {
    const n = table[key];
    return typeof n === 'string' && among.includes(n) ? n : undefined;
  };
  const perLayer = (key: string, table: Json, among: readonly string[], otherwise: string[]) => {
    const pattern = table[key];
    if (typeof pattern !== 'string' || !Number.isInteger(layers)) return otherwise;
    const list = Array.from({ length: layers }, (_, l) => pattern.replace('%d', String(l)));
    return list.every((n) => among.includes(n)) ? list : otherwise;
  };
  return {
    inputIds: named('input_ids', ins, inputs) ?? fallback.inputIds,
    attentionMask: named('attention_mask', ins, inputs) ?? fallback.attentionMask,
    positionIds: named('position_ids', ins, inputs) ?? fallback.positionIds,
    useCacheBranch: fallback.useCacheBranch,
    pastKeys: perLayer('past_key_names', ins, inputs, fallback.pastKeys),
    pastValues: perLayer('past_value_names', ins, inputs, fallback.pastValues),
    logits: named('logits', outs, outputs) ?? fallback.logits,
    presentKeys: perLayer('present_key_names', outs, outputs, fallback.presentKeys),
    presentValues: perLayer('present_value_names', outs, outputs, fallback.presentValues),
  };
}

export const GRAPH_LAYOUTS: Readonly<Record<GraphLayout, LayoutQuirks>> = {
  optimum: {
    names: optimumNames,
    sharedKvBuffer: () => false,
    refusal: () => undefined,
  },
  genai: {
    names: genaiNames,
    sharedKvBuffer: (model) => ((model.genaiConfig?.search ?? {}) as Json).past_present_share_buffer === true,
    refusal: (model) => {
      const window = decoderOf(model).sliding_window as Json | undefined;
      if (!window) return undefined;
      // the builder gives sliding-window layers a cache of window size (GroupQueryAttention evicts
      // inside the op): such layers cannot hold a whole prompt's KV laid end to end
      return `this onnxruntime-genai export keeps only the last ${String(window.window_size)} tokens' KV for its sliding-window layers (genai_config.json decoder.sliding_window): stored blocks cannot be laid end to end; re-export it with full-length caches (builder option windowed_kv_cache=false)`;
    },
  },
};

/** The layout of a loaded folder: onnxruntime-genai when it has a genai_config.json. */
export function graphLayoutOf(model: Pick<ModelFolder, 'genaiConfig'>): GraphLayout {
  return model.genaiConfig ? 'genai' : 'optimum';
}
