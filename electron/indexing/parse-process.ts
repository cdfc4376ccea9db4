// Parsing untrusted files in a separate Node process, so that a parser that hangs or exhausts
// memory takes down only that process: the host kills it at the wall-clock limit (its own timer,
// which a busy parser cannot block), V8 stops it at the heap cap (--max-old-space-size), and a
// watchdog thread inside it stops it when its resident memory (heap plus the buffers a heap cap
// does not count) passes the limit, when a parse runs 5 s past the host's limit (a host that is
// gone or blocked cannot kill it), or when the host process is gone. The file that killed it fails with the reason, the next file
// gets a fresh process, and the indexer's thread keeps serving searches meanwhile.
//
// The process is started on the first parse and kept for the next ones; while idle it holds
// nothing open that keeps its host alive, so `quire index` exits when its work is done.
import { fork, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import { fileURLToPath } from 'node:url';
import { type ParseOptions, type ParseResult } from './parsers/index.ts';
import { failed } from './parsers/types.ts';
import type { ParseReply, ParseRequest } from './parse-worker.ts';

export const DEFAULT_PARSE_TIMEOUT_MS = 30_000;
/** V8 heap cap of the parse process; its resident memory may reach twice this. */
export const DEFAULT_PARSE_MEMORY_MB = 1024;
/** How long a fresh process may take to load before a parse counts as failed. */
const START_TIMEOUT_MS = 60_000;
/** What the watchdog (parse-worker.ts) or V8 writes to stderr when memory runs out. */
const OUT_OF_MEMORY = /heap out of memory|Reached heap limit|quire-parse: memory limit/;
/** What the watchdog writes when a parse passed its deadline while the host could not act. */
const OUT_OF_TIME = /quire-parse: time limit/;

export interface ParseProcessOptions {
  /** V8 heap cap in MB (default 1024); resident memory is capped at twice this. */
  memoryMb?: number;
  /** The process's entry; default: parse-worker.mjs bundled next to this code, else the tsx boot file. */
  workerPath?: string;
}

export interface ProcessParseOptions extends ParseOptions {
  /** Wall-clock limit of this parse (default 30 s); the process is killed when it passes. */
  timeoutMs?: number;
}

interface Running {
  id: number;
  resolve: (result: ParseResult) => void;
  timer: NodeJS.Timeout;
  timeoutMs: number;
}

export class ParseProcess {
  private child: ChildProcess | null = null;
  private ready: Promise<void> | null = null;
  private running: Running | null = null;
  private queue: Promise<unknown> = Promise.resolve();
  private nextId = 1;
  private stderrTail = '';
  private closed = false;
  /** Processes started so far (a restart after a kill counts). */
  starts = 0;

  constructor(private readonly options: ParseProcessOptions = {}) {}

  get memoryMb(): number {
    return this.options.memoryMb ?? DEFAULT_PARSE_MEMORY_MB;
  }

  /** Parses one file's bytes in the process; never throws (every failure is a result). */
  parse(bytes: Uint8Array, fileName: string, options: ProcessParseOptions = {}): Promise<ParseResult> {
    const work = this.queue.then(() => this.parseNow(bytes, fileName, options));
    this.queue = work.catch(() => undefined);
    return work;
  }

  private async parseNow(bytes: Uint8Array, fileName: string, options: ProcessParseOptions): Promise<ParseResult> {
    if (this.closed) return failed('indexing stopped');
    const timeoutMs = options.timeoutMs ?? DEFAULT_PARSE_TIMEOUT_MS;
    try {
      await this.start();
    } catch (error) {
      return failed(`the parse process did not start: ${(error as Error).message}`);
    }
    const child = this.child!;
    this.hold(child, true);
    const id = this.nextId++;
    const { timeoutMs: _, ...parseOptions } = options;
    return new Promise<ParseResult>((resolve) => {
      const timer = setTimeout(() => {
        this.finish(id, failed(`took longer than ${formatSeconds(timeoutMs)}`));
        this.kill(child);
      }, timeoutMs);
      this.running = { id, resolve, timer, timeoutMs };
      const request: ParseRequest = { id, bytes, fileName, options: parseOptions, timeoutMs };
      child.send(request, (error) => {
        if (error) this.finish(id, failed(`the parse process did not take the file: ${error.message}`));
      });
    });
  }

  /** Settles the running parse `id` once (a late reply or exit after a kill is ignored). */
  private finish(id: number, result: ParseResult): void {
    const running = this.running;
    if (!running || running.id !== id) return;
    clearTimeout(running.timer);
    this.running = null;
    if (this.child) this.hold(this.child, false);
    running.resolve(result);
  }

  private start(): Promise<void> {
    if (this.ready) return this.ready;
    const child = fork(this.options.workerPath ?? defaultWorkerPath(), [], {
      // the host's own flags (a TypeScript loader, inspector) are not the parser's business
      execArgv: [`--max-old-space-size=${this.memoryMb}`],
      env: { ...process.env, QUIRE_PARSE_RSS_LIMIT_MB: String(this.memoryMb * 2) },
      serialization: 'advanced', // file bytes travel as a Uint8Array, not as JSON
      stdio: ['ignore', 'ignore', 'pipe', 'ipc'],
    });
    this.child = child;
    this.starts++;
    this.stderrTail = '';
    child.stderr!.setEncoding('utf8');
    child.stderr!.on('data', (chunk: string) => {
      this.stderrTail = (this.stderrTail + chunk).slice(-4096);
    });
    child.on('message', (m: ParseReply) => {
      if (m.type === 'result') this.finish(m.id, m.result);
    });
    const ready = new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => {
        reject(new Error(`not ready after ${formatSeconds(START_TIMEOUT_MS)}`));
        this.kill(child);
      }, START_TIMEOUT_MS);
      const onReady = (m: ParseReply) => {
        if (m.type !== 'ready') return;
        clearTimeout(timer);
        child.off('message', onReady);
        resolve();
      };
      child.on('message', onReady);
      child.once('error', (error) => {
        clearTimeout(timer);
        reject(error);
      });
      child.once('exit', (code, signal) => {
        clearTimeout(timer);
        reject(new Error(this.exitReason(code, signal)));
      });
    });
    child.once('exit', (code, signal) => {
      if (this.child === child) {
        this.child = null;
        this.ready = null;
      }
      if (this.running) this.finish(this.running.id, failed(this.exitReason(code, signal)));
    });
    child.on('error', () => undefined); // a failed send or kill is reported through exit
    this.ready = ready;
    ready.catch(() => {
      if (this.child === child) this.kill(child);
    });
    return ready;
  }

  private exitReason(code: number | null, signal: NodeJS.Signals | null): string {
    if (OUT_OF_MEMORY.test(this.stderrTail)) return 'parser ran out of memory';
    if (OUT_OF_TIME.test(this.stderrTail) && this.running) return `took longer than ${formatSeconds(this.running.timeoutMs)}`;
    if (signal) return `parser crashed (${signal})`;
    return `parser exited with code ${code}`;
  }

  /** While idle the process must not keep its host alive (`quire index` exits when done). */
  private hold(child: ChildProcess, busy: boolean): void {
    if (busy) {
      child.ref();
      child.channel?.ref();
      (child.stderr as unknown as { ref?: () => void } | null)?.ref?.();
    } else {
      child.unref();
      child.channel?.unref();
      (child.stderr as unknown as { unref?: () => void } | null)?.unref?.();
    }
  }

  private kill(child: ChildProcess): void {
    if (this.child === child) {
      this.child = null;
      this.ready = null;
    }
    child.kill('SIGKILL');
  }

  /** Ends the process; parses still queued fail with "indexing stopped". */
  async close(): Promise<void> {
    this.closed = true;
    const child = this.child;
    if (this.running) this.finish(this.running.id, failed('indexing stopped'));
    if (!child) return;
    const exited = new Promise((resolve) => child.once('exit', resolve));
    child.ref(); // an idle process is unref'd: without this the host could exit before the exit event
    this.kill(child);
    await exited;
  }
}

let shared: ParseProcess | null = null;

/** The process's default parse process (default limits), started on first use. */
export function sharedParseProcess(): ParseProcess {
  shared ??= new ParseProcess();
  return shared;
}

/** The bundled worker (dist/cli, dist/electron) when this code is bundled, else the source's tsx boot file. */
function defaultWorkerPath(): string {
  const bundled = fileURLToPath(new URL('./parse-worker.mjs', import.meta.url));
  return fs.existsSync(bundled) ? bundled : fileURLToPath(new URL('./parse-worker-boot.mjs', import.meta.url));
}

function formatSeconds(ms: number): string {
  if (ms < 1000) return `${ms} ms`;
  return `${ms % 1000 === 0 ? ms / 1000 : (ms / 1000).toFixed(1)} s`;
}
