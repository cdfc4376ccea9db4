// `--provider auto`: a software WebGPU adapter is never chosen, a GPU provider only after a timing
// probe against the CPU provider on the same model, and the measured decision is remembered per
// model, adapter and onnxruntime version. The parts that need a WebGPU adapter say so and skip
// where none exists; the adapter is Mesa's lavapipe in CI (.ci/vulkan.sh).
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Engine } from '../native-models/engine.ts';
import { parseVulkanSummary, webGpuAdapter, type GpuAdapter } from '../native-models/gpu-adapter.ts';
import { loadModelFolder } from '../native-models/model-folder.ts';
import { ModelRunner } from '../native-models/model-runner.ts';
import { chooseProvider, gpuIsFaster, readDecisions, type ProbeRunner } from '../native-models/provider-choice.ts';
import { createSession, onnxruntimeVersion } from '../native-models/session.ts';
import { tinySpec } from './tools/tiny-model-spec.ts';
import { makeModelDir, removeDir } from './helpers/models.ts';
import { webGpuCheck } from './helpers/webgpu.ts';

const webgpu = await webGpuCheck();

/** `vulkaninfo --summary` where vulkan-tools is installed and finds a device. */
function vulkanSummary(): string | undefined {
  try {
    return execFileSync('vulkaninfo', ['--summary'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] });
  } catch {
    return undefined;
  }
}
const summary = vulkanSummary();

// The device part of `vulkaninfo --summary` (vulkan-tools 1.3) on a machine with an NVIDIA GPU and
// Mesa's lavapipe: the parser must put the discrete GPU first, as Dawn's high-performance request does.
const TWO_DEVICES = `Devices:
========
GPU0:
	apiVersion         = 1.4.305
	deviceType         = PHYSICAL_DEVICE_TYPE_CPU
	deviceName         = llvmpipe (LLVM 15.0.6, 256 bits)
	driverName         = llvmpipe
	driverInfo         = Mesa 25.0.7-2~bpo12+1 (LLVM 15.0.6)
GPU1:
	apiVersion         = 1.3.277
	deviceType         = PHYSICAL_DEVICE_TYPE_DISCRETE_GPU
	deviceName         = NVIDIA H200
	driverName         = NVIDIA
	driverInfo         = 550.54.15
`;

describe('the WebGPU adapter, from the Vulkan loader', () => {
  it('parses vulkaninfo --summary and orders devices as Dawn prefers them (discrete first, CPU last)', () => {
    const devices = parseVulkanSummary(TWO_DEVICES);
    expect(devices).toEqual([
      { kind: 'discrete', name: 'NVIDIA H200', driver: '550.54.15' },
      { kind: 'cpu', name: 'llvmpipe (LLVM 15.0.6, 256 bits)', driver: 'Mesa 25.0.7-2~bpo12+1 (LLVM 15.0.6)' },
    ]);
    expect(parseVulkanSummary('Cannot create Vulkan instance.')).toEqual([]);
  });

  it.skipIf(!webgpu.available || !summary)('identifies this machine\'s adapter (needs a WebGPU adapter and vulkaninfo)', async () => {
    const adapter = await webGpuAdapter();
    const [best] = parseVulkanSummary(summary!);
    expect(adapter).toEqual(best);
    // CI's adapter is lavapipe: a CPU device, which auto must refuse
    if (/llvmpipe|lavapipe|swiftshader/i.test(adapter.name)) expect(adapter.kind).toBe('cpu');
  });
});

describe('--provider auto', () => {
  let dir: string;
  let home: string;
  beforeAll(async () => {
    dir = await makeModelDir(tinySpec({ seed: 51 }));
    home = fs.mkdtempSync(path.join(os.tmpdir(), 'quire-choice-'));
  });
  afterAll(() => {
    removeDir(dir);
    removeDir(home);
  });

  it('never runs on a software adapter, and says why', async () => {
    const adapter = await webGpuAdapter();
    const engine = await Engine.load(dir, { providerCache: path.join(home, 'auto.json') });
    try {
      if (adapter.kind === 'cpu') {
        expect(engine.provider).toBe('cpu');
        expect(engine.runner.providerReason).toMatch(/^webgpu adapter is a CPU \(.+\): using cpu/);
        // decided from the adapter alone: nothing measured, nothing to remember
        expect(fs.existsSync(path.join(home, 'auto.json'))).toBe(false);
      } else if (adapter.kind === 'none') {
        expect(engine.provider).not.toBe('webgpu');
        expect(engine.runner.providerReason).toMatch(/webgpu has no adapter/);
      }
      expect(engine.runner.providerReason).not.toBe('');
    } finally {
      await engine.release();
    }
  });

  describe.skipIf(!webgpu.available)('where the adapter cannot be identified, the timing probe decides (needs a WebGPU adapter)', () => {
    const unidentified = async (): Promise<GpuAdapter> => ({ kind: 'unknown', name: 'an adapter the test does not identify' });
    let wraps: string[];
    const choose = (cachePath: string) => {
      const model = loadModelFolder(dir);
      wraps = [];
      return chooseProvider({
        model,
        candidates: ['webgpu'],
        fallbacks: [],
        cachePath,
        onnxruntimeVersion: onnxruntimeVersion(),
        open: (provider) => createSession(model.onnxPath, provider),
        wrap: (session, provider): ProbeRunner => {
          wraps.push(provider);
          return ModelRunner.forSession(session, model, provider);
        },
        adapter: unidentified,
      });
    };

    it('measures both providers on the model, picks what the probe says, and remembers it', async () => {
      const cachePath = path.join(home, 'probe.json');
      const first = await choose(cachePath);
      await first.session.release();
      expect(wraps.sort()).toEqual(['cpu', 'webgpu']);
      const decisions = Object.values(readDecisions(cachePath));
      expect(decisions).toHaveLength(1);
      const [decision] = decisions;
      const probe = decision.probe!;
      for (const t of [probe.cpu, probe.gpu]) {
        expect(t.prefillMs).toBeGreaterThan(0);
        expect(t.stepMs).toBeGreaterThan(0);
      }
      // the decision follows the measurement, whichever way this machine's adapter goes
      expect(first.provider).toBe(gpuIsFaster(probe) ? 'webgpu' : 'cpu');
      expect(decision.provider).toBe(first.provider);
      expect(first.reason).toMatch(gpuIsFaster(probe) ? /is faster than cpu on this model/ : /is not faster than cpu on this model .*: using cpu$/);
      expect(first.reason).toContain(`prefill of ${probe.tokens} tokens`);

      // the second load reads the decision: no probe, same provider, the measurement's date
      const second = await choose(cachePath);
      await second.session.release();
      expect(wraps).toEqual([]);
      expect(second.provider).toBe(first.provider);
      expect(second.reason).toBe(`${first.reason} (measured ${decision.decidedAt.slice(0, 10)})`);
    });

    it('an unreadable decision file is measured again and rewritten', async () => {
      const cachePath = path.join(home, 'broken.json');
      fs.writeFileSync(cachePath, '{ not json');
      const opened = await choose(cachePath);
      await opened.session.release();
      expect(wraps.sort()).toEqual(['cpu', 'webgpu']);
      expect(Object.keys(readDecisions(cachePath))).toHaveLength(1);
    });
  });
});
