// Model families' details that change re-encoding or masks (native-models/model-family.ts): the
// table's reading of real config.json shapes, and generated look-alikes checked against the float64
// reference: Qwen 3 (q/k norms before RoPE, explicit head_dim), Gemma 3 (local layers with their own
// RoPE theta and a sliding window), Mistral (a sliding window in every layer), graphs without a
// position_ids input; and the refusals (position-dependent RoPE scalings, windowed KV caches).
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Engine } from '../native-models/engine.ts';
import { ModelLoadError } from '../native-models/errors.ts';
import { emptyKv } from '../native-models/kv.ts';
import { loadModelFolder } from '../native-models/model-folder.ts';
import { layerAttentionOf, modelRope } from '../native-models/model-family.ts';
import { UnsupportedPositionsError } from '../native-models/model-runner.ts';
import { rotateKeys } from '../native-models/rope.ts';
import { checkBlockPath, range, useGeneratedModel, type GeneratedModel } from './helpers/conformance.ts';
import { maxAbsDiff } from './helpers/compare.ts';
import { makeModelDir, removeDir, SAMPLE_TEXTS } from './helpers/models.ts';
import { blockMask, causalMask, loadReferenceModel, referenceForward } from './tools/reference.ts';
import { tinySpec, type TinyModelSpec } from './tools/tiny-model-spec.ts';

// float32 graphs: see test/helpers/conformance.ts (logitTolerance). Keys: the graph's float32 RoPE
// angles at positions up to ~150 and magnitudes ~5 give ~1e-6; a wrong theta or an unrotated key is
// off by 1e-1 or more.
const KEY_TOLERANCE = 1e-4;
const QUESTION = ' Question: which of these mentions the sea?';

describe('the family table reads real config shapes', () => {
  const layers = (config: Record<string, unknown>) => layerAttentionOf(config).map((a) => (a.kind === 'sliding' ? a.window : 0));

  it('Qwen2/Qwen3 carry sliding_window but use it only with use_sliding_window, from max_window_layers on', () => {
    const qwen = { model_type: 'qwen2', num_hidden_layers: 4, sliding_window: 32768, use_sliding_window: false, max_window_layers: 2 };
    expect(layers(qwen)).toEqual([0, 0, 0, 0]);
    expect(layers({ ...qwen, model_type: 'qwen3', use_sliding_window: true })).toEqual([0, 0, 32768, 32768]);
  });

  it('Mistral slides in every layer when sliding_window is set; Llama never', () => {
    expect(layers({ model_type: 'mistral', num_hidden_layers: 3, sliding_window: 4096 })).toEqual([4096, 4096, 4096]);
    expect(layers({ model_type: 'mistral', num_hidden_layers: 2, sliding_window: null })).toEqual([0, 0]);
    expect(layers({ model_type: 'llama', num_hidden_layers: 2, sliding_window: 4096 })).toEqual([0, 0]);
  });

  it('Gemma 2 alternates from a sliding first layer; Gemma 3 has five local layers per global one; layer_types wins', () => {
    expect(layers({ model_type: 'gemma2', num_hidden_layers: 4, sliding_window: 4096 })).toEqual([4096, 0, 4096, 0]);
    const gemma3 = { model_type: 'gemma3_text', num_hidden_layers: 12, sliding_window: 512 };
    expect(layers(gemma3).map((w) => (w ? 'L' : 'G')).join('')).toBe('LLLLLGLLLLLG');
    expect(layers({ ...gemma3, num_hidden_layers: 3, layer_types: ['full_attention', 'sliding_attention', 'full_attention'] })).toEqual([0, 512, 0]);
    expect(() => layerAttentionOf({ model_type: 'gemma3_text', num_hidden_layers: 2 })).toThrow(/sliding_window is undefined/);
  });

  it('Gemma 3 local layers rotate with rope_local_base_freq, unscaled; global layers with rope_theta and rope_scaling', () => {
    const config = {
      model_type: 'gemma3_text',
      num_hidden_layers: 6,
      num_attention_heads: 4,
      head_dim: 32,
      sliding_window: 512,
      rope_theta: 1_000_000,
      rope_local_base_freq: 10_000,
      rope_scaling: { rope_type: 'linear', factor: 8 },
    };
    const rope = modelRope(config, layerAttentionOf(config));
    const perLayer = rope.layers!.map((r) => [r.theta, r.scaling.rope_type]);
    expect(perLayer).toEqual([...Array(5).fill([10_000, 'default']), [1_000_000, 'linear']]);
    expect(rope.layers![5].invFreq[1]).toBeCloseTo(1 / (8 * 1_000_000 ** (2 / 32)), 15);
    expect(rope.layers![0].invFreq[1]).toBeCloseTo(1 / 10_000 ** (2 / 32), 15);
    // transformers v5 writes the two sets under rope_parameters
    const v5 = {
      ...config,
      rope_theta: undefined,
      rope_scaling: undefined,
      rope_local_base_freq: undefined,
      rope_parameters: {
        full_attention: { rope_type: 'linear', factor: 8, rope_theta: 1_000_000 },
        sliding_attention: { rope_type: 'default', rope_theta: 10_000 },
      },
    };
    const fromV5 = modelRope(v5, layerAttentionOf(v5));
    expect(fromV5.layers!.map((r) => [...r.invFreq])).toEqual(rope.layers!.map((r) => [...r.invFreq]));
  });

  it('one set of parameters when all layers agree', () => {
    const config = { model_type: 'llama', num_hidden_layers: 2, num_attention_heads: 4, hidden_size: 64 };
    expect(modelRope(config, layerAttentionOf(config)).layers).toBeUndefined();
  });
});

