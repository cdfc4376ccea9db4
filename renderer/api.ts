// The renderer's typed client: window.quire (the Electron preload) when present, else the serve
// bridge over HTTP with the per-run token from the URL fragment (#token=...).
import {
  QuireRequestError,
  type EventName,
  type EventPayloads,
  type QuireApi,
  type RequestFailure,
} from '../electron/contract/types.ts';

export type RendererApi = QuireApi & { host: 'electron' | 'serve'; pathForFile?: (file: File) => string };

declare global {
  interface Window {
    quire?: QuireApi & { pathForFile(file: File): string };
  }
}

const TOKEN_KEY = 'quire.token';

/** The token from #token=..., kept for reloads in sessionStorage and removed from the address bar. */
export function takeToken(location: Location, storage: Storage, history: History): string | null {
  const match = /(?:^#|&)token=([0-9a-zA-Z_-]+)/.exec(location.hash);
  if (match) {
    storage.setItem(TOKEN_KEY, match[1]);
    history.replaceState(null, '', location.pathname + location.search);
    return match[1];
  }
  return storage.getItem(TOKEN_KEY);
}

export function bridgeApi(token: string, base = ''): RendererApi {
  let events: EventSource | null = null;
  const source = () => (events ??= new EventSource(`${base}/api/events?token=${encodeURIComponent(token)}`));
  return {
    host: 'serve',
    async request(name, args) {
      const res = await fetch(`${base}/api/${name}`, {
        method: 'POST',
        headers: { Authorization: `Bearer ${token}`, 'Content-Type': 'application/json' },
        body: JSON.stringify(args ?? {}),
      });
      const body = (await res.json().catch(() => null)) as { ok: boolean; result?: unknown; error?: RequestFailure } | null;
      if (!body?.ok) {
        if (res.status === 401) throw new QuireRequestError('unavailable', 'this page has no valid token: open the URL quire serve printed');
        throw new QuireRequestError(body?.error?.code ?? 'failed', body?.error?.message ?? `HTTP ${res.status}`);
      }
      return body.result as never;
    },
    on<E extends EventName>(name: E, listener: (payload: EventPayloads[E]) => void) {
      const handler = (e: MessageEvent<string>) => listener(JSON.parse(e.data) as EventPayloads[E]);
      source().addEventListener(name, handler as EventListener);
      return () => source().removeEventListener(name, handler as EventListener);
    },
  };
}

export function createApi(): RendererApi {
  if (window.quire) return { ...window.quire, host: 'electron' };
  const token = takeToken(window.location, window.sessionStorage, window.history);
  return bridgeApi(token ?? '');
}
