// Execution-provider choice: try the platform's GPU providers, fall back to CPU fast, and say why.
import ort from 'onnxruntime-node';
import type { ProviderChoice } from './provider-choices.ts';

export { PROVIDER_CHOICES, type ProviderChoice } from './provider-choices.ts';

export interface SessionOptions {
  provider?: ProviderChoice;
  /** Intra-op threads; 0 or undefined lets onnxruntime choose (one per physical core). */
  threads?: number;
}

export interface ProviderAttempt {
  provider: Exclude<ProviderChoice, 'auto'>;
  error: string;
}

export interface OpenedSession {
  session: ort.InferenceSession;
  /** The provider that runs the model. */
  provider: Exclude<ProviderChoice, 'auto'>;
  /** Providers tried before it, with the reason each failed. */
  fallbacks: ProviderAttempt[];
}

/** GPU providers worth trying on this platform, best first. */
export function gpuProvidersFor(platform: NodeJS.Platform): Exclude<ProviderChoice, 'auto' | 'cpu'>[] {
  if (platform === 'win32') return ['cuda', 'dml', 'webgpu'];
  if (platform === 'darwin') return ['coreml', 'webgpu'];
  return ['cuda', 'webgpu'];
}

/** Providers onnxruntime-node can load at all: skipping the rest keeps `auto` fast and quiet. */
function loadable(provider: string): string | undefined {
  const backend = ort.listSupportedBackends().find((b) => b.name === provider);
  if (!backend) return `${provider} is not built into onnxruntime-node on ${process.platform}`;
  if (!backend.bundled && provider === 'cuda') {
    return 'CUDA libraries are not installed (install with --onnxruntime-node-install=cuda12, see README)';
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

export async function openSession(onnxPath: string, options: SessionOptions = {}): Promise<OpenedSession> {
  const choice = options.provider ?? 'auto';
  const order: Exclude<ProviderChoice, 'auto'>[] = choice === 'auto' ? [...gpuProvidersFor(process.platform), 'cpu'] : [choice];
  const fallbacks: ProviderAttempt[] = [];
  for (const provider of order) {
    const notLoadable = loadable(provider);
    if (notLoadable) {
      fallbacks.push({ provider, error: notLoadable });
      continue;
    }
    try {
      const session = await ort.InferenceSession.create(onnxPath, {
        executionProviders: [provider],
        graphOptimizationLevel: 'all',
        ...(options.threads ? { intraOpNumThreads: options.threads } : {}),
        // warnings about CPU fallbacks of single nodes are noise for a user; errors still surface
        logSeverityLevel: 3,
      });
      return { session, provider, fallbacks };
    } catch (e) {
      fallbacks.push({ provider, error: shortReason(e) });
    }
  }
  const tried = fallbacks.map((f) => `${f.provider}: ${f.error}`).join('; ');
  throw new Error(`no execution provider could run ${onnxPath} (${tried})`);
}
