// The engine on the WebGPU provider against the CPU provider (needs a WebGPU adapter: in CI Mesa's
// software Vulkan driver, lavapipe, from .ci/vulkan.sh; skipped only where no adapter exists). Every
// KV path runs on both: passage blocks prefilled alone, re-encoded and assembled, the final block,
// decode steps, and each quality mode of electron/answering (isolated, shared-prefix, boundary
// recompute), on generated float32 and float16-KV models, the real story model and the genai fp16
// export. lavapipe is ~20x slower than the CPU provider, so the prompts are short.
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { computePassageBlock, type QualityMode } from '../electron/answering/quality-modes.ts';
import { Engine } from '../native-models/engine.ts';
import { float16ToFloat32Array } from '../native-models/float16.ts';
import type { KvCache, KvData } from '../native-models/kv.ts';
import { positionRange, prefillBlock } from '../native-models/prefill.ts';
import { tinySpec } from './tools/tiny-model-spec.ts';
import { maxAbsDiff } from './helpers/compare.ts';
import { makeModelDir, removeDir } from './helpers/models.ts';
import { webGpuCheck } from './helpers/webgpu.ts';

const webgpu = await webGpuCheck();

const INSTRUCTION = 'Notes from the harbour.';
const PASSAGES = ['The keeper lit the lamp at dusk.', 'Boats came home before the storm.', 'Gulls slept on the pier.'];
const QUESTION = ' Who lit the lamp?';
const DECODE_STEPS = 4;

/**
 * Largest |webgpu - cpu| allowed, per model. float32 KV: 1e-4 on logits (the project's float32
 * tolerance). float16 KV: both providers round every stored key and value to float16 and may land
 * one unit in the last place (a relative 2^-11) apart, and the genai export also returns float16
 * logits (~0.36 here, where one unit is 2.4e-4). Measured on lavapipe (Mesa 25.0.7, onnxruntime-node
 * 1.30; each run prints its figures):
 *   generated float32   KV 3.7e-7 (relative), logits 1.9e-6
 *   generated float16   KV 1.5e-4,            logits 3.0e-5
 *   stories260K         KV 1.4e-6,            logits 1.6e-5
 *   genai fp16 export   KV 1.9e-3,            logits 7.3e-4 (3 float16 units)
 * The float16 bounds are those maxima with about 4x margin.
 */
interface Bounds {
  logits: number;
  /** On stored KV, relative to the largest |value| of the layer. */
  kvRelative: number;
}

interface Case {
  name: string;
  dir: () => Promise<string>;
  cleanup: boolean;
  bounds: Bounds;
}

const FIXTURES = path.resolve('../shared/fixtures');
const CASES: Case[] = [
  { name: 'generated llama, float32 KV', dir: () => makeModelDir(tinySpec({ seed: 41 })), cleanup: true, bounds: { logits: 1e-4, kvRelative: 1e-5 } },
  {
    name: 'generated qwen2, float16 KV, partial rotary',
    dir: () => makeModelDir(tinySpec({ seed: 42, arch: 'qwen2', kvDtype: 'float16', partialRotaryFactor: 0.5, addBos: false })),
    cleanup: true,
    bounds: { logits: 1.5e-4, kvRelative: 1e-3 },
  },
  { name: 'stories260K (real, float32 KV)', dir: async () => path.join(FIXTURES, 'stories260k-llama2c'), cleanup: false, bounds: { logits: 1e-4, kvRelative: 1e-5 } },
  { name: 'onnxruntime-genai fp16 export', dir: async () => path.join(FIXTURES, 'tiny-llama-fp16-genai'), cleanup: false, bounds: { logits: 3e-3, kvRelative: 8e-3 } },
];

const MODES: { mode: QualityMode; boundary: number }[] = [
  { mode: 'isolated', boundary: 0 },
  { mode: 'shared-prefix', boundary: 0 },
  { mode: 'isolated', boundary: 2 },
  { mode: 'shared-prefix', boundary: 2 },
];

/** Everything one provider computes for the same prompt. */
interface Outcome {
  blocks: KvCache[];
  /** Final-block logits (every row) per quality mode. */
  modes: Float32Array[][];
  /** Logits after the final block, then after each of the given decode tokens. */
  steps: Float32Array[];
  /** Greedy tokens from the logits above (the CPU's drive both runs). */
  tokens: number[];
  generated: { block: number[]; full: number[]; blockTop: [number, number][] };
}

const asFloat32 = (data: KvData) => (data instanceof Uint16Array ? float16ToFloat32Array(data) : data);
const argmax = (row: Float32Array) => row.indexOf(Math.max(...row));