describe('RoPE scalings that change with position are refused, with the reason', () => {
  let dir: string;
  let original: string;
  beforeAll(async () => {
    dir = await makeModelDir(tinySpec({ seed: 70 }));
    original = fs.readFileSync(path.join(dir, 'config.json'), 'utf8');
  });
  afterAll(() => removeDir(dir));

  it.each([
    [{ rope_scaling: { rope_type: 'longrope', short_factor: [1], long_factor: [4] } }, /"longrope".*short and long/],
    [{ rope_scaling: { type: 'su', short_factor: [1], long_factor: [4] } }, /"su".*short and long/],
    [{ rope_scaling: { type: 'dynamic', factor: 2 } }, /"dynamic".*sequence length/],
    [{ rope_scaling: { type: 'mrope', mrope_section: [16, 24, 24] } }, /mrope_section.*3-D/],
    [{ rope_scaling: { rope_type: 'ntk-by-parts', factor: 2 } }, /unknown RoPE scaling type "ntk-by-parts"/],
  ])('%j', (change, message) => {
    fs.writeFileSync(path.join(dir, 'config.json'), JSON.stringify({ ...JSON.parse(original), ...change }));
    expect(() => loadModelFolder(dir)).toThrow(ModelLoadError);
    expect(() => loadModelFolder(dir)).toThrow(message);
  });
});

/** A generated family look-alike, loaded for the enclosing describe. */
function withModel(overrides: Partial<TinyModelSpec>, body: (get: () => GeneratedModel) => void) {
  body(useGeneratedModel(tinySpec(overrides)));
}

/** Largest per-layer error of stored keys moved by `offset` against keys computed at that offset. */
async function reencodingErrors(engine: Engine, offset: number, rope = engine.model.rope): Promise<number[]> {
  const ids = engine.tokenizer.encode(SAMPLE_TEXTS[1]);
  const shape = engine.runner.kvShape;
  const atZero = (await engine.runner.forward(ids, range(0, ids.length), emptyKv(shape))).present;
  const atOffset = (await engine.runner.forward(ids, range(offset, ids.length), emptyKv(shape))).present;
  const moved = rotateKeys(atZero, rope, offset);
  return atOffset.keys.map((k, l) => maxAbsDiff(k, moved.keys[l]));
}

