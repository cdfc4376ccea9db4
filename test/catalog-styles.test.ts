// Every curated model (electron/models/catalog.ts) names its export style; a generated look-alike
// of that style and of the model's family (the config details block attention can tell: GQA ratio,
// biases, tied head, RoPE theta and scaling, BOS) runs block mode against the float64 reference.
// The real files are not downloaded in tests (no network): the look-alike is the same graph layout,
// weight format and activation type at a tiny size.
import { beforeAll, describe, expect, it } from 'vitest';
import { CATALOG } from '../electron/models/catalog.ts';
import type { Engine } from '../native-models/engine.ts';
import { EXPORT_STYLES } from '../native-models/export-style.ts';
import { checkBlockPath, useGeneratedModel } from './helpers/conformance.ts';
import { SAMPLE_TEXTS } from './helpers/models.ts';
import { tinySpec, type TinyModelSpec } from './tools/tiny-model-spec.ts';

/**
 * Each catalog model's family at a tiny size, from its config.json on the hub: heads and KV heads
 * keep the model's ratio, theta and scaling are the model's own.
 */
const LOOK_ALIKES: Record<string, Partial<TinyModelSpec>> = {
  // Qwen2.5-0.5B: qwen2, 14 heads : 2 KV heads, biases, tied head, theta 1e6, no BOS
  'qwen2.5-0.5b-instruct-q4f16': { arch: 'qwen2', heads: 7, kvHeads: 1, tieWordEmbeddings: true, ropeTheta: 1e6, addBos: false },
  'qwen2.5-0.5b-instruct-fp16': { arch: 'qwen2', heads: 7, kvHeads: 1, tieWordEmbeddings: true, ropeTheta: 1e6, addBos: false },
  // SmolLM2-360M: llama, 15 heads : 5 KV heads, tied head, theta 1e5, no BOS in its template
  'smollm2-360m-instruct-q4f16': { arch: 'llama', heads: 3, kvHeads: 1, tieWordEmbeddings: true, ropeTheta: 1e5, addBos: false },
  // Llama-3.2-1B: llama, 32 heads : 8 KV heads, tied head, theta 5e5, llama3 scaling (factor 32, original 8192), BOS
  'llama-3.2-1b-instruct-q4f16': {
    arch: 'llama',
    heads: 4,
    kvHeads: 1,
    tieWordEmbeddings: true,
    ropeTheta: 5e5,
    ropeScaling: { rope_type: 'llama3', factor: 32, low_freq_factor: 1, high_freq_factor: 4, original_max_position_embeddings: 8192 },
    addBos: true,
  },
};

it('every catalog model names an export style, downloads that style ONNX file, and has a look-alike here', () => {
  for (const model of CATALOG) {
    const style = EXPORT_STYLES[model.exportStyle];
    expect(style, model.id).toBeDefined();
    expect(model.files).toContainEqual({ remote: style.onnxFile, local: 'onnx/model.onnx' });
    expect(LOOK_ALIKES[model.id], model.id).toBeDefined();
  }
});

describe.each(CATALOG.map((m, i) => [m.id, m.exportStyle, i] as const))('catalog model %s (%s)', (id, exportStyle, index) => {
  const model = useGeneratedModel(tinySpec({ seed: 90 + index, ...LOOK_ALIKES[id], exportStyle }));
  let dir: string;
  let engine: Engine;
  beforeAll(() => ({ dir, engine } = model()));

  it("the engine reads the style's contract", () => {
    const style = EXPORT_STYLES[exportStyle];
    expect(engine.runner.contract.layout).toBe(style.layout);
    expect(engine.runner.kvShape.dtype).toBe(style.activations);
  });

  it('block mode equals the float64 reference on shuffled blocks and a final block', async () => {
    const check = await checkBlockPath(engine, dir, SAMPLE_TEXTS.slice(0, 3), ' Question: which of these mentions the sea?', [1, 2, 0]);
    expect(check.error).toBeLessThanOrEqual(check.tolerance);
    expect(check.maskEffect).toBeGreaterThan(5 * check.tolerance);
  });
});
