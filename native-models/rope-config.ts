// Rotary position embedding parameters read from a Hugging Face config: the rotary dimension, the
// (scaled) inverse frequencies and the attention factor, with the same formulas as transformers'
// modeling_rope_utils. Shared by the RoPE re-encoder, the model generator and the reference forward.
// Which layers use which parameters (Gemma 3's local layers) is a model-family matter: model-family.ts.

export type RopeLayout = 'rotate-half' | 'interleaved';

export type RopeScaling =
  | { rope_type: 'default' }
  | { rope_type: 'linear'; factor: number }
  | {
      rope_type: 'llama3';
      factor: number;
      low_freq_factor: number;
      high_freq_factor: number;
      original_max_position_embeddings: number;
    }
  | {
      rope_type: 'yarn';
      factor: number;
      original_max_position_embeddings?: number;
      attention_factor?: number;
      beta_fast?: number;
      beta_slow?: number;
      mscale?: number;
      mscale_all_dim?: number;
      truncate?: boolean;
    };

export interface RopeParams {
  layout: RopeLayout;
  headDim: number;
  /** Leading dimensions of each head that rotate (the rest pass through): headDim x partial_rotary_factor. */
  rotaryDim: number;
  /** rotaryDim / 2 inverse frequencies, scaling already applied. */
  invFreq: Float64Array;
  /** cos and sin are multiplied by this (yarn); it is already inside stored keys, never apply it twice. */
  attentionFactor: number;
  theta: number;
  scaling: RopeScaling;
  /**
   * Per-layer parameters where layers differ (Gemma 3: sliding-window layers theta 10K, global
   * layers 1M with their own scaling): layer l rotates with layers[l]. Absent: every layer uses
   * the fields above. Entries never nest further.
   */
  layers?: readonly RopeParams[];
}

/** The RoPE parameters layer `layer` rotates its keys with. */
export function ropeOfLayer(rope: RopeParams, layer: number): RopeParams {
  return rope.layers?.[layer] ?? rope;
}

export class UnsupportedRopeError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'UnsupportedRopeError';
  }
}

type Json = Record<string, unknown>;

function num(v: unknown, what: string): number {
  if (typeof v !== 'number' || !Number.isFinite(v)) throw new UnsupportedRopeError(`config: ${what} must be a number`);
  return v;
}

/**
 * Scalings whose rotation angle is not position x a fixed frequency: a key stored at p cannot be
 * moved to p' by one rotation, so block attention cannot re-encode it. Each names why.
 */
const POSITION_DEPENDENT_SCALINGS: Record<string, string> = {
  dynamic: 'dynamic NTK scaling recomputes the frequencies from the sequence length',
  longrope: 'LongRoPE switches between short and long frequency factors with the sequence length',
  su: 'LongRoPE ("su") switches between short and long frequency factors with the sequence length',
};

/** Reads rope_scaling (or transformers v5's rope_parameters); refuses types whose frequencies change with length. */
export function parseRopeScaling(config: Json): RopeScaling {
  const raw = (config.rope_scaling ?? config.rope_parameters ?? null) as Json | null;
  if (raw === null || typeof raw !== 'object') return { rope_type: 'default' };
  if (Array.isArray(raw.mrope_section)) {
    throw new UnsupportedRopeError(
      'multimodal RoPE (mrope_section) rotates by 3-D (time, height, width) positions, so stored keys cannot be re-encoded by one position offset; this model is not supported',
    );
  }
  const type = String(raw.rope_type ?? raw.type ?? 'default');
  if (type in POSITION_DEPENDENT_SCALINGS) {
    throw new UnsupportedRopeError(
      `RoPE scaling "${type}" changes frequencies with sequence length (${POSITION_DEPENDENT_SCALINGS[type]}), so stored keys cannot be re-encoded; this model is not supported`,
    );
  }
  switch (type) {
    case 'default':
      return { rope_type: 'default' };
    case 'linear':
      return { rope_type: 'linear', factor: num(raw.factor, 'rope_scaling.factor') };
    case 'llama3':
      return {
        rope_type: 'llama3',
        factor: num(raw.factor, 'rope_scaling.factor'),
        low_freq_factor: num(raw.low_freq_factor, 'rope_scaling.low_freq_factor'),
        high_freq_factor: num(raw.high_freq_factor, 'rope_scaling.high_freq_factor'),
        original_max_position_embeddings: num(
          raw.original_max_position_embeddings,
          'rope_scaling.original_max_position_embeddings',
        ),
      };
    case 'yarn':
      return { ...(raw as object), rope_type: 'yarn', factor: num(raw.factor, 'rope_scaling.factor') } as RopeScaling;
    default:
      throw new UnsupportedRopeError(`unknown RoPE scaling type "${type}"`);
  }
}

