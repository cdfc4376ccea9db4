// The desktop app's OpenAI-compatible API: a server of its own on 127.0.0.1 answering only /v1
// (openai-api.ts), switched by the settings apiServer / apiPort / apiKey (off by default). The
// Electron main process applies the settings at start and after each settings.set; `quire serve`
// does not use this (its bridge serves /v1 on its own port).
import http from 'node:http';
import type { Settings } from '../contract/types.ts';
import { createOpenAiApi, type ApiEngine } from './openai-api.ts';

export interface ApiServer {
  port: number;
  close(): Promise<void>;
}

/** Listens on 127.0.0.1:`port` (0: any free port); answers the API under /v1 and 404 elsewhere. */
export async function startApiServer(options: { engine: ApiEngine; port: number; apiKey: string }): Promise<ApiServer> {
  const api = createOpenAiApi({ engine: options.engine, apiKey: options.apiKey });
  let port = options.port;
  const server = http.createServer((req, res) => {
    if (!api.owns(req.url)) {
      res.writeHead(404, { 'Content-Type': 'text/plain; charset=utf-8' });
      return void res.end('Quire serves the OpenAI-compatible API under /v1\n');
    }
    void api.handle(req, res, port);
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port, '127.0.0.1', () => resolve());
  });
  port = (server.address() as { port: number }).port;
  return {
    port,
    async close() {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

export type ApiSettings = Pick<Settings, 'apiServer' | 'apiPort' | 'apiKey'>;

/** Where the API is, as the app last applied its settings. */
export interface ApiServerState {
  running: boolean;
  port: number | null;
  /** Why it is not running although switched on (the port is taken...). */
  problem: string | null;
}

/**
 * Keeps the API server as the settings say: started when apiServer turns on (the settings store
 * gives it a key then), restarted when the port or key changes, stopped when it turns off.
 */
export class ApiServerSwitch {
  private server: ApiServer | null = null;
  private applied = '';
  private problem: string | null = null;
  private queue: Promise<void> = Promise.resolve();

  constructor(private readonly engine: ApiEngine) {}

  /** Applies `settings` after any apply still under way; resolves to the resulting state. */
  apply(settings: ApiSettings): Promise<ApiServerState> {
    this.queue = this.queue.then(() => this.switchTo(settings));
    return this.queue.then(() => this.state());
  }

  state(): ApiServerState {
    return { running: this.server !== null, port: this.server?.port ?? null, problem: this.problem };
  }

  /** Stops the server (the app quits). */
  close(): Promise<ApiServerState> {
    return this.apply({ apiServer: false, apiPort: 0, apiKey: '' });
  }

  private async switchTo(settings: ApiSettings): Promise<void> {
    const { apiKey } = settings;
    const wanted = settings.apiServer ? JSON.stringify([settings.apiPort, apiKey]) : '';
    if (wanted === this.applied && (this.server !== null) === settings.apiServer) return;
    await this.server?.close();
    this.server = null;
    this.applied = wanted;
    this.problem = null;
    if (!settings.apiServer) return;
    if (!apiKey) {
      this.problem = 'the API has no key (apiKey setting)';
      return;
    }
    try {
      this.server = await startApiServer({ engine: this.engine, port: settings.apiPort, apiKey });
    } catch (e) {
      this.problem = `the API could not listen on 127.0.0.1:${settings.apiPort}: ${(e as Error).message}`;
    }
  }
}