describe('Qwen 3: keys normalised per head before RoPE, explicit head_dim (4 heads x 32 on hidden 64)', () => {
  withModel({ seed: 71, arch: 'qwen3', heads: 4, kvHeads: 2, headDim: 32, addBos: false }, (get) => {
    it('reads head_dim from config, not hidden_size / heads', () => {
      const { engine } = get();
      expect(Number(engine.model.config.hidden_size) / Number(engine.model.config.num_attention_heads)).toBe(16);
      expect(engine.model.rope.headDim).toBe(32);
      expect(engine.runner.kvShape.headDim).toBe(32);
    });

    it('re-encoding is still a pure rotation: moved keys equal keys computed at the new positions', async () => {
      for (const error of await reencodingErrors(get().engine, 37)) expect(error).toBeLessThanOrEqual(KEY_TOLERANCE);
    });

    it('block path equals the reference, and the q/k norms matter to it', async () => {
      const { engine, dir } = get();
      const check = await checkBlockPath(engine, dir, SAMPLE_TEXTS.slice(0, 3), QUESTION, [1, 2, 0]);
      expect(check.error).toBeLessThanOrEqual(check.tolerance);
      expect(check.maskEffect).toBeGreaterThan(100 * check.tolerance);
      const { spec, weights } = loadReferenceModel(dir);
      const ids = [...check.blockIds.flat(), ...check.finalIds];
      const last = ids.length - 1;
      const lengths = [...check.blockIds.map((b) => b.length), check.finalIds.length];
      const withNorms = referenceForward(spec, weights, ids, range(0, ids.length), blockMask(lengths), [last]).logits[last];
      const unnormed = { ...weights, layers: weights.layers.map((l) => ({ ...l, qNorm: undefined, kNorm: undefined })) };
      const without = referenceForward(spec, unnormed, ids, range(0, ids.length), blockMask(lengths), [last]).logits[last];
      expect(maxAbsDiff(withNorms, without)).toBeGreaterThan(100 * check.tolerance);
    });
  });
});

describe('Gemma 3: local layers (theta 10K, window 8) between global ones (theta 1M)', () => {
  withModel({ seed: 72, arch: 'gemma3', slidingWindow: 8, slidingWindowPattern: 2, ropeTheta: 1_000_000, ropeLocalTheta: 10_000 }, (get) => {
    it('the engine takes per-layer RoPE and the window from config.json', () => {
      const { engine } = get();
      expect(engine.model.layerAttention).toEqual([{ kind: 'sliding', window: 8 }, { kind: 'full' }]);
      expect(engine.model.rope.layers!.map((r) => r.theta)).toEqual([10_000, 1_000_000]);
    });

    it('each layer re-encodes with its own theta; one theta for all would be wrong in the local layer', async () => {
      const { engine } = get();
      for (const error of await reencodingErrors(engine, 37)) expect(error).toBeLessThanOrEqual(KEY_TOLERANCE);
      const globalOnly = { ...engine.model.rope, layers: undefined };
      const [local, global] = await reencodingErrors(engine, 37, globalOnly);
      expect(local).toBeGreaterThan(100 * KEY_TOLERANCE);
      expect(global).toBeLessThanOrEqual(KEY_TOLERANCE);
    });

    it('blocks longer than the window, in a prompt longer than it: block path equals the reference (block mask and window)', async () => {
      const { engine, dir } = get();
      const check = await checkBlockPath(engine, dir, SAMPLE_TEXTS.slice(0, 3), QUESTION, [2, 0, 1]);
      expect(Math.min(...check.blockIds.map((b) => b.length))).toBeGreaterThan(8);
      expect(check.error).toBeLessThanOrEqual(check.tolerance);
      expect(check.maskEffect).toBeGreaterThan(100 * check.tolerance);
      await expectWindowMatters(dir, check);
    });
  });
});

describe('Mistral: a 24-token sliding window in every layer', () => {
  withModel({ seed: 73, arch: 'mistral', slidingWindow: 24 }, (get) => {
    it('blocks longer than the window, in a prompt longer than it: block path equals the reference', async () => {
      const { engine, dir } = get();
      expect(engine.model.layerAttention).toEqual([
        { kind: 'sliding', window: 24 },
        { kind: 'sliding', window: 24 },
      ]);
      const check = await checkBlockPath(engine, dir, SAMPLE_TEXTS.slice(0, 3), QUESTION, [0, 2, 1]);
      expect(Math.max(...check.blockIds.map((b) => b.length))).toBeGreaterThan(24);
      expect(check.error).toBeLessThanOrEqual(check.tolerance);
      await expectWindowMatters(dir, check);
    });

    it('full and block mode agree on a single block longer than the window', async () => {
      const { engine } = get();
      const request = { blocks: [], prompt: SAMPLE_TEXTS.join(' '), raw: true, maxNewTokens: 6 };
      const block = await engine.generate({ ...request, mode: 'block' });
      const full = await engine.generate({ ...request, mode: 'full' });
      expect(block.promptTokenIds.length).toBeGreaterThan(3 * 24);
      expect(block.tokenIds).toEqual(full.tokenIds);
    });
  });
});

