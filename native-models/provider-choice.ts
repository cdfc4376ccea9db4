// `--provider auto`: which execution provider runs a model on this machine. A GPU provider is chosen
// only when it is a real GPU (the WebGPU adapter is not a software one: lavapipe/llvmpipe and
// SwiftShader report a CPU device type) AND a short timing probe finds it faster than the CPU
// provider on this model. The decision is remembered per model fingerprint, adapter and
// onnxruntime version in a small JSON file, so the probe runs once, and it always comes with a reason.
import fs from 'node:fs';
import path from 'node:path';
import type ort from 'onnxruntime-node';
import { describeAdapter, isUsableGpu, webGpuAdapter, type GpuAdapter } from './gpu-adapter.ts';
import { emptyKv, type KvCache, type KvShape } from './kv.ts';
import { modelFingerprint, type ModelFolder } from './model-folder.ts';
import type { OpenedSession, ProviderAttempt, ProviderChoice } from './session.ts';

export type RunProvider = Exclude<ProviderChoice, 'auto'>;
export type GpuProvider = Exclude<RunProvider, 'cpu'>;

/** What the probe runs: the engine's own forward (ModelRunner), so it times the code users run. */
export interface ProbeRunner {
  readonly kvShape: KvShape;
  forward(ids: readonly number[], positions: readonly number[], past: KvCache): Promise<{ present: KvCache }>;
}

export interface ProbeTimes {
  /** Median ms of one forward of PROBE_TOKENS tokens from an empty past (a block prefill). */
  prefillMs: number;
  /** Median ms of one new token after that past (a decode step). */
  stepMs: number;
}

export interface ProviderProbe {
  tokens: number;
  cpu: ProbeTimes;
  gpu: ProbeTimes;
}

export interface ProviderDecision {
  provider: RunProvider;
  reason: string;
  probe?: ProviderProbe;
  /** ISO time of the measurement. */
  decidedAt: string;
}

export interface ChoiceRequest {
  model: ModelFolder;
  /** GPU providers onnxruntime-node can load here, best first. */
  candidates: GpuProvider[];
  /** Providers already ruled out (not built in, libraries missing), with why. */
  fallbacks: ProviderAttempt[];
  /** The decision file (`<data dir>/provider-choice.json`); without it, every load measures again. */
  cachePath?: string;
  onnxruntimeVersion: string;
  open(provider: RunProvider): Promise<ort.InferenceSession>;
  wrap(session: ort.InferenceSession, provider: RunProvider): ProbeRunner;
  /** The WebGPU adapter; detected from the system unless given. */
  adapter?: () => Promise<GpuAdapter>;
}

export const PROBE_TOKENS = 64;
const PROBE_ROUNDS = 3;

function median(values: number[]): number {
  const s = [...values].sort((a, b) => a - b);
  const mid = s.length >> 1;
  return s.length % 2 ? s[mid] : (s[mid - 1] + s[mid]) / 2;
}

async function timeOnce(runner: ProbeRunner, ids: number[]): Promise<{ prefillMs: number; stepMs: number }> {
  const positions = ids.map((_, i) => i);
  const t0 = performance.now();
  const { present } = await runner.forward(ids, positions, emptyKv(runner.kvShape));
  const t1 = performance.now();
  await runner.forward([ids[1]], [ids.length], present);
  return { prefillMs: t1 - t0, stepMs: performance.now() - t1 };
}

/**
 * The same forward on both providers: one warm-up each (shader compilation, allocations), then
 * PROBE_ROUNDS interleaved rounds so that load on the machine hits both alike; medians.
 */
export async function probeProviders(cpu: ProbeRunner, gpu: ProbeRunner, model: ModelFolder): Promise<ProviderProbe> {
  const tokens = Math.max(2, Math.min(PROBE_TOKENS, model.maxPositions - 1));
  const vocab = Number(model.config.vocab_size) || 100;
  const ids = Array.from({ length: tokens }, (_, i) => (3 + i * 7) % vocab);
  await timeOnce(gpu, ids);
  await timeOnce(cpu, ids);
  const samples: Record<'cpu' | 'gpu', { prefillMs: number; stepMs: number }[]> = { cpu: [], gpu: [] };
  for (let round = 0; round < PROBE_ROUNDS; round++) {
    samples.gpu.push(await timeOnce(gpu, ids));
    samples.cpu.push(await timeOnce(cpu, ids));
  }
  const summary = (s: { prefillMs: number; stepMs: number }[]): ProbeTimes => ({
    prefillMs: median(s.map((x) => x.prefillMs)),
    stepMs: median(s.map((x) => x.stepMs)),
  });
  return { tokens, cpu: summary(samples.cpu), gpu: summary(samples.gpu) };
}

/** Faster on both halves of a question (the final block is a prefill, the answer is decode steps). */
export function gpuIsFaster(probe: ProviderProbe): boolean {
  return probe.gpu.prefillMs < probe.cpu.prefillMs && probe.gpu.stepMs < probe.cpu.stepMs;
}

function probeText(provider: GpuProvider, probe: ProviderProbe): string {
  const ms = (x: number) => (x < 10 ? x.toFixed(2) : x.toFixed(1));
  return (
    `prefill of ${probe.tokens} tokens ${ms(probe.gpu.prefillMs)} ms on ${provider} vs ${ms(probe.cpu.prefillMs)} ms on cpu, ` +
    `decode step ${ms(probe.gpu.stepMs)} vs ${ms(probe.cpu.stepMs)} ms`
  );
}

// ---- the decision file ----------------------------------------------------------------------

