#!/usr/bin/env python3
"""A float64 numpy transliteration of transformers' eager Llama / Qwen2 forward pass.

It recomputes the "agreement with transformers" pins of test/reference.test.ts without sharing any
code with test/tools/reference.ts (the float64 oracle the KV paths are checked against): a wrong
constant there (score scale, RMSNorm eps, activation, RoPE frequencies, the yarn attention factor,
GQA head grouping) would pass every property test but not this. Run it after changing the oracle,
the spec, the weight generator or the pinned cases:

    source .ci/node22.sh
    npx tsx test/tools/dump-weights.ts /tmp/quire-transformers.json
    /usr/bin/python3 test/tools/transformers-reference.py /tmp/quire-transformers.json

It needs numpy (Debian: apt-get install python3-numpy), so it is a tool, not part of npm test.
It prints each case's last-token logits (ready to paste as pins) and the largest differences from the
pins and from referenceForward's logits, keys and values; it exits 1 if any exceeds 1e-9.

What follows transformers (v5: modeling_rope_utils, modeling_llama, modeling_qwen2, and for partial
rotary the Phi-3 / GPT-NeoX apply_rotary_pos_emb) step by step, with the same names where it helps:
  * hyperparameters come from the model's config.json fields only (rope_scaling is standardized the
    way RotaryEmbeddingConfigMixin.standardize_rope_params does), never from the quire spec;
  * inverse frequencies: default, linear, llama3 and yarn exactly as the _compute_*_parameters
    functions (yarn: attention_factor from get_mscale, beta_fast/beta_slow 32/1, truncated
    correction range, linear ramp); cos and sin are multiplied by the attention factor;
  * RoPE is rotate_half on the first rotary_dim dims of each head, the rest passed through;
  * repeat_kv expands the KV heads for grouped-query attention; scores are q k^T * head_dim**-0.5
    plus an additive mask of 0 / -inf, softmax over the last axis, times v, then o_proj;
  * RMSNorm is weight * x / sqrt(mean(x^2) + eps); the MLP is down(silu(gate(x)) * up(x));
  * qwen2 (or attention_bias) adds q/k/v biases, o_proj has none; with tie_word_embeddings the
    lm_head is the embedding matrix (the dumped lmHead is then ignored).
Version note: some transformers 4.x releases replaced yarn's factor by max_position_embeddings /
original_max_position_embeddings whenever the latter is set; v5 keeps the explicit factor (and warns
when the two disagree), as here and in native-models/rope-config.ts. On the qwen2 case that older
reading moves the logits by about 1.
Deliberate differences: everything is float64 (transformers computes inv_freq and the softmax in
float32), there is no batch axis, and the mask is built here from the block lengths (block attention:
a token of a non-final block sees earlier-or-same tokens of its own block; the final block sees all
earlier-or-same tokens) because transformers only takes it ready-made.
"""

import base64
import json
import math
import sys

import numpy as np

TOLERANCE = 1e-9


def float32s(text):
    return np.frombuffer(base64.b64decode(text), dtype="<f4").astype(np.float64)


def float64s(text):
    return np.frombuffer(base64.b64decode(text), dtype="<f8")


# ---- modeling_rope_utils -------------------------------------------------------------------------


def standardize_rope_parameters(config):
    params = dict(config.get("rope_scaling") or config.get("rope_parameters") or {})
    params.setdefault("rope_type", params.get("type", "default"))
    params.setdefault("rope_theta", config.get("rope_theta", 10000.0))
    if config.get("partial_rotary_factor") is not None:
        params["partial_rotary_factor"] = config["partial_rotary_factor"]
    if params["rope_type"] in ("llama3", "yarn", "longrope"):
        params.setdefault("original_max_position_embeddings", config["max_position_embeddings"])
    return params


def head_dim_of(config):
    return config.get("head_dim") or config["hidden_size"] // config["num_attention_heads"]


def rotary_dim_of(config, params):
    return int(head_dim_of(config) * params.get("partial_rotary_factor", 1.0))


def default_inv_freq(base, dim):
    return 1.0 / (base ** (np.arange(0, dim, 2, dtype=np.int64).astype(np.float64) / dim))


def compute_default_parameters(config, params):
    return default_inv_freq(params["rope_theta"], rotary_dim_of(config, params)), 1.0


def compute_linear_scaling_parameters(config, params):
    inv_freq, attention_factor = compute_default_parameters(config, params)
    return inv_freq / params["factor"], attention_factor