async function run(engine: Engine, driveTokens?: number[]): Promise<Outcome> {
  const tokenizer = engine.tokenizer;
  const instructionIds = tokenizer.encode(INSTRUCTION, { bos: true });
  const passageIds = PASSAGES.map((p) => tokenizer.encode(` ${p}`));
  const finalIds = tokenizer.encode(QUESTION);
  const instruction = await prefillBlock(engine.runner, instructionIds);
  const blocks = [];
  for (const ids of passageIds) blocks.push(await engine.prefill(ids));

  const modes: Float32Array[][] = [];
  let isolatedPast: KvCache | undefined;
  for (const { mode, boundary } of MODES) {
    const passages = [];
    for (let i = 0; i < passageIds.length; i++) {
      passages.push({ ids: passageIds[i], kv: mode === 'isolated' ? blocks[i] : await computePassageBlock(engine, mode, instruction, passageIds[i]) });
    }
    const { past } = await engine.assemble([{ kv: instruction }, ...passages], { boundaryTokens: boundary });
    if (mode === 'isolated' && boundary === 0) isolatedPast = past;
    modes.push((await engine.runner.forward(finalIds, positionRange(past.tokens, finalIds.length), past, { allLogits: true })).logits);
  }

  // decode: the final block, then one token per run, each step fed the same token on both providers
  const past = isolatedPast!;
  let step = await engine.runner.forward(finalIds, positionRange(past.tokens, finalIds.length), past);
  let position = past.tokens + finalIds.length;
  const steps = [step.logits[0]];
  const tokens: number[] = [];
  for (let i = 0; i < DECODE_STEPS; i++) {
    const token = driveTokens ? driveTokens[i] : argmax(steps[i]);
    tokens.push(token);
    step = await engine.runner.forward([token], [position++], step.present);
    steps.push(step.logits[0]);
  }

  // the facade end to end: blocks prefilled, re-encoded and assembled, final block, decode loop
  const request = { blocks: PASSAGES, prompt: QUESTION, raw: true, maxNewTokens: DECODE_STEPS };
  const block = await engine.generate({ ...request, mode: 'block' });
  const full = await engine.generate({ ...request, mode: 'full' });
  return { blocks, modes, steps, tokens, generated: { block: block.tokenIds, full: full.tokenIds, blockTop: block.topLogits } };
}

function kvRelativeError(a: KvCache, b: KvCache): number {
  let worst = 0;
  for (const kind of ['keys', 'values'] as const) {
    a[kind].forEach((layer, l) => {
      const x = asFloat32(layer);
      const scale = Math.max(...x.map(Math.abs), 1e-6);
      worst = Math.max(worst, maxAbsDiff(x, asFloat32(b[kind][l])) / scale);
    });
  }
  return worst;
}

const rowsError = (a: Float32Array[], b: Float32Array[]) => Math.max(...a.map((row, i) => maxAbsDiff(row, b[i])));

/** What each model measured, printed at the end so bounds can be checked against them. */
const MEASURED: Record<string, Record<string, number>> = {};

describe.skipIf(!webgpu.available)(`WebGPU provider equals the CPU provider (needs a WebGPU adapter${webgpu.available ? '' : `: ${webgpu.why}`})`, () => {
  afterAll(() => {
    for (const [name, m] of Object.entries(MEASURED)) {
      console.log(`webgpu vs cpu, ${name}: ${Object.entries(m).map(([k, v]) => `${k} ${v.toExponential(2)}`).join(', ')}`);
    }
  });

  describe.each(CASES)('$name', ({ name, dir: makeDir, cleanup, bounds }) => {
    let dir: string;
    let cpu: Engine;
    let gpu: Engine;
    let onCpu: Outcome;
    let onGpu: Outcome;
    beforeAll(async () => {
      dir = await makeDir();
      cpu = await Engine.load(dir, { provider: 'cpu' });
      gpu = await Engine.load(dir, { provider: 'webgpu' });
      onCpu = await run(cpu);
      onGpu = await run(gpu, onCpu.tokens);
    });
    afterAll(async () => {
      await cpu?.release();
      await gpu?.release();
      if (cleanup) removeDir(dir);
    });

    it('runs on the providers it names, with the same KV contract', () => {
      expect(gpu.provider).toBe('webgpu');
      expect(cpu.provider).toBe('cpu');
      expect(gpu.runner.kvShape).toEqual(cpu.runner.kvShape);
      expect(gpu.runner.multiTokenWithPast).toBe(cpu.runner.multiTokenWithPast);
    });

    it('block prefill: each passage block alone gives the same KV', () => {
      const error = Math.max(...onCpu.blocks.map((kv, i) => kvRelativeError(kv, onGpu.blocks[i])));
      (MEASURED[name] ??= {}).kvRelative = error;
      expect(error).toBeLessThanOrEqual(bounds.kvRelative);
      expect(onGpu.blocks.map((kv) => kv.tokens)).toEqual(onCpu.blocks.map((kv) => kv.tokens));
    });

    it('re-encoded blocks + final block: the same logits in every quality mode', () => {
      const errors = MODES.map((_, m) => rowsError(onGpu.modes[m], onCpu.modes[m]));
      (MEASURED[name] ??= {}).modeLogits = Math.max(...errors);
      for (const error of errors) expect(error).toBeLessThanOrEqual(bounds.logits);
      // not vacuous: every mode moves the logits by more than twice the providers' difference, so a
      // provider computing another mode (a wrong mask, position or rotation) would be caught
      for (let m = 1; m < MODES.length; m++) expect(rowsError(onCpu.modes[0], onCpu.modes[m])).toBeGreaterThan(2 * Math.max(...errors));
    });

    it('decode: the same logits at every step for the same tokens, and the same greedy answer', () => {
      const error = rowsError(onGpu.steps, onCpu.steps);
      (MEASURED[name] ??= {}).decodeLogits = error;
      expect(error).toBeLessThanOrEqual(bounds.logits);
      expect(onGpu.generated.block).toEqual(onCpu.generated.block);
      expect(onGpu.generated.full).toEqual(onCpu.generated.full);
      expect(onGpu.generated.block.length).toBeGreaterThan(0);
      const top = maxAbsDiff(onGpu.generated.blockTop.map(([, v]) => v), onCpu.generated.blockTop.map(([, v]) => v));
      expect(onGpu.generated.blockTop.map(([id]) => id)).toEqual(onCpu.generated.blockTop.map(([id]) => id));
      expect(top).toBeLessThanOrEqual(bounds.logits);
    });
  });
});