interface DecisionFile {
  version: 1;
  decisions: Record<string, ProviderDecision>;
}

export function readDecisions(file: string): Record<string, ProviderDecision> {
  try {
    const parsed = JSON.parse(fs.readFileSync(file, 'utf8')) as Partial<DecisionFile>;
    return parsed.version === 1 && parsed.decisions && typeof parsed.decisions === 'object' ? parsed.decisions : {};
  } catch {
    return {}; // missing or unreadable: decide again and rewrite it
  }
}

function writeDecision(file: string, key: string, decision: ProviderDecision): void {
  try {
    const decisions = { ...readDecisions(file), [key]: decision };
    fs.mkdirSync(path.dirname(file), { recursive: true });
    const tmp = `${file}.${process.pid}.tmp`;
    fs.writeFileSync(tmp, `${JSON.stringify({ version: 1, decisions } satisfies DecisionFile, null, 1)}\n`);
    fs.renameSync(tmp, file);
  } catch {
    // a read-only data directory costs a probe per load, nothing else
  }
}

// ---- the choice -----------------------------------------------------------------------------

const firstLine = (e: unknown) => (e instanceof Error ? e.message : String(e)).split('\n')[0].slice(0, 300);

/**
 * Opens the chosen provider's session. The reason puts what decided first (the adapter, the probe,
 * a failure) and the providers that were never candidates (not built in, libraries missing) last.
 */
export async function chooseProvider(request: ChoiceRequest): Promise<OpenedSession> {
  const fallbacks = [...request.fallbacks];
  const absent = request.fallbacks.map((f) => `${f.provider}: ${f.error}`);
  const decisive: string[] = [];
  const because = (verdict: string) =>
    `${[...decisive, ...(decisive.length ? [] : absent)].join('; ') || 'no GPU provider on this platform'}: ${verdict}` +
    (decisive.length && absent.length ? ` (${absent.join('; ')})` : '');
  const ruleOut = (provider: RunProvider, error: string, phrase: string) => {
    fallbacks.push({ provider, error });
    decisive.push(phrase);
  };

  // What each remaining GPU provider would run on; software adapters are out before any session.
  const identities: { provider: GpuProvider; identity: string }[] = [];
  for (const provider of request.candidates) {
    if (provider !== 'webgpu') {
      identities.push({ provider, identity: provider });
      continue;
    }
    const adapter = await (request.adapter ?? webGpuAdapter)();
    if (adapter.kind === 'cpu') {
      const error = `adapter is a CPU (${describeAdapter(adapter)})`;
      ruleOut(provider, error, `webgpu ${error}`);
    } else if (!isUsableGpu(adapter)) {
      ruleOut(provider, `no adapter: ${adapter.name}`, `webgpu has no adapter (${adapter.name})`);
    } else {
      identities.push({ provider, identity: `webgpu on ${describeAdapter(adapter)} (${adapter.kind})` });
    }
  }
  if (identities.length === 0) return { session: await request.open('cpu'), provider: 'cpu', fallbacks, reason: because('using cpu') };

  const key = [await modelFingerprint(request.model), `onnxruntime ${request.onnxruntimeVersion}`, ...identities.map((c) => c.identity)].join(' | ');
  const known = request.cachePath ? readDecisions(request.cachePath)[key] : undefined;
  if (known) {
    try {
      const session = await request.open(known.provider);
      return { session, provider: known.provider, fallbacks, reason: `${known.reason} (measured ${known.decidedAt.slice(0, 10)})` };
    } catch (e) {
      if (known.provider === 'cpu') throw e;
      ruleOut(known.provider, firstLine(e), `${known.provider} failed to start: ${firstLine(e)}`);
    }
  }

  const cpuSession = await request.open('cpu');
  let cpu: ProbeRunner;
  try {
    cpu = request.wrap(cpuSession, 'cpu');
  } catch (e) {
    await cpuSession.release();
    throw e;
  }
  let measured: ProviderProbe | undefined;
  let failed = false;
  for (const { provider, identity } of identities) {
    let session: ort.InferenceSession;
    try {
      session = await request.open(provider);
    } catch (e) {
      failed = true;
      ruleOut(provider, firstLine(e), `${provider} failed to start: ${firstLine(e)}`);
      continue;
    }
    let probe: ProviderProbe;
    try {
      probe = await probeProviders(cpu, request.wrap(session, provider), request.model);
    } catch (e) {
      await session.release();
      failed = true;
      ruleOut(provider, `failed on this model: ${firstLine(e)}`, `${provider} failed on this model: ${firstLine(e)}`);
      continue;
    }
    if (gpuIsFaster(probe)) {
      await cpuSession.release();
      const others = decisive.length ? ` (${decisive.join('; ')})` : '';
      const reason = `${identity} is faster than cpu on this model (${probeText(provider, probe)})${others}`;
      remember(request, key, { provider, reason, probe, decidedAt: new Date().toISOString() });
      return { session, provider, fallbacks, reason };
    }
    await session.release();
    measured = probe;
    ruleOut(provider, 'not faster than cpu on this model', `${identity} is not faster than cpu on this model (${probeText(provider, probe)})`);
  }
  const reason = because('using cpu');
  // only a measured verdict is remembered: a provider that failed to start is tried again next time
  if (measured && !failed) remember(request, key, { provider: 'cpu', reason, probe: measured, decidedAt: new Date().toISOString() });
  return { session: cpuSession, provider: 'cpu', fallbacks, reason };
}

function remember(request: ChoiceRequest, key: string, decision: ProviderDecision): void {
  if (request.cachePath) writeDecision(request.cachePath, key, decision);
}
