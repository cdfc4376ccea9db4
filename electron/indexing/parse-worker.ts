// The parse process's entry (started by parse-process.ts with child_process.fork): parses the
// files its host sends, one at a time, and answers each with a ParseResult. Bundled as
// parse-worker.mjs into dist/cli and dist/electron; run from source through parse-worker-boot.mjs.
import { Worker } from 'node:worker_threads';
import { parseBytes, type ParseOptions, type ParseResult } from './parsers/index.ts';
import { failed } from './parsers/types.ts';

export interface ParseRequest {
  id: number;
  bytes: Uint8Array;
  fileName: string;
  options: ParseOptions;
  /** The host's wall-clock limit for this parse; the watchdog enforces it too, a little later. */
  timeoutMs: number;
}

/** Past the host's limit, the watchdog ends the process itself (its host may be gone or stuck). */
const WATCHDOG_GRACE_MS = 5000;

export type ParseReply = { type: 'ready' } | { type: 'result'; id: number; result: ParseResult };

const send = process.send?.bind(process);
if (!send) throw new Error('parse-worker runs as a child process started with an IPC channel');

// A thread of its own watches what the main thread, busy in a parser's synchronous loop, cannot:
// the resident size (the heap cap does not count buffers, and pdf.js inflates streams into typed
// arrays), the current parse's deadline (shared memory, written before each parse), and the host
// (a host killed with -9, or a host thread that died, must not leave a parser spinning forever).
// It writes the reason straight to fd 2 and kills the process.
const rssLimitMb = Number(process.env.QUIRE_PARSE_RSS_LIMIT_MB) || 0;
/** [0]: the epoch ms past which the current parse is killed; 0 while idle. */
const deadline = new Float64Array(new SharedArrayBuffer(8));
const watchdog = new Worker(
  `const fs = require('node:fs');
   const { rssLimit, hostPid, deadline } = require('node:worker_threads').workerData;
   const stop = (why) => {
     fs.writeSync(2, 'quire-parse: ' + why + '\\n');
     process.kill(process.pid, 'SIGKILL');
   };
   setInterval(() => {
     const rss = process.memoryUsage.rss();
     if (rssLimit > 0 && rss > rssLimit) stop('memory limit (' + Math.round(rss / 1048576) + ' MB resident)');
     if (deadline[0] > 0 && Date.now() > deadline[0]) stop('time limit');
     try {
       process.kill(hostPid, 0);
     } catch (error) {
       if (error.code === 'ESRCH') stop('host gone');
     }
   }, 100);`,
  { eval: true, workerData: { rssLimit: rssLimitMb * 1024 * 1024, hostPid: process.ppid, deadline } },
);
watchdog.unref();

let chain: Promise<unknown> = Promise.resolve();
process.on('message', (request: ParseRequest) => {
  chain = chain.then(async () => {
    let result: ParseResult;
    deadline[0] = Date.now() + request.timeoutMs + WATCHDOG_GRACE_MS;
    try {
      result = await parseBytes(request.bytes, request.fileName, request.options);
    } catch (error) {
      result = failed(`parser error: ${(error as Error)?.message ?? String(error)}`); // parseBytes catches; this is a last resort
    } finally {
      deadline[0] = 0;
    }
    send({ type: 'result', id: request.id, result } satisfies ParseReply);
  });
});
// the host is gone (or closed the channel): nothing left to do
process.on('disconnect', () => process.exit(0));
send({ type: 'ready' } satisfies ParseReply);
