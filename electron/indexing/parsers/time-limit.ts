// Bounding a parser's run time. This bounds ASYNCHRONOUS work only: the timer fires when the
// parser yields to the event loop (pdfjs does, between its message-passing steps). A parser stuck
// in a synchronous loop blocks the timer too; bounding that needs the parse to run in a
// worker_thread or child process that is terminated on timeout (the engine process could host a
// small pool of such workers if real documents show synchronous hangs).

export class TimeLimitExceeded extends Error {
  constructor(readonly limitMs: number) {
    super(`timed out after ${limitMs / 1000} s`);
    this.name = 'TimeLimitExceeded';
  }
}

/**
 * Runs `work` with a signal that aborts at the limit; rejects with TimeLimitExceeded then, without
 * waiting for `work` (whose late result or error is ignored).
 */
export async function withTimeLimit<T>(limitMs: number, work: (signal: AbortSignal) => Promise<T>): Promise<T> {
  const controller = new AbortController();
  let timer: NodeJS.Timeout | undefined;
  const expired = new Promise<never>((_, reject) => {
    timer = setTimeout(() => {
      controller.abort();
      reject(new TimeLimitExceeded(limitMs));
    }, limitMs);
  });
  try {
    return await Promise.race([(async () => work(controller.signal))(), expired]);
  } finally {
    clearTimeout(timer);
  }
}
