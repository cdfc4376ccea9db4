// Block mode on a look-alike of every export style users download (native-models/export-style.ts):
// Optimum / transformers.js fp32, fp16, q4 and q4f16, and the onnxruntime-genai builder's fp32,
// fp16 and int4 graphs. Each is generated (test/tools/generate-model.ts), loaded by the engine,
// which must read its contract from the session, and checked against the float64 reference that
// computes with the same stored (rounded or dequantised) weights.
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import ort from 'onnxruntime-node';
import { beforeAll, describe, expect, it } from 'vitest';
import type { Engine } from '../native-models/engine.ts';
import { EXPORT_STYLES, type ExportStyleId } from '../native-models/export-style.ts';
import { float16ToFloat32Array } from '../native-models/float16.ts';
import { emptyKv, type KvCache } from '../native-models/kv.ts';
import { UnsupportedPositionsError } from '../native-models/model-runner.ts';
import { checkBlockPath, prefillAlone, range, reencodedVersusDirect, useGeneratedModel } from './helpers/conformance.ts';
import { maxAbsDiff } from './helpers/compare.ts';
import { SAMPLE_TEXTS } from './helpers/models.ts';
import { onnxPathOf } from './tools/generate-model.ts';
import { causalMask, loadReferenceModel, referenceForward } from './tools/reference.ts';
import { tinySpec, type TinyModelSpec } from './tools/tiny-model-spec.ts';

/** Each style with a family shape that exercises something of its own. */
const STYLES: [ExportStyleId, string, Partial<TinyModelSpec>][] = [
  ['optimum-fp32', 'llama, GQA 4:2', { seed: 51 }],
  ['transformers.js-fp16', 'qwen2 (biases), tied head, no BOS', { seed: 52, arch: 'qwen2', tieWordEmbeddings: true, addBos: false }],
  ['transformers.js-q4', 'llama, untied head (quantized too)', { seed: 53 }],
  ['transformers.js-q4f16', 'qwen2, tied head (as onnx-community Qwen2.5)', { seed: 54, arch: 'qwen2', tieWordEmbeddings: true, addBos: false }],
  ['genai-fp32', 'head size 32, partial rotary 0.5 inside GroupQueryAttention', { seed: 55, headDim: 32, partialRotaryFactor: 0.5 }],
  ['genai-fp16', 'llama, GQA 4:2', { seed: 56 }],
  [
    'genai-int4',
    'qwen2 (packed QKV bias), llama3 scaling',
    {
      seed: 57,
      arch: 'qwen2',
      addBos: false,
      ropeScaling: { rope_type: 'llama3', factor: 8, low_freq_factor: 1, high_freq_factor: 4, original_max_position_embeddings: 32 },
    },
  ],
];

/** Operators whose presence makes a file the style it claims to be. */
function expectedOps(style: ExportStyleId): string[] {
  const { layout, weights } = EXPORT_STYLES[style];
  const ops = weights === 'int4' ? ['MatMulNBits', 'com.microsoft'] : [];
  if (layout === 'genai') ops.push('GroupQueryAttention', 'SkipSimplifiedLayerNormalization', 'SimplifiedLayerNormalization', 'cos_cache');
  return ops;
}

