// The serve bridge: the renderer's typed API over HTTP, for a browser on the same machine.
// Bound to 127.0.0.1 only; every API call needs the per-run token (Authorization: Bearer, or
// ?token= for the event stream, which EventSource cannot give headers); requests whose Host or
// Origin is not this server are refused (DNS rebinding, other sites); every body is validated with
// the contract's schema before it reaches the engine. With `api`, the same server answers the
// OpenAI-compatible API under /v1 (openai-api.ts: its own key, the same Host/Origin rules). A
// malformed path is a 400 that names no file, an error nobody foresaw a 500 that says nothing about
// the machine, and a client that sends its headers or body too slowly is cut off (408) instead of
// holding a connection for minutes.
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import { parseRequest } from '../contract/schemas.ts';
import {
  EVENT_NAMES,
  isHostRequest,
  isRequestName,
  isWindowEvent,
  QuireRequestError,
  type EventName,
  type EventPayloads,
  type HostRequestName,
  type RequestArgs,
  type RequestName,
  type RequestResults,
} from '../contract/types.ts';
import { RENDERER_CSP } from '../window-options.ts';
import { bearerToken, foreignRequest, sameSecret } from './local-access.ts';
import type { OpenAiApi } from './openai-api.ts';

export interface BridgeEngine {
  request<N extends RequestName>(name: N, args: RequestArgs<N>): Promise<RequestResults[N]>;
  onEvent(listener: <E extends EventName>(name: E, payload: EventPayloads[E]) => void): () => void;
}

export interface BridgeOptions {
  engine: BridgeEngine;
  /** The built renderer (index.html and assets). */
  staticDir: string;
  /** 0 (default): any free port. */
  port?: number;
  /** Default: 32 random bytes, hex. */
  token?: string;
  /** The OpenAI-compatible API, served under /v1. */
  api?: OpenAiApi;
  /** How long a client may take to send its headers, and its whole request (default 10 s and 30 s). */
  timeouts?: { headersMs: number; requestMs: number };
}

export interface Bridge {
  port: number;
  token: string;
  /** Where a browser opens the app: the token travels in the fragment, never to the server's logs. */
  url: string;
  close(): Promise<void>;
}

const MAX_BODY_BYTES = 1024 * 1024;
const DEFAULT_TIMEOUTS = { headersMs: 10_000, requestMs: 30_000 };
const MIME: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.mjs': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.svg': 'image/svg+xml',
  '.png': 'image/png',
  '.ico': 'image/x-icon',
  '.json': 'application/json',
  '.woff2': 'font/woff2',
};

function send(res: http.ServerResponse, status: number, body: unknown): void {
  const json = JSON.stringify(body);
  res.writeHead(status, { 'Content-Type': 'application/json; charset=utf-8', 'Cache-Control': 'no-store' });
  res.end(json);
}

const failStatus: Record<QuireRequestError['code'], number> = {
  'invalid-arguments': 400,
  'unknown-request': 404,
  unavailable: 503,
  failed: 500,
};

async function readBody(req: http.IncomingMessage): Promise<string> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req) {
    size += (chunk as Buffer).length;
    if (size > MAX_BODY_BYTES) throw new QuireRequestError('invalid-arguments', 'request body too large');
    chunks.push(chunk as Buffer);
  }
  return Buffer.concat(chunks).toString('utf8');
}

/** A percent-encoded path segment decoded, or null when it is malformed or holds a NUL. */
function decodePath(encoded: string): string | null {
  let decoded: string;
  try {
    decoded = decodeURIComponent(encoded);
  } catch {
    return null; // malformed percent-encoding
  }
  return decoded.includes('\0') ? null : decoded;
}

/** Answers the contract's host requests the way a browser host can. */
function hostRequest(name: HostRequestName): RequestResults[HostRequestName] {
  if (name === 'host.pickFolder') return { path: null };
  return { opened: false, reason: 'serve mode cannot open files with the OS; open it from your file manager' };
}

