// One engine, one piece of work at a time: questions and background prefill are queued, never
// interleaved on the session. Questions go before queued prefill work; a task whose AbortSignal
// fires while it waits leaves the queue at once (its promise rejects with the signal's reason),
// and a running task sees the same signal and stops at its next step.

export type Priority = 'question' | 'background';

interface Task {
  run: () => Promise<unknown>;
  resolve: (value: unknown) => void;
  reject: (reason: unknown) => void;
  priority: Priority;
  signal?: AbortSignal;
  onAbort?: () => void;
}

export class EngineQueue {
  private readonly waiting: Task[] = [];
  private running = false;
  private idleWaiters: (() => void)[] = [];
  private readonly questionListeners = new Set<() => void>();

  /** Tasks waiting (not counting the one running). */
  get pending(): number {
    return this.waiting.length;
  }

  get busy(): boolean {
    return this.running;
  }

  /** Whether a question is waiting: background work checks this between steps and yields. */
  get questionWaiting(): boolean {
    return this.waiting.some((t) => t.priority === 'question');
  }

  /** Resolves when nothing runs and nothing waits (before an engine is released: no task may still use it). */
  idle(): Promise<void> {
    if (!this.running && this.waiting.length === 0) return Promise.resolve();
    return new Promise((resolve) => this.idleWaiters.push(resolve));
  }

  /**
   * Calls `listener` whenever a question is queued (work that can stop early, as a prepared question
   * does, gives way at once instead of between steps). Returns the unsubscribe function.
   */
  onQuestionQueued(listener: () => void): () => void {
    this.questionListeners.add(listener);
    return () => void this.questionListeners.delete(listener);
  }

  run<T>(fn: () => Promise<T>, options: { priority?: Priority; signal?: AbortSignal } = {}): Promise<T> {
    const { signal } = options;
    if (signal?.aborted) return Promise.reject(signal.reason);
    return new Promise<T>((resolve, reject) => {
      const task: Task = {
        run: fn,
        resolve: resolve as (v: unknown) => void,
        reject,
        priority: options.priority ?? 'question',
        signal,
      };
      if (signal) {
        task.onAbort = () => {
          const at = this.waiting.indexOf(task);
          if (at >= 0) {
            this.waiting.splice(at, 1);
            reject(signal.reason);
          }
        };
        signal.addEventListener('abort', task.onAbort, { once: true });
      }
      // questions before background work, first come first served within a priority
      const at = task.priority === 'question' ? this.waiting.findIndex((t) => t.priority === 'background') : -1;
      if (at >= 0) this.waiting.splice(at, 0, task);
      else this.waiting.push(task);
      if (task.priority === 'question') for (const listener of [...this.questionListeners]) listener();
      this.pump();
    });
  }

  private pump(): void {
    if (this.running) return;
    const task = this.waiting.shift();
    if (!task) {
      for (const resolve of this.idleWaiters.splice(0)) resolve();
      return;
    }
    this.running = true;
    void (async () => {
      try {
        task.signal?.throwIfAborted();
        task.resolve(await task.run());
      } catch (e) {
        task.reject(e);
      } finally {
        if (task.onAbort) task.signal?.removeEventListener('abort', task.onAbort);
        this.running = false;
        this.pump();
      }
    })();
  }
}
