// Messages between a host (Electron main or the serve bridge) and the engine worker, typed by the
// contract: requests carry a contract request name and its argument, events a contract event.
import type { ProviderChoice } from '../../native-models/provider-names.ts';
import type { AppHost, EventName, EventPayloads, RequestFailure, RequestName } from '../contract/types.ts';

export interface EngineWorkerData {
  dbPath: string;
  dataDir: string;
  modelDir?: string;
  /** Overrides of the saved settings for this run (quire serve --provider / --kv-budget), as modelDir is. */
  provider?: ProviderChoice;
  kvBudgetBytes?: number;
  host: AppHost;
  version?: string;
  /** Set by the host on a worker that replaces one that died: every folder is re-indexed (LibraryOptions). */
  reindexOnStart?: boolean;
}

export type ToWorker =
  | { type: 'request'; id: number; name: RequestName; args: unknown }
  | { type: 'shutdown' };

export type FromWorker =
  | { type: 'ready' }
  | { type: 'start-failed'; message: string }
  | { type: 'response'; id: number; ok: true; result: unknown }
  | { type: 'response'; id: number; ok: false; error: RequestFailure }
  | { [E in EventName]: { type: 'event'; name: E; payload: EventPayloads[E] } }[EventName]
  | { type: 'closed' };