describe.each(STYLES)('export style %s (%s)', (style, _shape, overrides) => {
  const spec = tinySpec({ ...overrides, exportStyle: style });
  const { layout, activations } = EXPORT_STYLES[style];
  const model = useGeneratedModel(spec);
  let dir: string;
  let engine: Engine;
  beforeAll(() => ({ dir, engine } = model()));

  it("is written the way the exporter writes it: files, operators, inputs and element types", async () => {
    const bytes = await readFile(path.join(dir, onnxPathOf(spec).model));
    for (const op of expectedOps(style)) expect(bytes.includes(op), op).toBe(true);
    if (EXPORT_STYLES[style].weights !== 'int4') expect(bytes.includes('MatMulNBits')).toBe(false);
    const inputs = engine.runner.session.inputNames;
    expect(inputs.includes('position_ids')).toBe(layout === 'optimum');
    const meta = (list: readonly unknown[], name: string) => (list as { name: string; type: string }[]).find((m) => m.name === name)!;
    expect(meta(engine.runner.session.outputMetadata, 'logits').type).toBe(activations);
    expect(meta(engine.runner.session.inputMetadata, 'past_key_values.0.key').type).toBe(activations);
    if (layout === 'genai') {
      const genai = JSON.parse(await readFile(path.join(dir, 'genai_config.json'), 'utf8'));
      expect(genai.search.past_present_share_buffer).toBe(true);
      expect(genai.model.decoder.inputs.past_key_names).toBe('past_key_values.%d.key');
    }
  });

  it('the engine reads its contract from the session (and genai_config.json)', () => {
    expect(engine.runner.contract).toEqual({
      layout,
      positions: layout === 'genai' ? 'after-past' : 'position_ids',
      sharedKvBuffer: layout === 'genai',
      multiTokenWithPast: true,
    });
    expect(engine.runner.kvShape).toEqual({ dtype: activations, layers: spec.layers, kvHeads: spec.kvHeads, headDim: spec.headDim });
    expect(engine.model.rope.rotaryDim).toBe(spec.headDim * spec.partialRotaryFactor);
  });

  it('shuffled blocks re-encoded + final block equal one masked forward pass at global positions (float64 reference)', async () => {
    const check = await checkBlockPath(engine, dir, SAMPLE_TEXTS.slice(0, 3), ' Question: which of these mentions the sea?', [2, 0, 1]);
    expect(check.error).toBeLessThanOrEqual(check.tolerance);
    // not vacuous: attending across blocks moves the final block's logits far beyond the tolerance
    expect(check.maskEffect).toBeGreaterThan(5 * check.tolerance);
  });

  if (layout === 'optimum') {
    it('re-encoded blocks give the logits of the same model run on each block at its global positions', async () => {
      const { blockIds } = engine.segment(SAMPLE_TEXTS.slice(0, 3), '', true);
      const { error, maxLogit } = await reencodedVersusDirect(engine, blockIds, engine.tokenizer.encode(' Which one is about plants?'));
      // same kernels on both sides, but float16 keys are rounded once more after rotation, and
      // float16 logits of ~50 are 1/32 apart: float16 gets the reference's relative tolerance
      expect(error).toBeLessThanOrEqual(activations === 'float16' ? 2e-3 * maxLogit : 1e-4);
    });
  } else {
    it('places new tokens after the past: runs at other positions are refused, with the reason', async () => {
      const ids = engine.tokenizer.encode('A block at an offset');
      await expect(engine.runner.forward(ids, range(7, ids.length), emptyKv(engine.runner.kvShape))).rejects.toThrow(UnsupportedPositionsError);
      await expect(engine.runner.forward(ids, range(7, ids.length), emptyKv(engine.runner.kvShape))).rejects.toThrow(/no position_ids input/);
      expect(engine.runner.describe().join('\n')).toMatch(/block mode is exact/);
    });

    it("feeding the past as onnxruntime-genai's shared max-length buffer gives the engine's logits and KV", async () => {
      const [past] = await prefillAlone(engine, engine.segment([SAMPLE_TEXTS[0]], '', true).blockIds);
      const finalIds = engine.tokenizer.encode(' and the sea');
      const ours = await engine.runner.forward(finalIds, range(past.tokens, finalIds.length), past, { allLogits: true });
      const shared = await runWithSharedBuffer(engine.runner.session, past, finalIds, 96);
      expect(maxAbsDiff(shared.logits, ours.logits.flatMap((row) => [...row]))).toBeLessThanOrEqual(activations === 'float16' ? 2e-3 : 1e-5);
      const total = past.tokens + finalIds.length;
      expect(shared.presentTokens).toBe(96);
      for (let l = 0; l < spec.layers; l++) {
        expect(maxAbsDiff(firstTokens(shared.presentKeys[l], spec.kvHeads, 96, spec.headDim, total), toFloat(ours.present.keys[l]))).toBeLessThanOrEqual(
          activations === 'float16' ? 2e-3 : 1e-5,
        );
      }
    });
  }

  it('with a single block, block and full mode agree, and the first token is the reference argmax', async () => {
    const request = { blocks: [], prompt: SAMPLE_TEXTS[3], raw: true, maxNewTokens: 6 };
    const block = await engine.generate({ ...request, mode: 'block' });
    const full = await engine.generate({ ...request, mode: 'full' });
    expect(block.tokenIds).toEqual(full.tokenIds);
    const { spec: refSpec, weights } = loadReferenceModel(dir);
    const ids = block.promptTokenIds;
    const last = ids.length - 1;
    const ref = referenceForward(refSpec, weights, ids, range(0, ids.length), causalMask(), [last]).logits[last];
    expect(block.tokenIds[0]).toBe(ref.indexOf(Math.max(...ref)));
  });
});

function toFloat(data: KvCache['keys'][number]): Float32Array {
  return data instanceof Float32Array ? data : float16ToFloat32Array(data);
}

/** Tokens 0..n-1 of a [kvHeads, capacity, headDim] buffer, as float32. */
function firstTokens(data: Float32Array, kvHeads: number, capacity: number, headDim: number, n: number): Float32Array {
  const out = new Float32Array(kvHeads * n * headDim);
  for (let h = 0; h < kvHeads; h++) out.set(data.subarray(h * capacity * headDim, (h * capacity + n) * headDim), h * n * headDim);
  return out;
}

/**
 * One run the way onnxruntime-genai drives a past_present_share_buffer model: every past tensor is
 * a buffer of `capacity` tokens holding the real past first, the attention mask covers only the
 * real tokens (GroupQueryAttention reads seqlens_k from it), and present comes back at capacity.
 */
async function runWithSharedBuffer(session: ort.InferenceSession, past: KvCache, ids: number[], capacity: number) {
  const { kvHeads, headDim, dtype } = past;
  const feeds: Record<string, ort.Tensor> = {
    input_ids: new ort.Tensor('int64', BigInt64Array.from(ids, BigInt), [1, ids.length]),
    attention_mask: new ort.Tensor('int64', new BigInt64Array(past.tokens + ids.length).fill(1n), [1, past.tokens + ids.length]),
  };
  const buffer = (data: KvCache['keys'][number]) => {
    const out = dtype === 'float16' ? new Uint16Array(kvHeads * capacity * headDim) : new Float32Array(kvHeads * capacity * headDim);
    for (let h = 0; h < kvHeads; h++) out.set(data.subarray(h * past.tokens * headDim, (h + 1) * past.tokens * headDim), h * capacity * headDim);
    return new ort.Tensor(dtype, out, [1, kvHeads, capacity, headDim]);
  };
  for (let l = 0; l < past.layers; l++) {
    feeds[`past_key_values.${l}.key`] = buffer(past.keys[l]);
    feeds[`past_key_values.${l}.value`] = buffer(past.values[l]);
  }
  const out = await session.run(feeds);
  const float = (t: ort.Tensor) => (t.type === 'float16' ? toFloat(t.data as Uint16Array) : (t.data as Float32Array));
  return {
    logits: float(out.logits),
    presentTokens: Number(out['present.0.key'].dims[2]),
    presentKeys: Array.from({ length: past.layers }, (_, l) => float(out[`present.${l}.key`])),
  };
}