/** The reference without the window gives other final-block logits: the window was really applied. */
async function expectWindowMatters(dir: string, check: Awaited<ReturnType<typeof checkBlockPath>>) {
  const { spec, weights } = loadReferenceModel(dir);
  const ids = [...check.blockIds.flat(), ...check.finalIds];
  const last = ids.length - 1;
  const lengths = [...check.blockIds.map((b) => b.length), check.finalIds.length];
  const windowed = referenceForward(spec, weights, ids, range(0, ids.length), blockMask(lengths), [last]).logits[last];
  const unbounded = referenceForward({ ...spec, slidingWindow: 1e9 }, weights, ids, range(0, ids.length), blockMask(lengths), [last]).logits[last];
  expect(maxAbsDiff(windowed, unbounded)).toBeGreaterThan(100 * check.tolerance);
}

describe('a graph without position_ids (positions from the attention mask)', () => {
  withModel({ seed: 74, positionIdsInput: false }, (get) => {
    it('is detected and explained', () => {
      const { engine } = get();
      expect(engine.runner.contract.positions).toBe('after-past');
      expect(engine.runner.describe().join('\n')).toMatch(/no position_ids input: .*block mode is exact/);
    });

    it('block mode runs exactly: blocks from position 0, the final block after the assembled past', async () => {
      const { engine, dir } = get();
      const check = await checkBlockPath(engine, dir, SAMPLE_TEXTS.slice(0, 3), QUESTION, [2, 1, 0]);
      expect(check.error).toBeLessThanOrEqual(check.tolerance);
      expect(check.maskEffect).toBeGreaterThan(100 * check.tolerance);
    });

    it('full mode runs and agrees with block mode and the reference on a single block', async () => {
      const { engine, dir } = get();
      const request = { blocks: [], prompt: SAMPLE_TEXTS[2], raw: true, maxNewTokens: 6 };
      const full = await engine.generate({ ...request, mode: 'full' });
      const block = await engine.generate({ ...request, mode: 'block' });
      expect(block.tokenIds).toEqual(full.tokenIds);
      const { spec, weights } = loadReferenceModel(dir);
      const ids = full.promptTokenIds;
      const last = ids.length - 1;
      const ref = referenceForward(spec, weights, ids, range(0, ids.length), causalMask(), [last]).logits[last];
      for (const [id, value] of full.topLogits) expect(Math.abs(value - ref[id])).toBeLessThanOrEqual(1e-4);
    });

    it('refuses what it cannot express: a block at a global offset with nothing before it', async () => {
      const { engine } = get();
      const ids = engine.tokenizer.encode(SAMPLE_TEXTS[0]);
      const run = engine.runner.forward(ids, range(40, ids.length), emptyKv(engine.runner.kvShape));
      await expect(run).rejects.toThrow(UnsupportedPositionsError);
      await expect(engine.runner.forward(ids, range(40, ids.length), emptyKv(engine.runner.kvShape))).rejects.toThrow(
        /cannot run tokens at positions 40\.\./,
      );
    });
  });
});

describe('onnxruntime-genai folders the engine cannot use as they are', () => {
  let dir: string;
  beforeAll(async () => {
    dir = await makeModelDir(tinySpec({ seed: 75, exportStyle: 'genai-fp32' }));
  });
  afterAll(() => removeDir(dir));

  it('sliding-window layers with window-sized KV caches (genai_config decoder.sliding_window) are refused', async () => {
    const file = path.join(dir, 'genai_config.json');
    const original = fs.readFileSync(file, 'utf8');
    const genai = JSON.parse(original);
    genai.model.decoder.sliding_window = { window_size: 512, slide_key_value_cache: false, layers: [0] };
    fs.writeFileSync(file, JSON.stringify(genai));
    try {
      await expect(Engine.load(dir, { provider: 'cpu' })).rejects.toThrow(/keeps only the last 512 tokens' KV for its sliding-window layers/);
    } finally {
      fs.writeFileSync(file, original);
    }
  });

  it('without config.json (the builder writes none) the error says what to copy and why', () => {
    const config = path.join(dir, 'config.json');
    fs.renameSync(config, `${config}.away`);
    try {
      expect(() => loadModelFolder(dir)).toThrow(/onnxruntime-genai exports do not carry one, but re-encoding stored keys needs its RoPE parameters/);
    } finally {
      fs.renameSync(`${config}.away`, config);
    }
  });
});
