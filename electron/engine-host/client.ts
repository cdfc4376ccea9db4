// The host side of the engine worker: starts it, sends contract requests, fans out its events.
// Used by the Electron main process and by `quire serve`.
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
  /** Every event the worker posts. Returns the unsubscribe function. */
  onEvent(listener: <E extends EventName>(name: E, payload: EventPayloads[E]) => void): () => void;
  /** Stops the worker after its current database transaction and closes the database. */
  close(): Promise<void>;
}

export interface StartEngineOptions extends EngineWorkerData {
  /** The worker's entry; default: the tsx boot file next to this module. */
  workerUrl?: URL;
}

export async function startEngine(options: StartEngineOptions): Promise<EngineClient> {
  const { workerUrl = new URL('./worker-boot.mjs', import.meta.url), ...data } = options;
  const worker = new Worker(workerUrl, { workerData: data satisfies EngineWorkerData });
  const pending = new Map<number, { resolve: (v: unknown) => void; reject: (e: Error) => void }>();
  const listeners = new Set<(name: EventName, payload: unknown) => void>();
  let nextId = 1;
  let exited = false;
  let onClosed: (() => void) | null = null;

  await new Promise<void>((resolve, reject) => {
    const early = (m: FromWorker) => {
      if (m.type === 'ready') {
        worker.off('message', early);
        resolve();
      } else if (m.type === 'start-failed') reject(new Error(`the engine did not start: ${m.message}`));
    };
    worker.on('message', early);
    worker.once('error', reject);
    worker.once('exit', (code) => reject(new Error(`the engine exited while starting (code ${code})`)));
  });

  worker.on('message', (m: FromWorker) => {
    if (m.type === 'response') {
      const p = pending.get(m.id);
      pending.delete(m.id);
      if (!p) return;
      if (m.ok) p.resolve(m.result);
      else p.reject(new QuireRequestError(m.error.code, m.error.message));
    } else if (m.type === 'event') {
      for (const l of listeners) l(m.name, m.payload);
    } else if (m.type === 'closed') {
      onClosed?.();
    }
  });
  worker.on('exit', () => {
    exited = true;
    for (const p of pending.values()) p.reject(new QuireRequestError('unavailable', 'the engine stopped'));
    pending.clear();
    onClosed?.();
  });

  const post = (m: ToWorker) => worker.postMessage(m);

  return {
    request(name, args) {
      if (exited) return Promise.reject(new QuireRequestError('unavailable', 'the engine stopped'));
      const id = nextId++;
      return new Promise((resolve, reject) => {
        pending.set(id, { resolve: resolve as (v: unknown) => void, reject });
        post({ type: 'request', id, name, args });
      });
    },
    onEvent(listener) {
      const l = listener as (name: EventName, payload: unknown) => void;
      listeners.add(l);
      return () => listeners.delete(l);
    },
    async close() {
      if (exited) return;
      await new Promise<void>((resolve) => {
        const timer = setTimeout(() => void worker.terminate().then(() => resolve()), 30_000);
        onClosed = () => {
          clearTimeout(timer);
          resolve();
        };
        post({ type: 'shutdown' });
      });
      if (!exited) await worker.terminate();
    },
  };
}
