// Batched block prefill (prefill.ts prefillBlocks, ModelRunner.prefillRows): several blocks of
// different lengths in one run, right-padded with a per-row attention mask, against each block
// prefilled alone (prefillBlock), the independent reference. Generated float32 model: within 1e-5;
// float16 KV: within one float16 unit of the value; the real story model; models without
// position_ids fall back to one block per run. On the WebGPU provider too, where an adapter exists.
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Engine } from '../native-models/engine.ts';
import type { KvCache } from '../native-models/kv.ts';
import { prefillBlock, prefillBlocks } from '../native-models/prefill.ts';
import { tinySpec } from './tools/tiny-model-spec.ts';
import { kvToFloat64, maxAbs, maxAbsDiffKv } from './helpers/compare.ts';
import { makeModelDir, removeDir } from './helpers/models.ts';
import { webGpuCheck } from './helpers/webgpu.ts';

const webgpu = await webGpuCheck();

const TEXTS = [
  'The keeper lit the lamp at dusk.',
  'Boats came home before the storm, and the harbour lights burned all night long.',
  'Gulls slept.',
  'Photosynthesis turns light, water and carbon dioxide into sugar and oxygen inside the leaf.',
  'A binary search halves the interval each step.',
];

/** Largest |batched - alone| over every layer's keys and values, relative to the layer's largest |value| when `relative`. */
function kvError(a: KvCache, b: KvCache, relative = false): number {
  expect(a.tokens).toBe(b.tokens);
  let worst = 0;
  for (const kind of ['keys', 'values'] as const) {
    a[kind].forEach((layer, l) => {
      const scale = relative ? Math.max(maxAbs(kvToFloat64(layer)), 1e-6) : 1;
      worst = Math.max(worst, maxAbsDiffKv(layer, b[kind][l]) / scale);
    });
  }
  return worst;
}

interface Case {
  name: string;
  dir: () => Promise<string>;
  cleanup: boolean;
  batched: boolean;
  /** On KV relative to the layer's largest |value|: float32 1e-5 (absolute 1e-5 too, checked below); float16 one unit (2^-10) of the largest. */
  kvRelative: number;
}

const FIXTURES = path.resolve('../shared/fixtures');
const CASES: Case[] = [
  { name: 'generated llama, float32 KV', dir: () => makeModelDir(tinySpec({ seed: 51 })), cleanup: true, batched: true, kvRelative: 1e-5 },
  { name: 'generated qwen2, float16 KV', dir: () => makeModelDir(tinySpec({ seed: 52, arch: 'qwen2', kvDtype: 'float16', addBos: false })), cleanup: true, batched: true, kvRelative: 2 ** -10 },
  { name: 'stories260K (real, float32 KV)', dir: async () => path.join(FIXTURES, 'stories260k-llama2c'), cleanup: false, batched: true, kvRelative: 1e-5 },
  { name: 'generated llama without position_ids', dir: () => makeModelDir(tinySpec({ seed: 53, positionIdsInput: false })), cleanup: true, batched: false, kvRelative: 0 },
  { name: 'onnxruntime-genai fp16 export (GroupQueryAttention)', dir: async () => path.join(FIXTURES, 'tiny-llama-fp16-genai'), cleanup: false, batched: true, kvRelative: 2 ** -10 },
];

