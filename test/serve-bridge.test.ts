// The serve bridge refuses what it must: no or wrong token (401), another origin or host (403),
// bodies the contract's schema rejects (400); and serves the typed API and its events otherwise.
import fs from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { EventName, EventPayloads, RequestName } from '../electron/contract/types.ts';
import { startBridge, type Bridge } from '../electron/serve/bridge.ts';
import { rawRequest, type RawRequest } from './helpers/http.ts';

let bridge: Bridge;
let staticDir: string;
const calls: { name: RequestName; args: unknown }[] = [];
let emit: (<E extends EventName>(name: E, payload: EventPayloads[E]) => void) | undefined;

beforeAll(async () => {
  staticDir = fs.mkdtempSync(path.join(os.tmpdir(), 'quire-static-'));
  fs.writeFileSync(path.join(staticDir, 'index.html'), '<!doctype html><title>Quire</title>');
  bridge = await startBridge({
    staticDir,
    engine: {
      async request(name, args) {
        calls.push({ name, args });
        return { echoed: name } as never;
      },
      onEvent(listener) {
        emit = listener;
        return () => (emit = undefined);
      },
    },
  });
});
afterAll(async () => {
  await bridge.close();
  fs.rmSync(staticDir, { recursive: true, force: true });
});

const call = (pathname: string, options?: RawRequest) => rawRequest(bridge.port, pathname, options);

const json = { 'Content-Type': 'application/json' };
const auth = () => ({ ...json, Authorization: `Bearer ${bridge.token}` });

