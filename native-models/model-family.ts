// Model families: what a config.json's model_type changes for block attention, in one table (as
// transformers.js keeps a family's quirks in one place instead of ifs across the code). Only
// details that change how stored keys re-encode or which keys a query sees belong here: the RoPE
// layout, per-layer RoPE parameters, sliding-window layers, and families that cannot work at all.
// Everything else about a family lives inside its ONNX graph. That includes Qwen 3's and Gemma 3's
// q/k norms: keys are RMS-normalised per head BEFORE RoPE, so a stored key is still norm(k) rotated
// by its position and moving it is still a pure rotation (test/model-families.test.ts checks it).
import { ropeParamsFromConfig, type RopeLayout, type RopeParams } from './rope-config.ts';

type Json = Record<string, unknown>;

/** How a layer's queries see earlier keys: all of them, or only the last `window` (itself included). */
export type LayerAttention = { kind: 'full' } | { kind: 'sliding'; window: number };

export interface FamilyQuirks {
  /** Set when block attention cannot work for the family at all: the reason, shown to the user. */
  unsupported?: string;
  /** Pairs RoPE rotates (default rotate-half, as Hugging Face Llama, Qwen, Mistral, Phi, Gemma). */
  ropeLayout?: RopeLayout;
  /** Which layers attend through a sliding window (`config.layer_types` wins where the config has one). */
  slidingLayers?: (config: Json, layer: number) => boolean;
  /** The config RoPE reads for a sliding-window layer, when it differs from the global layers' (Gemma 3). */
  slidingRopeConfig?: (config: Json) => Json;
}

const absolutePositions = (name: string) =>
  `${name} has no rotary position embedding (RoPE): its positions are learned tables or ALiBi biases, so stored KV cannot be re-encoded to new positions`;

/** Mistral, Phi-3, Starcoder2: one window for every layer when config.sliding_window is set. */
const everyLayerWhenWindowSet = (config: Json) => typeof config.sliding_window === 'number';

/** Qwen2/Qwen3: the window is opt-in (use_sliding_window) and starts at layer max_window_layers. */
const qwenSliding = (config: Json, layer: number) =>
  config.use_sliding_window === true && typeof config.sliding_window === 'number' && layer >= Number(config.max_window_layers ?? 0);

/** Gemma 3: five local (sliding, theta 10K, unscaled) layers, then one global layer, repeating. */
const gemma3Sliding = (config: Json, layer: number) => (layer + 1) % Number(config.sliding_window_pattern ?? 6) !== 0;
const gemma3LocalRope = (config: Json): Json => ({
  ...config,
  rope_theta: config.rope_local_base_freq ?? 10000,
  rope_scaling: null,
  rope_parameters: undefined,
});

export const MODEL_FAMILIES: Readonly<Record<string, FamilyQuirks>> = {
  llama: {},
  mistral: { slidingLayers: everyLayerWhenWindowSet },
  mixtral: { slidingLayers: everyLayerWhenWindowSet },
  qwen2: { slidingLayers: qwenSliding },
  qwen3: { slidingLayers: qwenSliding },
  phi3: { slidingLayers: everyLayerWhenWindowSet },
  starcoder2: { slidingLayers: everyLayerWhenWindowSet },
  gemma: {},
  gemma2: { slidingLayers: (_config, layer) => layer % 2 === 0 },
  gemma3_text: { slidingLayers: gemma3Sliding, slidingRopeConfig: gemma3LocalRope },
  gemma3: { slidingLayers: gemma3Sliding, slidingRopeConfig: gemma3LocalRope },
  gptj: { ropeLayout: 'interleaved' },
  gpt2: { unsupported: absolutePositions('gpt2') },
  gpt_bigcode: { unsupported: absolutePositions('gpt_bigcode') },
  opt: { unsupported: absolutePositions('opt') },
  bloom: { unsupported: absolutePositions('bloom') },
  mpt: { unsupported: absolutePositions('mpt') },
  gpt_neo: { unsupported: absolutePositions('gpt_neo') },
  bert: { unsupported: absolutePositions('bert') },
  roberta: { unsupported: absolutePositions('roberta') },
  xglm: { unsupported: absolutePositions('xglm') },
  codegen: { unsupported: absolutePositions('codegen') },
};

/** The quirks of a config's family; unknown families are treated as Llama-like (rotate-half, all layers full). */
export function familyQuirks(config: Json): FamilyQuirks {
  const type = String(config.model_type ?? '');
  if (config.position_embedding_type === 'absolute' || config.alibi === true) {
    return { unsupported: absolutePositions(type || 'this model') };
  }
  return MODEL_FAMILIES[type] ?? {};
}

export function ropeLayoutOf(config: Json): RopeLayout {
  return config.rope_interleaved === true ? 'interleaved' : (familyQuirks(config).ropeLayout ?? 'rotate-half');
}

/**
 * Each layer's attention: transformers' `layer_types` when the config lists them, else the
 * family's rule; a sliding layer sees config.sliding_window keys (itself included).
 */
export function layerAttentionOf(config: Json): LayerAttention[] {
  const layers = Number(config.num_hidden_layers);
  if (!Number.isInteger(layers) || layers <= 0) return [];
  const window = config.sliding_window;
  const types = Array.isArray(config.layer_types) ? (config.layer_types as unknown[]) : undefined;
  const rule = familyQuirks(config).slidingLayers;
  return Array.from({ length: layers }, (_, l): LayerAttention => {
    const sliding = types ? types[l] === 'sliding_attention' : (rule?.(config, l) ?? false);
    if (!sliding) return { kind: 'full' };
    if (typeof window !== 'number' || !(window > 0)) {
      throw new Error(`config: layer ${l} uses sliding-window attention but sliding_window is ${String(window)}`);
    }
    return { kind: 'sliding', window };
  });
}

/**
 * RoPE for the whole model: the global layers' parameters, with `layers` filled in where sliding
 * layers rotate differently (Gemma 3; transformers v5 writes the two sets under
 * rope_parameters.full_attention / sliding_attention).
 */
export function modelRope(config: Json, attention: readonly LayerAttention[]): RopeParams {
  const layout = ropeLayoutOf(config);
  const perKind = config.rope_parameters as Json | undefined;
  const kindConfig = (kind: 'full_attention' | 'sliding_attention'): Json | undefined => {
    const sub = perKind?.[kind];
    return sub && typeof sub === 'object' ? { ...config, rope_parameters: sub, rope_scaling: sub, rope_theta: (sub as Json).rope_theta ?? config.rope_theta } : undefined;
  };
  const globalConfig = kindConfig('full_attention') ?? config;
  const global = ropeParamsFromConfig(globalConfig, layout);
  if (!attention.some((a) => a.kind === 'sliding')) return global;
  const slidingConfig = kindConfig('sliding_attention') ?? familyQuirks(config).slidingRopeConfig?.(config);
  if (!slidingConfig) return global;
  const local = ropeParamsFromConfig(slidingConfig, layout);
  return { ...global, layers: attention.map((a) => (a.kind === 'sliding' ? local : global)) };
}
