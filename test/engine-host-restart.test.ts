// The engine host brings a dead engine worker back (real worker threads; the worker is a small
// stand-in that dies on request, test/fixtures/engine-worker-crashy.mjs): the request it held fails
// with the reason, the reason is logged and sent as 'engine.stopped', later requests reach the new
// worker, which is started to re-index every folder (the library service does that: see
// engine-host-library.test.ts), and a worker that keeps dying is given up on.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { EventName, EventPayloads } from '../electron/contract/types.ts';
import { startEngine, type EngineClient } from '../electron/engine-host/client.ts';

const workerUrl = new URL('./fixtures/engine-worker-crashy.mjs', import.meta.url);
let dataDir: string;
let engine: EngineClient | null = null;
let logged: string[];
let stops: EventPayloads['engine.stopped'][];

const state = () => JSON.parse(fs.readFileSync(path.join(dataDir, 'crashy.json'), 'utf8')) as { starts: number; reindexOnStart: boolean[] };

async function start(maxRestartsPerMinute?: number): Promise<EngineClient> {
  engine = await startEngine({ dbPath: path.join(dataDir, 'x.db'), dataDir, host: 'serve', workerUrl, log: (l) => logged.push(l), maxRestartsPerMinute });
  engine.onEvent(<E extends EventName>(name: E, payload: EventPayloads[E]) => {
    if (name === 'engine.stopped') stops.push(payload as EventPayloads['engine.stopped']);
  });
  return engine;
}

/** Polls until `check` holds (bounded by the test's timeout, never by a time assertion). */
async function until(check: () => boolean): Promise<void> {
  while (!check()) await new Promise((r) => setTimeout(r, 20));
}

beforeEach(() => {
  dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'quire-restart-'));
  logged = [];
  stops = [];
});
afterEach(async () => {
  await engine?.close();
  engine = null;
  fs.rmSync(dataDir, { recursive: true, force: true });
});

describe('engine worker restart', () => {
  it('fails the held request with the reason, logs it, tells the window, restarts it to re-index every folder', async () => {
    const client = await start();
    const held = client.request('search', { query: 'hang' });
    await expect(client.request('search', { query: 'exit' })).rejects.toMatchObject({
      code: 'unavailable',
      message: 'the engine stopped (it exited with code 3); it is being restarted',
    });
    await expect(held).rejects.toMatchObject({ code: 'unavailable' });
    // a request made during the restart waits for the new worker
    expect(await client.request('search', { query: 'anything' })).toEqual({ starts: 2 });
    expect(stops).toEqual([{ reason: 'it exited with code 3', restarted: true }]);
    expect(logged).toEqual(['quire: the engine stopped (it exited with code 3); restarting it']);
    // the first worker indexes as asked; its replacement re-indexes every folder
    expect(state().reindexOnStart).toEqual([false, true]);

    await expect(client.request('search', { query: 'throw' })).rejects.toThrow(/boom in the engine/);
    expect(await client.request('search', { query: 'again' })).toEqual({ starts: 3 });
    expect(stops.at(-1)).toEqual({ reason: 'an error it did not handle: boom in the engine', restarted: true });
    expect(state().reindexOnStart).toEqual([false, true, true]);
  });

  it('gives up on a worker that keeps dying, and says so', async () => {
    const client = await start(2);
    for (let i = 0; i < 2; i++) await expect(client.request('search', { query: 'exit' })).rejects.toThrow(/being restarted/);
    await expect(client.request('search', { query: 'exit' })).rejects.toThrow(/exited with code 3/);
    await until(() => stops.length === 3);
    expect(stops.map((s) => s.restarted)).toEqual([true, true, false]);
    await expect(client.request('search', { query: 'x' })).rejects.toMatchObject({
      code: 'unavailable',
      message: 'the engine stopped (it exited with code 3) 3 times within a minute; restart Quire',
    });
    expect(logged.at(-1)).toBe('quire: the engine stopped (it exited with code 3) 3 times within a minute; restart Quire');
  });

  it('reports a restart that fails to start the worker', async () => {
    const client = await start();
    fs.writeFileSync(path.join(dataDir, 'fail-restart'), '');
    await expect(client.request('search', { query: 'exit' })).rejects.toThrow(/being restarted/);
    await expect(client.request('search', { query: 'x' })).rejects.toThrow(
      'the engine stopped (it exited with code 3) and did not restart: the engine did not start: the database is locked by another program',
    );
    expect(stops).toEqual([{ reason: 'it exited with code 3', restarted: false }]);
  });
});
