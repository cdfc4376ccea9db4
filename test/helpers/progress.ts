// Waiting on the engine service's folder.progress events, bounded so a test never hangs.
import type { FolderView } from '../../electron/contract/types.ts';

/** Resolves with the first event in `events` (kept growing by the caller) that satisfies `done`. */
export function untilProgress(events: readonly FolderView[], done: (v: FolderView) => boolean, ms = 30_000): Promise<FolderView> {
  return new Promise((resolve, reject) => {
    const started = Date.now();
    const tick = setInterval(() => {
      const hit = events.find(done);
      if (hit) {
        clearInterval(tick);
        resolve(hit);
      } else if (Date.now() - started > ms) {
        clearInterval(tick);
        reject(new Error(`no matching progress within ${ms} ms (last: ${JSON.stringify(events.at(-1))})`));
      }
    }, 20);
  });
}