export async function startBridge(options: BridgeOptions): Promise<Bridge> {
  const token = options.token ?? randomBytes(32).toString('hex');
  const staticRoot = path.resolve(options.staticDir);
  const clients = new Set<http.ServerResponse>();
  let port = 0;

  const unsubscribe = options.engine.onEvent((name, payload) => {
    if (!isWindowEvent(name)) return;
    const frame = `event: ${name}\ndata: ${JSON.stringify(payload)}\n\n`;
    for (const c of clients) c.write(frame);
  });

  const serveStatic = (pathname: string, res: http.ServerResponse) => {
    const decoded = decodePath(pathname);
    if (decoded === null) return send(res, 400, { error: 'bad path' });
    const rel = pathname === '/' ? 'index.html' : decoded.replace(/^\/+/, '');
    const file = path.resolve(staticRoot, rel);
    if (file !== staticRoot && !file.startsWith(staticRoot + path.sep)) return send(res, 403, { error: 'forbidden' });
    fs.readFile(file, (err, data) => {
      if (err) {
        if (!fs.existsSync(path.join(staticRoot, 'index.html'))) {
          res.writeHead(503, { 'Content-Type': 'text/plain; charset=utf-8' });
          return res.end('The renderer is not built: run "npm run build:renderer".\n');
        }
        return send(res, 404, { error: 'not found' });
      }
      res.writeHead(200, {
        'Content-Type': MIME[path.extname(file)] ?? 'application/octet-stream',
        'Content-Security-Policy': RENDERER_CSP,
        'X-Content-Type-Options': 'nosniff',
        'Referrer-Policy': 'no-referrer',
        'X-Frame-Options': 'DENY',
        'Cache-Control': 'no-store',
      });
      res.end(data);
    });
  };

  const timeouts = options.timeouts ?? DEFAULT_TIMEOUTS;
  const serverOptions: http.ServerOptions = {
    headersTimeout: timeouts.headersMs,
    requestTimeout: timeouts.requestMs,
    // how often Node looks for connections past those limits (its default is 30 s)
    connectionsCheckingInterval: Math.min(1000, Math.ceil(timeouts.headersMs / 4)),
  };
  const server = http.createServer(serverOptions, (req, res) => {
    void (async () => {
      if (options.api?.owns(req.url)) return options.api.handle(req, res, port);
      const refused = foreignRequest(req, port);
      if (refused) return send(res, 403, { error: refused });

      let url: URL;
      try {
        url = new URL(req.url ?? '/', `http://127.0.0.1:${port}`);
      } catch {
        return send(res, 400, { error: 'bad path' });
      }
      if (!url.pathname.startsWith('/api/')) {
        if (req.method !== 'GET' && req.method !== 'HEAD') return send(res, 405, { error: 'method not allowed' });
        return serveStatic(url.pathname, res);
      }

      if (url.pathname === '/api/events') {
        if (req.method !== 'GET') return send(res, 405, { error: 'method not allowed' });
        if (!sameSecret(url.searchParams.get('token'), token)) return send(res, 401, { error: 'missing or wrong token' });
        res.writeHead(200, { 'Content-Type': 'text/event-stream', 'Cache-Control': 'no-store', Connection: 'keep-alive' });
        res.write(`: quire events (${EVENT_NAMES.join(', ')})\n\n`);
        clients.add(res);
        const ping = setInterval(() => res.write(': ping\n\n'), 15_000);
        req.on('close', () => {
          clearInterval(ping);
          clients.delete(res);
        });
        return;
      }

      if (!sameSecret(bearerToken(req), token)) return send(res, 401, { error: 'missing or wrong token' });
      if (req.method !== 'POST') return send(res, 405, { error: 'method not allowed' });
      if (!(req.headers['content-type'] ?? '').startsWith('application/json')) {
        return send(res, 415, { error: 'content-type must be application/json' });
      }
      const name = decodePath(url.pathname.slice('/api/'.length));
      if (name === null) return send(res, 400, { ok: false, error: { code: 'invalid-arguments', message: 'bad request name' } });
      if (!isRequestName(name)) return send(res, 404, { ok: false, error: { code: 'unknown-request', message: `no request "${name}"` } });
      try {
        let body: unknown;
        try {
          const raw = await readBody(req);
          body = raw.trim() === '' ? {} : JSON.parse(raw);
        } catch (e) {
          throw e instanceof QuireRequestError ? e : new QuireRequestError('invalid-arguments', 'the body is not JSON');
        }
        const args = parseRequest(name, body);
        const result = isHostRequest(name) ? hostRequest(name) : await options.engine.request(name, args);
        send(res, 200, { ok: true, result });
      } catch (e) {
        const err = e instanceof QuireRequestError ? e : new QuireRequestError('failed', (e as Error).message);
        send(res, failStatus[err.code], { ok: false, error: { code: err.code, message: err.message } });
      }
    })().catch(() => {
      // nothing foreseen failed: say nothing of paths or internals (the request may not even be authenticated)
      if (!res.headersSent) send(res, 500, { ok: false, error: { code: 'failed', message: 'internal error' } });
      else res.destroy();
    });
  });

  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port ?? 0, '127.0.0.1', () => resolve());
  });
  port = (server.address() as { port: number }).port;

  return {
    port,
    token,
    url: `http://127.0.0.1:${port}/#token=${token}`,
    async close() {
      unsubscribe();
      for (const c of clients) c.end();
      clients.clear();
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