describe.each(CASES)('batched prefill, CPU provider: $name', ({ name, dir: makeDir, cleanup, batched, kvRelative }) => {
  let dir: string;
  let engine: Engine;
  let idsList: number[][];
  let alone: KvCache[];
  beforeAll(async () => {
    dir = await makeDir();
    engine = await Engine.load(dir, { provider: 'cpu' });
    idsList = TEXTS.map((t) => engine.tokenizer.encode(` ${t}`));
    alone = [];
    for (const ids of idsList) alone.push(await prefillBlock(engine.runner, ids));
  });
  afterAll(async () => {
    await engine?.release();
    if (cleanup) removeDir(dir);
  });

  it(`${batched ? 'runs several blocks at once' : 'falls back to one block per run'} (the model's inputs decide)`, async () => {
    expect(engine.runner.batchPrefill).toBe(batched);
    if (!batched) await expect(engine.runner.prefillRows(idsList)).rejects.toThrow(/cannot run several blocks/);
  });

  it('each block gets the KV it gets alone, cut to its own length, in the order given', async () => {
    // the blocks differ in length, so most rows of a run are padded
    expect(new Set(idsList.map((ids) => ids.length)).size).toBeGreaterThanOrEqual(4);
    for (const limits of [{}, { maxRows: 2 }, { maxTokens: 3 * Math.max(...idsList.map((ids) => ids.length)) }]) {
      const kvs = await prefillBlocks(engine.runner, idsList, limits);
      expect(kvs.map((kv) => kv.tokens)).toEqual(idsList.map((ids) => ids.length));
      const relative = Math.max(...kvs.map((kv, i) => kvError(alone[i], kv, true)));
      const absolute = Math.max(...kvs.map((kv, i) => kvError(alone[i], kv)));
      console.log(`batched vs alone, ${name}, ${JSON.stringify(limits)}: KV ${absolute.toExponential(2)} (relative ${relative.toExponential(2)})`);
      expect(relative).toBeLessThanOrEqual(kvRelative);
      if (engine.runner.kvShape.dtype === 'float32') expect(absolute).toBeLessThanOrEqual(1e-5);
    }
  });

  it('the batched blocks answer as the blocks prefilled alone do', async () => {
    const kvs = await prefillBlocks(engine.runner, idsList.slice(0, 3));
    const question = engine.tokenizer.encode(' Who lit the lamp?');
    const a = await engine.answer(idsList.slice(0, 3).map((ids, i) => ({ ids, kv: alone[i] })), question, { maxNewTokens: 4 });
    const b = await engine.answer(idsList.slice(0, 3).map((ids, i) => ({ ids, kv: kvs[i] })), question, { maxNewTokens: 4 });
    expect(b.tokenIds).toEqual(a.tokenIds);
    expect(b.topLogits.map(([id]) => id)).toEqual(a.topLogits.map(([id]) => id));
  });
});

describe.skipIf(!webgpu.available)(`batched prefill on the WebGPU provider equals the CPU provider alone (needs a WebGPU adapter${webgpu.available ? '' : `: ${webgpu.why}`})`, () => {
  let dir: string;
  let cpu: Engine;
  let gpu: Engine;
  let gpuOnDevice: Engine;
  beforeAll(async () => {
    dir = await makeModelDir(tinySpec({ seed: 51 }));
    cpu = await Engine.load(dir, { provider: 'cpu' });
    gpu = await Engine.load(dir, { provider: 'webgpu', kvOnDevice: false });
    gpuOnDevice = await Engine.load(dir, { provider: 'webgpu', kvOnDevice: true });
  });
  afterAll(async () => {
    await cpu?.release();
    await gpu?.release();
    await gpuOnDevice?.release();
    removeDir(dir);
  });

  it('generated float32 model: the KV of each block within 1e-5 of the CPU provider prefilling it alone', async () => {
    const idsList = TEXTS.map((t) => cpu.tokenizer.encode(` ${t}`));
    const alone: KvCache[] = [];
    for (const ids of idsList) alone.push(await prefillBlock(cpu.runner, ids));
    for (const engine of [gpu, gpuOnDevice]) {
      expect(engine.runner.batchPrefill).toBe(true);
      const kvs = await prefillBlocks(engine.runner, idsList);
      const error = Math.max(...kvs.map((kv, i) => kvError(alone[i], kv)));
      console.log(`batched webgpu${engine.runner.kvOnDevice ? ' (kv on device)' : ''} vs cpu alone: KV ${error.toExponential(2)}`);
      expect(error).toBeLessThanOrEqual(1e-5);
    }
  });
});
