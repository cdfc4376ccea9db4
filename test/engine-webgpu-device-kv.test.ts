// KV kept on the WebGPU device between decode steps (SessionOptions.kvOnDevice, device-kv.ts)
// against the CPU provider: the same logits at every step and the same greedy answer, the KV that
// comes back at the end equal to the CPU's, and the KV copies it exists to save counted byte for
// byte against the WebGPU provider without it. Needs a WebGPU adapter (lavapipe in CI, from
// .ci/vulkan.sh); skipped only where none exists.
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DecodeKv } from '../native-models/decode-kv.ts';
import { isDeviceKv, kvBytesPerToken, type DeviceKv } from '../native-models/device-kv.ts';
import { Engine } from '../native-models/engine.ts';
import { float16ToFloat32Array } from '../native-models/float16.ts';
import type { KvCache, KvData } from '../native-models/kv.ts';
import { positionRange } from '../native-models/prefill.ts';
import { tinySpec } from './tools/tiny-model-spec.ts';
import { maxAbs, maxAbsDiff } from './helpers/compare.ts';
import { makeModelDir, removeDir } from './helpers/models.ts';
import { webGpuCheck } from './helpers/webgpu.ts';

const webgpu = await webGpuCheck();

const PASSAGES = ['The keeper lit the lamp at dusk.', 'Boats came home before the storm.'];
const QUESTION = ' Who lit the lamp?';
const DECODE_STEPS = 6;

interface Case {
  name: string;
  dir: () => Promise<string>;
  cleanup: boolean;
  /** Largest |webgpu - cpu| on logits; on KV relative to the layer's largest |value| (as in engine-webgpu.test.ts). */
  logits: number;
  kvRelative: number;
}

const FIXTURES = path.resolve('../shared/fixtures');
const CASES: Case[] = [
  { name: 'generated llama, float32 KV', dir: () => makeModelDir(tinySpec({ seed: 41 })), cleanup: true, logits: 1e-4, kvRelative: 1e-5 },
  {
    name: 'generated qwen2, float16 KV',
    dir: () => makeModelDir(tinySpec({ seed: 42, arch: 'qwen2', kvDtype: 'float16', partialRotaryFactor: 0.5, addBos: false })),
    cleanup: true,
    logits: 1.5e-4,
    kvRelative: 1e-3,
  },
  { name: 'onnxruntime-genai fp16 export', dir: async () => path.join(FIXTURES, 'tiny-llama-fp16-genai'), cleanup: false, logits: 3e-3, kvRelative: 8e-3 },
];

const asFloat32 = (data: KvData) => (data instanceof Uint16Array ? float16ToFloat32Array(data) : data);
const argmax = (row: Float32Array) => row.indexOf(Math.max(...row));

function kvRelativeError(a: KvCache, b: KvCache): number {
  expect(a.tokens).toBe(b.tokens);
  let worst = 0;
  for (const kind of ['keys', 'values'] as const) {
    a[kind].forEach((layer, l) => {
      const x = asFloat32(layer);
      worst = Math.max(worst, maxAbsDiff(x, asFloat32(b[kind][l])) / Math.max(maxAbs(x), 1e-6));
    });
  }
  return worst;
}

/** One decode driven by `tokens` (or greedy): logits of each step, the final KV on the CPU, and the copies counted. */
async function decodeSteps(engine: Engine, past: KvCache, finalIds: number[], tokens?: number[]) {
  const kv = new DecodeKv(engine.runner);
  const traffic = { ...engine.runner.kvTraffic };
  const onDevice: boolean[] = [];
  try {
    let position = past.tokens;
    let step = await kv.forward(finalIds, positionRange(position, finalIds.length), past);
    position += finalIds.length;
    const logits = [step.logits[0]];
    const fed: number[] = [];
    onDevice.push(isDeviceKv(step.present));
    for (let i = 0; i < DECODE_STEPS; i++) {
      const token = tokens ? tokens[i] : argmax(logits[i]);
      fed.push(token);
      step = await kv.forward([token], [position++], step.present);
      logits.push(step.logits[0]);
      onDevice.push(isDeviceKv(step.present));
    }
    const present = await kv.toCpu(step.present);
    const uploaded = engine.runner.kvTraffic.uploadedBytes - traffic.uploadedBytes;
    const downloaded = engine.runner.kvTraffic.downloadedBytes - traffic.downloadedBytes;
    return { logits, fed, present, onDevice, uploaded, downloaded };
  } finally {
    kv.release();
  }
}

