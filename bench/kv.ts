// KV store benchmark: write and read throughput for 256-token blocks of the bench-shape model
// (Qwen2.5-0.5B: 24 layers, 2 KV heads, head dim 64, float16 = 3 MiB a block), and the time to
// load the 16 blocks (4K tokens) one question needs.
//
//   npx tsx bench/kv.ts [--blocks 32] [--runs 7] [--codec float16|int8-channel|int8-token] [--json]
//
// Synthetic random data (content does not matter: nothing is compressed). The database lives in
// a temp dir and is removed afterwards. Reads come from the OS page cache (the file was just
// written): that is the steady state of a desktop app re-asking over the same folders; a cold
// disk read adds the drive's own throughput on top.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { assembleBlocks } from '../native-models/assemble.ts';
import { kvShapeOf, type KvCache } from '../native-models/kv.ts';
import { ropeParamsFromConfig } from '../native-models/rope-config.ts';
import { benchSpec, specToHfConfig } from '../test/tools/tiny-model-spec.ts';
import { checksumOf } from '../db/checksum.ts';
import { decodeKv, encodeKv, type KvCodec } from '../db/kv-codec.ts';
import { tokenHash } from '../db/hash.ts';
import { KvStore, type KvKey } from '../db/kv-store.ts';
import { openDatabase } from '../db/open.ts';

const { values: args } = parseArgs({
  options: {
    blocks: { type: 'string', default: '32' },
    runs: { type: 'string', default: '7' },
    codec: { type: 'string', default: 'float16' },
    json: { type: 'boolean', default: false },
  },
});
const BLOCKS = Number(args.blocks);
const RUNS = Number(args.runs);
const CODEC = args.codec as KvCodec;
const QUESTION_BLOCKS = 16;
const SHAPE = { layers: 24, kvHeads: 2, headDim: 64, tokens: 256 };
const MIB = 1024 * 1024;