describe('serve bridge', () => {
  it('binds to 127.0.0.1 and prints a URL with the token in the fragment', () => {
    expect(bridge.url).toBe(`http://127.0.0.1:${bridge.port}/#token=${bridge.token}`);
    expect(bridge.token).toMatch(/^[0-9a-f]{64}$/);
  });

  it('refuses requests without the token or with a wrong one (401)', async () => {
    const before = calls.length;
    expect((await call('/api/folders.list', { headers: json, body: '{}' })).status).toBe(401);
    expect((await call('/api/folders.list', { headers: { ...json, Authorization: 'Bearer nope' }, body: '{}' })).status).toBe(401);
    expect((await call(`/api/events`, { method: 'GET' })).status).toBe(401);
    expect((await call(`/api/events?token=wrong`, { method: 'GET' })).status).toBe(401);
    expect(calls.length).toBe(before);
  });

  it('refuses other origins and hosts even with the token (403)', async () => {
    const before = calls.length;
    expect((await call('/api/folders.list', { headers: { ...auth(), Origin: 'https://evil.example' }, body: '{}' })).status).toBe(403);
    expect((await call('/api/folders.list', { headers: { ...auth(), Origin: `http://127.0.0.1:${bridge.port + 1}` }, body: '{}' })).status).toBe(403);
    expect((await call('/api/folders.list', { headers: { ...auth(), Host: `evil.example:${bridge.port}` }, body: '{}' })).status).toBe(403);
    expect((await call('/', { method: 'GET', headers: { Host: 'rebound.example' } })).status).toBe(403);
    expect((await call('/api/folders.list', { headers: { ...auth(), 'Sec-Fetch-Site': 'cross-site' }, body: '{}' })).status).toBe(403);
    expect(calls.length).toBe(before);
  });

  it('validates every body with the contract schema (400) and knows only contract requests (404)', async () => {
    const before = calls.length;
    const bad = await call('/api/folders.remove', { headers: auth(), body: JSON.stringify({ folderId: 'one' }) });
    expect(bad.status).toBe(400);
    expect(JSON.parse(bad.body).error.code).toBe('invalid-arguments');
    expect((await call('/api/search', { headers: auth(), body: JSON.stringify({ query: 'x', extra: 1 }) })).status).toBe(400);
    expect((await call('/api/search', { headers: auth(), body: 'not json' })).status).toBe(400);
    expect((await call('/api/eval', { headers: auth(), body: '{}' })).status).toBe(404);
    expect((await call('/api/search', { headers: { Authorization: `Bearer ${bridge.token}`, 'Content-Type': 'text/plain' }, body: '{}' })).status).toBe(415);
    expect((await call('/api/search', { method: 'GET', headers: auth() })).status).toBe(405);
    expect(calls.length).toBe(before);
  });

  it('passes valid requests to the engine and answers host requests itself', async () => {
    const ok = await call('/api/search', { headers: { ...auth(), Origin: `http://localhost:${bridge.port}` }, body: JSON.stringify({ query: 'moon' }) });
    expect(ok.status).toBe(200);
    expect(JSON.parse(ok.body)).toEqual({ ok: true, result: { echoed: 'search' } });
    expect(calls.at(-1)).toEqual({ name: 'search', args: { query: 'moon' } });
    const pick = await call('/api/host.pickFolder', { headers: auth(), body: '{}' });
    expect(JSON.parse(pick.body).result).toEqual({ path: null });
  });

  it('streams events to a client with the token', async () => {
    const received = await new Promise<string>((resolve, reject) => {
      const req = http.get({ host: '127.0.0.1', port: bridge.port, path: `/api/events?token=${bridge.token}` }, (res) => {
        expect(res.headers['content-type']).toBe('text/event-stream');
        let data = '';
        res.on('data', (c) => {
          data += c;
          if (data.includes('event: answer.text')) {
            req.destroy();
            resolve(data);
          }
        });
        setTimeout(() => emit!('answer.text', { requestId: 'r1', text: 'Hello' }), 50);
      });
      req.on('error', (e) => (e.message.includes('socket hang up') ? undefined : reject(e)));
    });
    expect(received).toContain('data: {"requestId":"r1","text":"Hello"}');
  });

  it('serves the renderer with a strict CSP and never outside its folder', async () => {
    const page = await call('/', { method: 'GET' });
    expect(page.status).toBe(200);
    expect(page.body).toContain('<title>Quire</title>');
    const traversal = await call('/..%2F..%2Fetc%2Fpasswd', { method: 'GET' });
    expect([403, 404]).toContain(traversal.status);
    expect(traversal.body).not.toContain('root:');
  });

  it('answers malformed paths with 400 and no file paths, with or without the token', async () => {
    for (const bad of ['/%00', '/index.html%00.png', '/%E0%A4%A', '/%zz', '/assets/%C0%AE%C0%AE/x.js']) {
      for (const headers of [{}, { Authorization: `Bearer ${bridge.token}` }] as Record<string, string>[]) {
        const r = await call(bad, { method: 'GET', headers });
        expect(r.status, bad).toBe(400);
        expect(r.body, bad).not.toContain(staticDir);
        expect(r.body, bad).not.toMatch(/[/\\]tmp|ENOENT|ERR_/);
      }
    }
    const api = await call('/api/%E0%A4%A', { headers: auth(), body: '{}' });
    expect(api.status).toBe(400);
    expect(api.body).not.toContain(staticDir);
  });
});

describe('serve bridge: slow clients', () => {
  let slow: Bridge;
  beforeAll(async () => {
    slow = await startBridge({
      staticDir,
      engine: { request: async () => ({}) as never, onEvent: () => () => undefined },
      timeouts: { headersMs: 300, requestMs: 600 },
    });
  });
  afterAll(() => slow.close());

  /** Writes `request` on a raw connection and keeps it open; resolves with what the server sent once it closes. */
  const rawExchange = (request: string) =>
    new Promise<string>((resolve, reject) => {
      const socket = net.connect(slow.port, '127.0.0.1', () => socket.write(request));
      let received = '';
      socket.on('data', (d) => (received += d));
      socket.on('error', reject);
      socket.on('close', () => resolve(received));
    });

  it('cuts off a body that never finishes and headers that never end (408, connection closed)', async () => {
    const host = `Host: 127.0.0.1:${slow.port}\r\n`;
    const body = await rawExchange(
      `POST /api/search HTTP/1.1\r\n${host}Authorization: Bearer ${slow.token}\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{"query":`,
    );
    expect(body).toMatch(/^HTTP\/1\.1 408/);
    const headers = await rawExchange(`GET / HTTP/1.1\r\n${host}X-Slow: `);
    expect(headers).toMatch(/^HTTP\/1\.1 408/);
  });
});
