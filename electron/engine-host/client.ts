// The host side of the engine worker: starts it, sends contract requests, fans out its events.
// Used by the Electron main process and by `quire serve`.
//
// A worker that dies (out of memory, an uncaught error) is restarted: the requests it held fail
// with the reason, the reason is logged and sent to the window as 'engine.stopped', requests made
// meanwhile wait for the new worker, and the new worker is started with `reindexOnStart`, so its
// library service re-indexes every folder and a run the crash cut short finishes (indexing is
// incremental: unchanged files cost a stat). A worker that keeps dying is given up on after a few
// restarts a minute.
import { Worker } from 'node:worker_threads';
import {
  QuireRequestError,
  type EventName,
  type EventPayloads,
  type RequestArgs,
  type RequestName,
  type RequestResults,
} from '../contract/types.ts';
import type { EngineWorkerData, FromWorker, ToWorker } from './messages.ts';

export interface EngineClient {
  request<N extends RequestName>(name: N, args: RequestArgs<N>): Promise<RequestResults[N]>;
  /** Every event the worker posts, and 'engine.stopped' from the host. Returns the unsubscribe function. */
  onEvent(listener: <E extends EventName>(name: E, payload: EventPayloads[E]) => void): () => void;
  /** Stops the worker after its current database transaction and closes the database. */
  close(): Promise<void>;
}

export interface StartEngineOptions extends Omit<EngineWorkerData, 'reindexOnStart'> {
  /** The worker's entry; default: the tsx boot file next to this module. */
  workerUrl?: URL;
  /** Where the host says why its worker stopped (default: stderr). */
  log?: (line: string) => void;
  /** Restarts allowed within a minute before the host gives up (default 3). */
  maxRestartsPerMinute?: number;
}

type Listener = (name: EventName, payload: unknown) => void;

export async function startEngine(options: StartEngineOptions): Promise<EngineClient> {
  const {
    workerUrl = new URL('./worker-boot.mjs', import.meta.url),
    log = (line: string) => void process.stderr.write(`${line}\n`),
    maxRestartsPerMinute = 3,
    ...data
  } = options;
  const pending = new Map<number, { resolve: (v: unknown) => void; reject: (e: Error) => void }>();
  const listeners = new Set<Listener>();
  const restarts: number[] = [];
  let nextId = 1;
  let worker: Worker;
  /** Set while a dead worker is being replaced; requests wait for it. */
  let restarting: Promise<void> | null = null;
  /** Why the engine is gone for good (closed, or given up on); requests fail with it. */
  let stopped: string | null = null;
  let closing = false;
  let onClosed: (() => void) | null = null;

  const emit = <E extends EventName>(name: E, payload: EventPayloads[E]) => {
    for (const l of listeners) l(name, payload);
  };

  /**
   * A started worker (resolves once it is ready), wired to this client. `reindexOnStart` for one
   * that replaces a dead worker; its progress events may come before 'ready', so they are wired first.
   */
  const spawn = async (reindexOnStart: boolean): Promise<Worker> => {
    const w = new Worker(workerUrl, { workerData: { ...data, reindexOnStart } satisfies EngineWorkerData });
    let lastError: Error | null = null;
    w.on('error', (e) => (lastError = e));
    w.on('message', (m: FromWorker) => {
      if (m.type === 'response') {
        const p = pending.get(m.id);
        pending.delete(m.id);
        if (!p) return;
        if (m.ok) p.resolve(m.result);
        else p.reject(new QuireRequestError(m.error.code, m.error.message));
      } else if (m.type === 'event') {
        emit(m.name, m.payload as never);
      } else if (m.type === 'closed') {
        onClosed?.();
      }
    });
    w.on('exit', (code) => {
      if (w !== worker) return;
      if (closing) {
        stopped = 'the engine stopped';
        failPending(stopped);
        onClosed?.();
        return;
      }
      void recover(stopReason(code, lastError));
    });
    await new Promise<void>((resolve, reject) => {
      const early = (m: FromWorker) => {
        if (m.type === 'ready') {
          w.off('message', early);
          resolve();
        } else if (m.type === 'start-failed') reject(new Error(`the engine did not start: ${m.message}`));
      };
      w.on('message', early);
      w.once('error', reject);
      w.once('exit', (code) => reject(new Error(`the engine exited while starting (code ${code})`)));
    });
    return w;
  };

  const failPending = (message: string) => {
    for (const p of pending.values()) p.reject(new QuireRequestError('unavailable', message));
    pending.clear();
  };

  const recover = async (reason: string) => {
    failPending(`the engine stopped (${reason}); it is being restarted`);
    const now = Date.now();
    while (restarts.length > 0 && now - restarts[0] > 60_000) restarts.shift();
    if (restarts.length >= maxRestartsPerMinute) {
      stopped = `the engine stopped (${reason}) ${restarts.length + 1} times within a minute; restart Quire`;
      log(`quire: ${stopped}`);
      emit('engine.stopped', { reason, restarted: false });
      return;
    }
    restarts.push(now);
    log(`quire: the engine stopped (${reason}); restarting it`);
    restarting = (async () => {
      try {
        worker = await spawn(true);
      } catch (e) {
        stopped = `the engine stopped (${reason}) and did not restart: ${(e as Error).message}`;
        log(`quire: ${stopped}`);
        emit('engine.stopped', { reason, restarted: false });
        return;
      }
      emit('engine.stopped', { reason, restarted: true });
    })();
    await restarting;
    restarting = null;
  };

  worker = await spawn(false);

  return {
    async request(name, args) {
      if (restarting) await restarting;
      if (stopped) throw new QuireRequestError('unavailable', stopped);
      const id = nextId++;
      return await new Promise((resolve, reject) => {
        pending.set(id, { resolve: resolve as (v: unknown) => void, reject });
        worker.postMessage({ type: 'request', id, name, args } satisfies ToWorker);
      });
    },
    onEvent(listener) {
      const l = listener as Listener;
      listeners.add(l);
      return () => listeners.delete(l);
    },
    async close() {
      if (restarting) await restarting;
      if (stopped) return;
      closing = true;
      const current = worker;
      await new Promise<void>((resolve) => {
        const timer = setTimeout(() => void current.terminate().then(() => resolve()), 30_000);
        onClosed = () => {
          clearTimeout(timer);
          resolve();
        };
        current.postMessage({ type: 'shutdown' } satisfies ToWorker);
      });
      stopped = 'the engine stopped';
      await current.terminate();
    },
  };
}

/** Why a worker exited, in words for the log and the window. */
function stopReason(code: number, error: Error | null): string {
  const errorCode = (error as NodeJS.ErrnoException | null)?.code;
  if (errorCode === 'ERR_WORKER_OUT_OF_MEMORY') return 'it ran out of memory';
  if (error) return `an error it did not handle: ${error.message}`;
  return `it exited with code ${code}`;
}
