// The engine worker's entry: owns the SQLite connection and the model, answers contract requests
// posted by its host and posts contract events back. Heavy work (parsing, prefill, decoding) runs
// here, never on the thread that drives the window or the HTTP bridge.
import { parentPort, workerData } from 'node:worker_threads';
import { QuireRequestError, type RequestFailure } from '../contract/types.ts';
import type { EngineWorkerData, FromWorker, ToWorker } from './messages.ts';
import { EngineService } from './service.ts';

const port = parentPort;
if (!port) throw new Error('engine-host/worker.ts runs as a worker thread');
const post = (m: FromWorker) => port.postMessage(m);

function failure(e: unknown): RequestFailure {
  if (e instanceof QuireRequestError) return { code: e.code, message: e.message };
  return { code: 'failed', message: (e as Error)?.message ?? String(e) };
}

let service: EngineService;
try {
  // the model loads in the background: the window's first requests (chats, folders) answer at once
  service = EngineService.open({
    ...(workerData as EngineWorkerData),
    emit: (name, payload) => post({ type: 'event', name, payload } as FromWorker),
  });
} catch (e) {
  post({ type: 'start-failed', message: (e as Error).message });
  process.exit(1);
}

port.on('message', (m: ToWorker) => {
  if (m.type === 'shutdown') {
    void service.close().finally(() => {
      post({ type: 'closed' });
      port.close();
    });
    return;
  }
  service.handle(m.name, m.args).then(
    (result) => post({ type: 'response', id: m.id, ok: true, result }),
    (e) => post({ type: 'response', id: m.id, ok: false, error: failure(e) }),
  );
});
post({ type: 'ready' });