function yarnInvFreq(
  s: Extract<RopeScaling, { rope_type: 'yarn' }>,
  base: number,
  dim: number,
  maxPositions: number,
): { invFreq: Float64Array; attentionFactor: number } {
  const getMscale = (scale: number, m = 1) => (scale <= 1 ? 1 : 0.1 * m * Math.log(scale) + 1);
  let attentionFactor = s.attention_factor;
  if (attentionFactor === undefined || attentionFactor === null) {
    attentionFactor =
      s.mscale && s.mscale_all_dim ? getMscale(s.factor, s.mscale) / getMscale(s.factor, s.mscale_all_dim) : getMscale(s.factor);
  }
  const betaFast = s.beta_fast || 32;
  const betaSlow = s.beta_slow || 1;
  const original = s.original_max_position_embeddings ?? maxPositions;
  const correctionDim = (rot: number) => (dim * Math.log(original / (rot * 2 * Math.PI))) / (2 * Math.log(base));
  let low = correctionDim(betaFast);
  let high = correctionDim(betaSlow);
  if (s.truncate ?? true) {
    low = Math.floor(low);
    high = Math.ceil(high);
  }
  low = Math.max(low, 0);
  high = Math.min(high, dim - 1);
  if (low === high) high += 0.001;
  const half = dim / 2;
  const invFreq = new Float64Array(half);
  for (let m = 0; m < half; m++) {
    const posFreq = base ** ((2 * m) / dim);
    const extrapolation = 1 / posFreq;
    const interpolation = 1 / (s.factor * posFreq);
    const ramp = Math.min(1, Math.max(0, (m - low) / (high - low)));
    const extrapolationFactor = 1 - ramp;
    invFreq[m] = interpolation * (1 - extrapolationFactor) + extrapolation * extrapolationFactor;
  }
  return { invFreq, attentionFactor };
}

/** RoPE parameters of a decoder from its Hugging Face config.json (layout defaults to rotate-half). */
export function ropeParamsFromConfig(config: Json, layout: RopeLayout = 'rotate-half'): RopeParams {
  const heads = num(config.num_attention_heads, 'num_attention_heads');
  const headDim =
    typeof config.head_dim === 'number' ? config.head_dim : num(config.hidden_size, 'hidden_size') / heads;
  const ropeParameters = (config.rope_parameters ?? {}) as Json;
  const theta = num(config.rope_theta ?? ropeParameters.rope_theta ?? 10000, 'rope_theta');
  const partial = num(
    config.partial_rotary_factor ?? config.rotary_pct ?? ropeParameters.partial_rotary_factor ?? 1,
    'partial_rotary_factor',
  );
  const rotaryDim = Math.floor(headDim * partial);
  if (rotaryDim < 2 || rotaryDim % 2 !== 0) {
    throw new UnsupportedRopeError(`rotary dimension ${rotaryDim} (head_dim ${headDim} x ${partial}) must be even and >= 2`);
  }
  const scaling = parseRopeScaling(config);
  const maxPositions = typeof config.max_position_embeddings === 'number' ? config.max_position_embeddings : 2048;
  const half = rotaryDim / 2;
  let invFreq: Float64Array = new Float64Array(half);
  for (let m = 0; m < half; m++) invFreq[m] = 1 / theta ** ((2 * m) / rotaryDim);
  let attentionFactor = 1;
  if (scaling.rope_type === 'linear') {
    invFreq = invFreq.map((f) => f / scaling.factor);
  } else if (scaling.rope_type === 'llama3') {
    const { factor, low_freq_factor: lo, high_freq_factor: hi, original_max_position_embeddings: old } = scaling;
    const lowWavelen = old / lo;
    const highWavelen = old / hi;
    invFreq = invFreq.map((f) => {
      const wavelen = (2 * Math.PI) / f;
      if (wavelen < highWavelen) return f;
      if (wavelen > lowWavelen) return f / factor;
      const smooth = (old / wavelen - lo) / (hi - lo);
      return ((1 - smooth) * f) / factor + smooth * f;
    });
  } else if (scaling.rope_type === 'yarn') {
    ({ invFreq, attentionFactor } = yarnInvFreq(scaling, theta, rotaryDim, maxPositions));
  }
  return { layout, headDim, rotaryDim, invFreq, attentionFactor, theta, scaling };
}