describe.skipIf(!webgpu.available)(`KV kept on the WebGPU device equals the CPU provider (needs a WebGPU adapter${webgpu.available ? '' : `: ${webgpu.why}`})`, () => {
  describe.each(CASES)('$name', ({ dir: makeDir, cleanup, logits: logitsBound, kvRelative }) => {
    let dir: string;
    let cpu: Engine;
    let device: Engine;
    let plain: Engine;
    let past: KvCache;
    let finalIds: number[];
    beforeAll(async () => {
      dir = await makeDir();
      cpu = await Engine.load(dir, { provider: 'cpu' });
      device = await Engine.load(dir, { provider: 'webgpu' }); // the default
      plain = await Engine.load(dir, { provider: 'webgpu', kvOnDevice: false });
      // one past for all three, computed on the CPU, so the decode is all that differs
      const blocks = [];
      for (const p of PASSAGES) blocks.push({ ids: cpu.tokenizer.encode(` ${p}`), kv: await cpu.prefill(cpu.tokenizer.encode(` ${p}`)) });
      past = (await cpu.assemble(blocks)).past;
      finalIds = cpu.tokenizer.encode(QUESTION);
    });
    afterAll(async () => {
      await cpu?.release();
      await device?.release();
      await plain?.release();
      if (cleanup) removeDir(dir);
    });

    it('keeps KV on the device only where asked', () => {
      expect(device.runner.kvOnDevice).toBe(true);
      expect(plain.runner.kvOnDevice).toBe(false);
      expect(cpu.runner.kvOnDevice).toBe(false);
    });

    it('decode: the same logits at every step, the same KV at the end, and copies of the past and the final present only', async () => {
      const onCpu = await decodeSteps(cpu, past, finalIds);
      const onDevice = await decodeSteps(device, past, finalIds, onCpu.fed);
      const onPlain = await decodeSteps(plain, past, finalIds, onCpu.fed);

      const error = Math.max(...onCpu.logits.map((row, i) => maxAbsDiff(row, onDevice.logits[i])));
      console.log(`kv on device vs cpu: decode logits ${error.toExponential(2)}, final KV ${kvRelativeError(onCpu.present, onDevice.present).toExponential(2)}`);
      expect(error).toBeLessThanOrEqual(logitsBound);
      expect(onDevice.logits.map(argmax)).toEqual(onCpu.logits.map(argmax));
      expect(kvRelativeError(onCpu.present, onDevice.present)).toBeLessThanOrEqual(kvRelative);
      // the steps' presents were device tensors on the kvOnDevice runner and CPU arrays on the others
      expect(onDevice.onDevice.every(Boolean)).toBe(true);
      expect(onPlain.onDevice.some(Boolean)).toBe(false);

      // copies: the past goes up once and the last present comes down once, where the WebGPU
      // provider without the option moves the whole KV up and down at every step
      const perToken = kvBytesPerToken(device.runner.kvShape);
      const end = past.tokens + finalIds.length + DECODE_STEPS;
      expect(onDevice.uploaded).toBe(past.tokens * perToken);
      expect(onDevice.downloaded).toBe(end * perToken);
      // runs of the plain runner: the final block (token by token where the export needs it), then the steps
      const runs = [...(plain.runner.multiTokenWithPast ? [finalIds.length] : finalIds.map(() => 1)), ...Array<number>(DECODE_STEPS).fill(1)];
      let up = 0;
      let down = 0;
      let t = past.tokens;
      for (const n of runs) {
        up += t;
        down += t + n;
        t += n;
      }
      expect(t).toBe(end);
      expect(onPlain.uploaded).toBe(up * perToken);
      expect(onPlain.downloaded).toBe(down * perToken);
    });

    it('frees every device present: after a finished decode and after one cancelled midway', async () => {
      const runner = device.runner;
      const made: DeviceKv[] = [];
      const original = runner.forwardOnDevice.bind(runner);
      runner.forwardOnDevice = async (...args) => {
        const step = await original(...args);
        if (isDeviceKv(step.present)) made.push(step.present);
        return step;
      };
      try {
        const request = { blocks: PASSAGES, prompt: QUESTION, raw: true, maxNewTokens: DECODE_STEPS, mode: 'block' as const };
        await device.generate(request);
        expect(made.length).toBeGreaterThan(DECODE_STEPS);
        // disposeDeviceKv empties the tensor lists once their buffers are freed
        expect(made.filter((kv) => kv.keys.length > 0)).toEqual([]);
        made.length = 0;
        const controller = new AbortController();
        let pieces = 0;
        const cancelled = device.generate({ ...request, signal: controller.signal, onText: () => ++pieces === 2 && controller.abort() });
        await expect(cancelled).rejects.toThrow();
        expect(made.length).toBeGreaterThan(0);
        expect(made.filter((kv) => kv.keys.length > 0)).toEqual([]);
      } finally {
        runner.forwardOnDevice = original;
      }
    });

    it('the engine end to end (blocks prefilled on the device runner, assembled, decoded): the same answer', async () => {
      const request = { blocks: PASSAGES, prompt: QUESTION, raw: true, maxNewTokens: DECODE_STEPS, mode: 'block' as const };
      const a = await cpu.generate(request);
      const b = await device.generate(request);
      expect(b.tokenIds).toEqual(a.tokenIds);
      expect(b.tokenIds.length).toBeGreaterThan(0);
      expect(b.topLogits.map(([id]) => id)).toEqual(a.topLogits.map(([id]) => id));
      expect(maxAbsDiff(b.topLogits.map(([, v]) => v), a.topLogits.map(([, v]) => v))).toBeLessThanOrEqual(logitsBound);
      // block prefill on the device runner downloads its KV through the Identity graph: same KV
      const ids = cpu.tokenizer.encode(` ${PASSAGES[0]}`);
      expect(kvRelativeError(await cpu.prefill(ids), await device.prefill(ids))).toBeLessThanOrEqual(kvRelative);
    });
  });
});
