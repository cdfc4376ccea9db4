// `quire generate` as a user runs it: a child process, JSON output with the field names other tools read.
import { execFile } from 'node:child_process';
import path from 'node:path';
import { promisify } from 'node:util';
import fs from 'node:fs';
import os from 'node:os';
import { afterAll, describe, expect, it } from 'vitest';
import { webGpuAdapter } from '../native-models/gpu-adapter.ts';
import { webGpuCheck } from './helpers/webgpu.ts';

const run = promisify(execFile);
const FIXTURE = path.resolve('../shared/fixtures/tiny-llama-fp16-genai');
const CLI = path.resolve('bin/quire.js');
const webgpu = await webGpuCheck();

async function generate(args: string[]): Promise<Record<string, unknown>> {
  const { stdout } = await run(process.execPath, [CLI, 'generate', '--model', FIXTURE, '--json', '--provider', 'cpu', ...args]);
  return JSON.parse(stdout) as Record<string, unknown>;
}

describe('quire generate --json', () => {
  it('prints prompt ids (blocks then final), generated ids, text, TTFT, mode, provider and the top 10 logits', async () => {
    const out = await generate(['--block', 'Rivers run to the sea.', '--block', 'Mountains are tall.', '--prompt', 'Where do rivers go?', '--raw', '--max-new-tokens', '5']);
    expect(Object.keys(out).sort()).toEqual(['mode', 'promptTokenIds', 'provider', 'providerReason', 'text', 'tokenIds', 'topLogits', 'ttftMs'].sort());
    expect(out.mode).toBe('block');
    expect(out.provider).toBe('cpu');
    expect(out.providerReason).toBe('cpu as chosen (not auto)');
    const prompt = out.promptTokenIds as number[];
    expect(prompt[0]).toBe(1); // BOS on the first block only
    expect(prompt.filter((id) => id === 1)).toHaveLength(1);
    expect((out.tokenIds as number[]).length).toBeLessThanOrEqual(5);
    const top = out.topLogits as [number, number][];
    expect(top).toHaveLength(10);
    for (let i = 1; i < top.length; i++) expect(top[i][1]).toBeLessThanOrEqual(top[i - 1][1]);
    expect(out.ttftMs).toBeGreaterThan(0);
  });

  it('full mode sees the same prompt ids; greedy output is reproducible', async () => {
    const args = ['--block', 'Rivers run to the sea.', '--prompt', 'Where do rivers go?', '--max-new-tokens', '4'];
    const block = await generate(args);
    const full = await generate([...args, '--mode', 'full']);
    expect(full.promptTokenIds).toEqual(block.promptTokenIds);
    expect(full.mode).toBe('full');
    expect(await generate(args)).toMatchObject({ tokenIds: block.tokenIds, text: block.text });
  });

  it('seeded sampling is reproducible and a bad option is a usage error', async () => {
    const args = ['--prompt', 'Once upon a time', '--temperature', '1.5', '--top-k', '50', '--seed', '7', '--max-new-tokens', '6'];
    expect((await generate(args)).tokenIds).toEqual((await generate(args)).tokenIds);
    await expect(generate(['--prompt', 'x', '--mode', 'sideways'])).rejects.toMatchObject({ code: 2 });
  });
});

describe('quire generate keeps stderr clean unless --verbose', () => {
  const home = fs.mkdtempSync(path.join(os.tmpdir(), 'quire-stderr-'));
  afterAll(() => fs.rmSync(home, { recursive: true, force: true }));
  const quiet = (args: string[], env: NodeJS.ProcessEnv = {}) =>
    run(process.execPath, [CLI, 'generate', '--model', FIXTURE, '--prompt', 'Hello', '--max-new-tokens', '2', '--json', ...args], {
      env: { ...process.env, QUIRE_HOME: home, ...env },
    });

  it('--provider auto: nothing on stderr, the provider and why in the JSON; never a software adapter', async () => {
    const { stdout, stderr } = await quiet([]);
    expect(stderr).toBe('');
    const out = JSON.parse(stdout) as { provider: string; providerReason: string };
    expect(out.providerReason.length).toBeGreaterThan(0);
    if ((await webGpuAdapter()).kind === 'cpu') {
      expect(out.provider).toBe('cpu');
      expect(out.providerReason).toMatch(/^webgpu adapter is a CPU \(.+\): using cpu/);
    }
  });

  it('a Vulkan loader without drivers: no loader or Dawn warnings either', async () => {
    // VK_DRIVER_FILES (VK_ICD_FILENAMES for older loaders) points the loader at no driver at all
    const { stdout, stderr } = await quiet([], { VK_DRIVER_FILES: path.join(home, 'none.json'), VK_ICD_FILENAMES: path.join(home, 'none.json') });
    expect(stderr).toBe('');
    expect((JSON.parse(stdout) as { provider: string }).provider).not.toBe('webgpu');
  });

  it.skipIf(!webgpu.available)('--verbose lets onnxruntime\'s warnings through (needs a WebGPU adapter)', async () => {
    // the WebGPU provider leaves shape computations to the CPU, which onnxruntime warns about
    const plain = await quiet(['--provider', 'webgpu']);
    expect(plain.stderr).not.toMatch(/onnxruntime/);
    const verbose = await quiet(['--provider', 'webgpu', '--verbose']);
    expect(verbose.stderr).toMatch(/\[W:onnxruntime/);
    expect(JSON.parse(verbose.stdout)).toMatchObject({ provider: 'webgpu' });
  });
});