def compute_llama3_parameters(config, params):
    inv_freq, attention_factor = compute_default_parameters(config, params)
    factor = params["factor"]
    low_freq_factor = params["low_freq_factor"]
    high_freq_factor = params["high_freq_factor"]
    old_context_len = params["original_max_position_embeddings"]

    low_freq_wavelen = old_context_len / low_freq_factor
    high_freq_wavelen = old_context_len / high_freq_factor
    wavelen = 2 * math.pi / inv_freq
    inv_freq_llama = np.where(wavelen > low_freq_wavelen, inv_freq / factor, inv_freq)
    smooth_factor = (old_context_len / wavelen - low_freq_factor) / (high_freq_factor - low_freq_factor)
    smoothed_inv_freq = (1 - smooth_factor) * inv_freq_llama / factor + smooth_factor * inv_freq_llama
    is_medium_freq = ~(wavelen < high_freq_wavelen) & ~(wavelen > low_freq_wavelen)
    return np.where(is_medium_freq, smoothed_inv_freq, inv_freq_llama), attention_factor


def compute_yarn_parameters(config, params):
    base = params["rope_theta"]
    dim = rotary_dim_of(config, params)
    factor = params["factor"]
    attention_factor = params.get("attention_factor")
    mscale = params.get("mscale")
    mscale_all_dim = params.get("mscale_all_dim")
    original_max_position_embeddings = params["original_max_position_embeddings"]
    if factor is None:
        factor = config["max_position_embeddings"] / original_max_position_embeddings

    def get_mscale(scale, mscale=1):
        return 1.0 if scale <= 1 else 0.1 * mscale * math.log(scale) + 1.0

    if attention_factor is None:
        if mscale and mscale_all_dim:
            attention_factor = float(get_mscale(factor, mscale) / get_mscale(factor, mscale_all_dim))
        else:
            attention_factor = get_mscale(factor)

    beta_fast = params.get("beta_fast") or 32
    beta_slow = params.get("beta_slow") or 1

    def find_correction_dim(num_rotations):
        return (dim * math.log(original_max_position_embeddings / (num_rotations * 2 * math.pi))) / (2 * math.log(base))

    def find_correction_range(truncate):
        low = find_correction_dim(beta_fast)
        high = find_correction_dim(beta_slow)
        if truncate:
            low = math.floor(low)
            high = math.ceil(high)
        return max(low, 0), min(high, dim - 1)

    def linear_ramp_factor(low, high, n):
        if low == high:
            high += 0.001  # as transformers: prevents a division by zero
        return np.clip((np.arange(n, dtype=np.float64) - low) / (high - low), 0, 1)

    pos_freqs = base ** (np.arange(0, dim, 2).astype(np.float64) / dim)
    inv_freq_extrapolation = 1.0 / pos_freqs
    inv_freq_interpolation = 1.0 / (factor * pos_freqs)
    low, high = find_correction_range(params.get("truncate", True))
    inv_freq_extrapolation_factor = 1 - linear_ramp_factor(low, high, dim // 2)
    inv_freq = (
        inv_freq_interpolation * (1 - inv_freq_extrapolation_factor)
        + inv_freq_extrapolation * inv_freq_extrapolation_factor
    )
    return inv_freq, attention_factor


ROPE_INIT_FUNCTIONS = {
    "default": compute_default_parameters,
    "linear": compute_linear_scaling_parameters,
    "llama3": compute_llama3_parameters,
    "yarn": compute_yarn_parameters,
}


# ---- modeling_llama / modeling_qwen2 -------------------------------------------------------------


def linear(x, weight, bias=None):
    """nn.Linear: weight is [out, in]."""
    y = x @ weight.T
    return y if bias is None else y + bias


def rms_norm(x, weight, eps):
    variance = np.mean(x * x, axis=-1, keepdims=True)
    return weight * (x / np.sqrt(variance + eps))


def silu(x):
    return x / (1.0 + np.exp(-x))


def softmax(x):
    shifted = np.exp(x - np.max(x, axis=-1, keepdims=True))
    return shifted / np.sum(shifted, axis=-1, keepdims=True)


def rotary_embedding(config, position_ids):
    """LlamaRotaryEmbedding.forward: cos and sin [seq, rotary_dim], scaled by the attention factor."""
    params = standardize_rope_parameters(config)
    rope_type = params["rope_type"]
    if rope_type not in ROPE_INIT_FUNCTIONS:
        raise SystemExit(f"rope_type {rope_type!r} is not transliterated here")
    inv_freq, attention_scaling = ROPE_INIT_FUNCTIONS[rope_type](config, params)
    freqs = np.asarray(position_ids, dtype=np.float64)[:, None] * inv_freq[None, :]
    emb = np.concatenate([freqs, freqs], axis=-1)
    return np.cos(emb) * attention_scaling, np.sin(emb) * attention_scaling


def rotate_half(x):
    half = x.shape[-1] // 2
    return np.concatenate([-x[..., half:], x[..., :half]], axis=-1)


def apply_rotary_pos_emb(q, k, cos, sin):
    """Partial rotary as in Phi-3 / GPT-NeoX: the first cos.shape[-1] dims rotate, the rest pass."""
    cos = cos[None, :, :]  # unsqueeze the head axis
    sin = sin[None, :, :]
    rotary_dim = cos.shape[-1]

    def embed(x):
        x_rot, x_pass = x[..., :rotary_dim], x[..., rotary_dim:]
        return np.concatenate([x_rot * cos + rotate_half(x_rot) * sin, x_pass], axis=-1)

    return embed(q), embed(k)


def repeat_kv(hidden_states, n_rep):
    """[kv_heads, seq, head_dim] -> [kv_heads * n_rep, seq, head_dim], each KV head n_rep times in a row."""
    kv_heads, seq, head_dim = hidden_states.shape
    if n_rep == 1:
        return hidden_states
    expanded = np.broadcast_to(hidden_states[:, None, :, :], (kv_heads, n_rep, seq, head_dim))
    return expanded.reshape(kv_heads * n_rep, seq, head_dim)


def eager_attention_forward(query, key, value, attention_mask, scaling, num_key_value_groups):
    key_states = repeat_kv(key, num_key_value_groups)
    value_states = repeat_kv(value, num_key_value_groups)
    attn_weights = (query @ key_states.transpose(0, 2, 1)) * scaling
    attn_weights = attn_weights + attention_mask
    attn_weights = softmax(attn_weights)
    attn_output = attn_weights @ value_states  # [heads, seq, head_dim]
    return attn_output.transpose(1, 0, 2)  # [seq, heads, head_dim]


def attention(config, layer, hidden_states, position_embeddings, attention_mask):
    """LlamaAttention / Qwen2Attention.forward; also returns the KV a cache would store."""
    head_dim = head_dim_of(config)
    heads = config["num_attention_heads"]
    kv_heads = config["num_key_value_heads"]
    hidden_shape = (hidden_states.shape[0], -1, head_dim)

    def project(name):  # -> [heads, seq, head_dim], as .view(hidden_shape).transpose(1, 2)
        y = linear(hidden_states, layer[f"{name}.weight"], layer.get(f"{name}.bias"))
        return y.reshape(hidden_shape).transpose(1, 0, 2)

    query_states, key_states, value_states = project("q_proj"), project("k_proj"), project("v_proj")
    cos, sin = position_embeddings
    query_states, key_states = apply_rotary_pos_emb(query_states, key_states, cos, sin)
    attn_output = eager_attention_forward(
        query_states, key_states, value_states, attention_mask, head_dim**-0.5, heads // kv_heads
    )
    attn_output = attn_output.reshape(hidden_states.shape[0], -1)
    return linear(attn_output, layer["o_proj.weight"]), key_states, value_states


def forward(config, state, input_ids, position_ids, attention_mask):
    """ForCausalLM.forward over one sequence: logits [seq, vocab] and per-layer (keys, values)."""
    eps = config["rms_norm_eps"]
    position_embeddings = rotary_embedding(config, position_ids)
    hidden_states = state["embed_tokens.weight"][np.asarray(input_ids)]
    cache = []
    for layer in state["layers"]:
        residual = hidden_states
        attn, keys, values = attention(
            config, layer, rms_norm(hidden_states, layer["input_layernorm.weight"], eps), position_embeddings, attention_mask
        )
        cache.append((keys, values))
        hidden_states = residual + attn
        residual = hidden_states
        normed = rms_norm(hidden_states, layer["post_attention_layernorm.weight"], eps)
        gate = silu(linear(normed, layer["gate_proj.weight"]))
        hidden_states = residual + linear(gate * linear(normed, layer["up_proj.weight"]), layer["down_proj.weight"])
    hidden_states = rms_norm(hidden_states, state["norm.weight"], eps)
    return linear(hidden_states, state["lm_head.weight"]), cache


# ---- the dump -> a transformers-style state dict and mask ----------------------------------------


def state_dict(config, weights):
    """buildWeights' [in, out] row-major matrices as torch's [out, in] weights under HF names."""
    hidden = config["hidden_size"]
    vocab = config["vocab_size"]
    has_bias = config.get("model_type") == "qwen2" or bool(config.get("attention_bias"))

    def matrix(text, n_in):
        m = float32s(text)
        return m.reshape(n_in, m.size // n_in).T

    layers = []
    for raw in weights["layers"]:
        q_dim = config["num_attention_heads"] * head_dim_of(config)
        layer = {
            "input_layernorm.weight": float32s(raw["inputNorm"]),
            "q_proj.weight": matrix(raw["q"], hidden),
            "k_proj.weight": matrix(raw["k"], hidden),
            "v_proj.weight": matrix(raw["v"], hidden),
            "o_proj.weight": matrix(raw["o"], q_dim),
            "post_attention_layernorm.weight": float32s(raw["postNorm"]),
            "gate_proj.weight": matrix(raw["gate"], hidden),
            "up_proj.weight": matrix(raw["up"], hidden),
            "down_proj.weight": matrix(raw["down"], config["intermediate_size"]),
        }
        if has_bias:
            for name, key in (("q_proj.bias", "qBias"), ("k_proj.bias", "kBias"), ("v_proj.bias", "vBias")):
                if key not in raw:
                    raise SystemExit(f"{config['model_type']} needs {name} but the dump has no {key}")
                layer[name] = float32s(raw[key])
        layers.append(layer)
    embed = float32s(weights["embed"]).reshape(vocab, hidden)
    lm_head = embed if config.get("tie_word_embeddings") else matrix(weights["lmHead"], hidden)
    return {"embed_tokens.weight": embed, "layers": layers, "norm.weight": float32s(weights["finalNorm"]), "lm_head.weight": lm_head}


def block_attention_mask(block_lengths):
    """Additive [seq, seq] mask: 0 where a query may attend to a key, -inf elsewhere."""
    block_of = np.repeat(np.arange(len(block_lengths)), block_lengths)
    n = block_of.size
    query = np.arange(n)[:, None]
    key = np.arange(n)[None, :]
    final = len(block_lengths) - 1
    allowed = (key <= query) & ((block_of[query] == final) | (block_of[key] == block_of[query]))
    return np.where(allowed, 0.0, -np.inf)


def max_abs_diff(a, b):
    a = np.asarray(a, dtype=np.float64).ravel()
    b = np.asarray(b, dtype=np.float64).ravel()
    if a.size != b.size:
        raise SystemExit(f"length {a.size} vs {b.size}")
    return float(np.max(np.abs(a - b)))


def main(path):
    with open(path, encoding="utf-8") as f:
        dump = json.load(f)
    inputs = dump["input"]
    mask = block_attention_mask(inputs["blockLengths"])
    last = inputs["last"]
    worst = 0.0
    for case in dump["cases"]:
        config = case["config"]
        logits, cache = forward(config, state_dict(config, case["weights"]), inputs["ids"], inputs["positions"], mask)
        pinned = case["pinned"]
        reference = case["reference"]
        diffs = {
            "pinned logits": max_abs_diff(logits[last][: len(pinned)], pinned),
            "referenceForward logits": max(max_abs_diff(logits[t], float64s(row)) for t, row in enumerate(reference["logits"])),
            "referenceForward keys": max(max_abs_diff(k, float64s(ref)) for (k, _), ref in zip(cache, reference["keys"])),
            "referenceForward values": max(max_abs_diff(v, float64s(ref)) for (_, v), ref in zip(cache, reference["values"])),
        }
        print(case["name"])
        print("  last-token logits:", ", ".join(repr(float(x)) for x in logits[last][: len(pinned)]))
        for what, diff in diffs.items():
            print(f"  max |diff| vs {what}: {diff:.3g}")
        worst = max(worst, *diffs.values())
    print(f"largest difference {worst:.3g} (tolerance {TOLERANCE:g})")
    return 0 if worst <= TOLERANCE else 1


if __name__ == "__main__":
    if len(sys.argv) != 2:
        raise SystemExit("usage: /usr/bin/python3 test/tools/transformers-reference.py DUMP.json (from test/tools/dump-weights.ts)")
    sys.exit(main(sys.argv[1]))