function randomBlock(seed: number): KvCache {
  let s = seed * 2654435761 + 1;
  const n = SHAPE.kvHeads * SHAPE.tokens * SHAPE.headDim;
  const tensor = () => {
    const t = new Uint16Array(n);
    for (let i = 0; i < n; i++) {
      s = (Math.imul(s, 1103515245) + 12345) >>> 0;
      // Values in about +-4, like real K/V: sign, exponent 10..16, random mantissa.
      t[i] = ((s >>> 31) << 15) | ((10 + ((s >>> 24) % 7)) << 10) | ((s >>> 8) & 0x3ff);
    }
    return t;
  };
  return {
    dtype: 'float16',
    ...SHAPE,
    keys: Array.from({ length: SHAPE.layers }, tensor),
    values: Array.from({ length: SHAPE.layers }, tensor),
  };
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const time = (f: () => void) => {
  const t0 = performance.now();
  f();
  return performance.now() - t0;
};

function lastBlockTtft4k(): number | undefined {
  try {
    const ttft = JSON.parse(fs.readFileSync('bench-output/ttft.json', 'utf8')) as { ttft: { promptTokens: number; blockMs: number }[] };
    return ttft.ttft.find((r) => r.promptTokens >= 4096)?.blockMs;
  } catch {
    return undefined;
  }
}

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'quire-bench-kv-'));
try {
  const db = openDatabase(path.join(dir, 'quire.db'));
  const store = new KvStore(db, { codec: CODEC });
  const caches = Array.from({ length: BLOCKS }, (_, i) => randomBlock(i + 1));
  const keys: KvKey[] = caches.map((_, i) => ({ modelFingerprint: 'bench', tokenHash: tokenHash([i]) }));
  const blobBytes = encodeKv(caches[0], CODEC).byteLength;

  // Pieces of the path, per block, median of RUNS.
  const blob = encodeKv(caches[0], CODEC);
  const encodeMs = median(Array.from({ length: RUNS }, () => time(() => encodeKv(caches[0], CODEC))));
  const checksumMs = median(Array.from({ length: RUNS }, () => time(() => checksumOf(blob))));
  const decodeMs = median(Array.from({ length: RUNS }, () => time(() => decodeKv(blob))));

  const writeMs = time(() => caches.forEach((kv, i) => store.put(keys[i], kv)));
  db.pragma('wal_checkpoint(TRUNCATE)'); // reads below come from the main file, as they will later
  const readMs = median(
    Array.from({ length: 3 }, () =>
      time(() => {
        for (const k of keys) if (store.get(k).status !== 'hit') throw new Error('bench: expected a hit'); // one commit each
      }),
    ),
  );

  // One question: 16 blocks from anywhere in the store in one getMany (one commit), then laid end to end.
  let loaded: KvCache[] = [];
  const loadRuns: number[] = [];
  const reencodeRuns: number[] = [];
  const rope = ropeParamsFromConfig(specToHfConfig(benchSpec()));
  for (let r = 0; r < RUNS; r++) {
    const pick = Array.from({ length: QUESTION_BLOCKS }, (_, i) => keys[(r * 7 + i * 5) % BLOCKS]);
    loadRuns.push(
      time(() => {
        loaded = store.getMany(pick).map((got) => {
          if (got.status !== 'hit') throw new Error('bench: expected a hit');
          return got.kv;
        });
      }),
    );
    // re-encoding as a question does it (the assembly Engine.answer runs): each block rotated to its start, all laid end to end
    const blocks = loaded.map((kv) => ({ kv }));
    const t0 = performance.now();
    await assembleBlocks(blocks, { rope, kvShape: kvShapeOf(loaded[0]) });
    reencodeRuns.push(performance.now() - t0);
  }
  db.close();

  const result = {
    codec: CODEC,
    blockTokens: SHAPE.tokens,
    blockMiB: blobBytes / MIB,
    blocks: BLOCKS,
    writeMiBps: (BLOCKS * blobBytes) / MIB / (writeMs / 1000),
    readMiBps: (BLOCKS * blobBytes) / MIB / (readMs / 1000),
    perBlockMs: { encode: encodeMs, checksum: checksumMs, decode: decodeMs },
    load16Ms: median(loadRuns),
    load16MinMaxMs: [Math.min(...loadRuns), Math.max(...loadRuns)],
    reencode16Ms: median(reencodeRuns),
    // block-mode TTFT at 4K from the last `npm run bench:ttft` on this machine, if there is one
    blockTtft4kMs: lastBlockTtft4k(),
    runs: RUNS,
    node: process.version,
    cpu: os.cpus()[0]?.model ?? 'unknown',
    cores: os.cpus().length,
  };
  if (args.json) {
    console.log(JSON.stringify(result, null, 2));
  } else {
    const f = (x: number) => x.toFixed(1);
    console.log(`KV store, ${CODEC}, ${SHAPE.tokens}-token blocks of ${f(result.blockMiB)} MiB (24 layers, 2 KV heads, head dim 64)`);
    console.log(`${result.cpu}, ${result.cores} cores, Node ${result.node}; ${BLOCKS} blocks, median of ${RUNS} runs\n`);
    console.log('| measure | value |');
    console.log('|---|---|');
    console.log(`| write (encode + checksum + insert + commit) | ${f(result.writeMiBps)} MiB/s |`);
    console.log(`| read, one get per block (select + checksum + decode + touch commit) | ${f(result.readMiBps)} MiB/s |`);
    console.log(`| load 16 blocks (4K tokens) for one question (getMany) | ${f(result.load16Ms)} ms (min ${f(result.load16MinMaxMs[0])}, max ${f(result.load16MinMaxMs[1])}) |`);
    console.log(`| re-encode those 16 blocks (rotate to their starts + concatenate) | ${f(result.reencode16Ms)} ms |`);
    if (result.blockTtft4kMs) {
      // bench:ttft's block TTFT covers re-encoding + the final block; a question also loads the KV first
      const ttft = result.load16Ms + result.blockTtft4kMs;
      const share = (result.load16Ms + result.reencode16Ms) / ttft;
      console.log(`| load + re-encode as a share of block-mode TTFT at 4K (${f(ttft)} ms with loading) | ${(100 * share).toFixed(1)}% |`);
    }
    console.log(`| per block: encode / checksum / decode | ${f(encodeMs)} / ${f(checksumMs)} / ${f(decodeMs)} ms |`);
  }
} finally {
  fs.rmSync(dir, { recursive: true, force: true });
}
