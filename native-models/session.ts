// Opening a model's onnxruntime session: an explicit provider as asked, or `auto` through
// provider-choice.ts (a real GPU that is faster on this model, else CPU), always with a reason.
// Also the one place that sets onnxruntime's logging: quiet unless QUIRE_VERBOSE=1 (`--verbose`).
import fs from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import ort from 'onnxruntime-node';
import { describeAdapter, webGpuAdapter } from './gpu-adapter.ts';
import type { ModelFolder } from './model-folder.ts';
import { chooseProvider, type ProbeRunner, type RunProvider } from './provider-choice.ts';
import type { ProviderChoice } from './provider-names.ts';

export type { ProviderChoice } from './provider-names.ts';

export interface SessionOptions {
  provider?: ProviderChoice;
  /** Intra-op threads; 0 or undefined lets onnxruntime choose (one per physical core). */
  threads?: number;
  /** Where `auto` remembers its measured decisions (`<data dir>/provider-choice.json`). */
  providerCache?: string;
  /**
   * WebGPU only: present KV stays on the device and decode steps feed it back without copies
   * (device-kv.ts). On by default where the provider is WebGPU (the copy per generated token it
   * saves grows with the context: ~96 MiB a token at 4K on a Qwen2.5-0.5B shape); false keeps
   * every present on the CPU (what the tests compare it with). Ignored on other providers.
   */
  kvOnDevice?: boolean;
}

export interface ProviderAttempt {
  provider: Exclude<ProviderChoice, 'auto'>;
  error: string;
}

export interface OpenedSession {
  session: ort.InferenceSession;
  /** The provider that runs the model. */
  provider: Exclude<ProviderChoice, 'auto'>;
  /** Providers tried or ruled out before it, with the reason for each. */
  fallbacks: ProviderAttempt[];
  /** Why this provider, in words (shown by `quire generate` and the app's provider badge). */
  reason: string;
}

/** GPU providers worth trying on this platform, best first. */
export function gpuProvidersFor(platform: NodeJS.Platform): Exclude<ProviderChoice, 'auto' | 'cpu'>[] {
  if (platform === 'win32') return ['cuda', 'dml', 'webgpu'];
  if (platform === 'darwin') return ['coreml', 'webgpu'];
  return ['cuda', 'webgpu'];
}

/** Where onnxruntime-node's install script puts the CUDA provider library it downloads (opt-in). */
function cudaProviderLibrary(): string {
  const bin = path.join(path.dirname(createRequire(import.meta.url).resolve('onnxruntime-node')), '..', 'bin', 'napi-v6', process.platform, process.arch);
  return path.join(bin, process.platform === 'win32' ? 'onnxruntime_providers_cuda.dll' : 'libonnxruntime_providers_cuda.so');
}

/** Providers onnxruntime-node can load at all: skipping the rest keeps `auto` fast and quiet. */
function loadable(provider: string): string | undefined {
  const backend = ort.listSupportedBackends().find((b) => b.name === provider);
  if (!backend) return `${provider} is not built into onnxruntime-node on ${process.platform}`;
  // not bundled = shipped separately: CUDA's provider library comes from the install script, if asked
  if (!backend.bundled && provider === 'cuda' && !fs.existsSync(cudaProviderLibrary())) {
    return 'CUDA libraries are not installed (see README, "GPU")';
  }
  return undefined;
}

/** The first line of onnxruntime's error, without its source-file prefix. */
function shortReason(e: unknown): string {
  const text = e instanceof Error ? e.message : String(e);
  const line = text.split('\n')[0];
  const plain = line.replace(/^.*?(was false\.|\] :)\s*/, '');
  return (plain || line).slice(0, 300);
}

export function verboseLogging(): boolean {
  return process.env.QUIRE_VERBOSE === '1';
}

/**
 * onnxruntime's process-wide logger is configured once, at the first session: warnings only with
 * --verbose (they are about node placement and fallbacks, noise for a user); errors always.
 */
function configureLogging(): void {
  ort.env.logLevel = verboseLogging() ? 'warning' : 'error';
}

/** `outputsOnDevice`: outputs returned as 'gpu-buffer' tensors (WebGPU only; see device-kv.ts). */
export async function createSession(
  onnxPath: string,
  provider: RunProvider,
  threads?: number,
  outputsOnDevice: readonly string[] = [],
): Promise<ort.InferenceSession> {
  configureLogging();
  try {
    return await ort.InferenceSession.create(onnxPath, {
      executionProviders: [provider],
      graphOptimizationLevel: 'all',
      ...(threads ? { intraOpNumThreads: threads } : {}),
      ...(outputsOnDevice.length
        ? { preferredOutputLocation: Object.fromEntries(outputsOnDevice.map((name) => [name, 'gpu-buffer' as const])) }
        : {}),
      logSeverityLevel: verboseLogging() ? 2 : 3,
    });
  } catch (e) {
    throw new Error(shortReason(e), { cause: e });
  }
}

export function onnxruntimeVersion(): string {
  return ort.env.versions.node ?? ort.env.versions.common;
}

/** `wrap` turns a candidate session into the engine's runner, for the timing probe of `auto`. */
export async function openSession(
  model: ModelFolder,
  options: SessionOptions,
  wrap: (session: ort.InferenceSession, provider: RunProvider) => ProbeRunner,
): Promise<OpenedSession> {
  const choice = options.provider ?? 'auto';
  const open = (provider: RunProvider) => createSession(model.onnxPath, provider, options.threads);
  if (choice !== 'auto') {
    const notLoadable = loadable(choice);
    if (notLoadable) throw new Error(`no execution provider could run ${model.onnxPath} (${choice}: ${notLoadable})`);
    let session: ort.InferenceSession;
    try {
      session = await open(choice);
    } catch (e) {
      throw new Error(`no execution provider could run ${model.onnxPath} (${choice}: ${(e as Error).message})`, { cause: e });
    }
    const adapter = choice === 'webgpu' ? `, adapter ${describeAdapter(await webGpuAdapter())}` : '';
    return { session, provider: choice, fallbacks: [], reason: `${choice} as chosen (not auto)${adapter}` };
  }
  const fallbacks: ProviderAttempt[] = [];
  const candidates = gpuProvidersFor(process.platform).filter((provider) => {
    const notLoadable = loadable(provider);
    if (notLoadable) fallbacks.push({ provider, error: notLoadable });
    return !notLoadable;
  });
  return chooseProvider({
    model,
    candidates,
    fallbacks,
    cachePath: options.providerCache,
    onnxruntimeVersion: onnxruntimeVersion(),
    open,
    wrap,
  });
}
