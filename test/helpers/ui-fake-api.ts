// The renderer's API for component tests: requests answered by the test's handlers (a request without
// one fails, so a view that asks for something unexpected is caught), events emitted by the test.
import { vi } from 'vitest';
import type { AppInfo, EventName, EventPayloads, FolderView, KvStatsView, ModelStatus, RequestName, RequestResults, Settings } from '../../electron/contract/types.ts';
import type { RendererApi } from '../../renderer/api.ts';
import { DEFAULT_SETTINGS } from '../../electron/app-settings.ts';

export type Handlers = { [N in RequestName]?: (args: never) => RequestResults[N] | Promise<RequestResults[N]> };

export function fakeApi(handlers: Handlers) {
  const listeners = new Map<string, Set<(p: unknown) => void>>();
  const request = vi.fn(async (name: RequestName, args: unknown) => {
    const h = handlers[name] as ((a: unknown) => unknown) | undefined;
    if (!h) throw new Error(`unexpected ${name}`);
    return h(args);
  });
  const api = {
    host: 'serve',
    request,
    on(name: EventName, l: (p: unknown) => void) {
      if (!listeners.has(name)) listeners.set(name, new Set());
      listeners.get(name)!.add(l);
      return () => listeners.get(name)!.delete(l);
    },
  } as unknown as RendererApi;
  const emit = <E extends EventName>(name: E, payload: EventPayloads[E]) => listeners.get(name)?.forEach((l) => l(payload));
  return { api, request, emit };
}

export const folder = (over: Partial<FolderView> = {}): FolderView => ({
  id: 1,
  path: '/home/me/notes',
  state: 'parsing',
  parse: { done: 3, total: 10 },
  prefill: { done: 0, total: 0 },
  currentFile: null,
  prefillLimit: null,
  files: 10,
  indexed: 3,
  failed: 1,
  skipped: 0,
  passages: 12,
  error: null,
  ...over,
});

export const noModel: ModelStatus = { ready: false, loading: false, dir: null, name: null, problem: 'no model chosen yet', provider: null };
export const readyModel: ModelStatus = { ready: true, loading: false, dir: '/models/qwen', name: 'Qwen2.5 0.5B Instruct', problem: null, provider: 'cpu' };

export const info = (over: Partial<AppInfo> = {}): AppInfo => ({
  version: '0.1.0',
  dataDir: '/tmp',
  host: 'serve',
  model: noModel,
  folders: 0,
  features: { indexing: true, answering: true, downloads: true },
  ...over,
});

/** What the engine sends a window that has saved nothing: the app's defaults. */
export const settings: Settings = { ...DEFAULT_SETTINGS };

/** kv.stats with nothing stored and no folders, unless the test says otherwise. */
export const kvStats = (over: Partial<KvStatsView> = {}): KvStatsView => ({
  entries: 0,
  bytes: 0,
  budgetBytes: settings.kvBudgetBytes,
  codec: 'int8',
  folders: [],
  prefill: { queued: 0, msPerBlock: null },
  ...over,
});
