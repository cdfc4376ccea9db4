// KV store benchmark, per codec (float16, int8, int4): stored bytes per token, and the time to load
// the 16 blocks (4K tokens) one question needs through KvStore.getMany (select + checksum + decode
// to the cache's dtype + touch), codecs interleaved run by run so the machine's load falls on all
// alike; then write/read throughput and re-encoding for the float16 codec; then each codec's
// reconstruction error on real KV (the trained stories260K model's keys and values for a few story
// sentences).
//
//   npx tsx bench/kv.ts [--blocks 32] [--runs 11] [--json]
//
// Blocks: 256 tokens of the bench-shape model (Qwen2.5-0.5B: 24 layers, 2 KV heads, head dim 64,
// float16 KV = 3 MiB a block in float16), synthetic data (the load path does not depend on the
// values). The database lives in a temp dir and is removed afterwards. Reads come from the OS page
// cache (the file was just written): the steady state of a desktop app re-asking over the same
// folders; a cold disk read adds the drive's own throughput on top, in proportion to the bytes.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { assembleBlocks } from '../native-models/assemble.ts';
import { Engine } from '../native-models/engine.ts';
import { kvShapeOf, type KvCache, type KvData } from '../native-models/kv.ts';
import { ropeParamsFromConfig } from '../native-models/rope-config.ts';
import { benchSpec, specToHfConfig } from '../test/tools/tiny-model-spec.ts';
import { checksumOf } from '../db/checksum.ts';
import { decodeKv, encodeKv, KV_CODECS, kvBlobBytes, type KvCodec } from '../db/kv-codec.ts';
import { tokenHash } from '../db/hash.ts';
import { KvStore, type KvKey } from '../db/kv-store.ts';
import { openDatabase } from '../db/open.ts';
import { machineLine, median } from './stats.ts';

const { values: args } = parseArgs({
  options: {
    blocks: { type: 'string', default: '32' },
    runs: { type: 'string', default: '11' },
    json: { type: 'boolean', default: false },
  },
});
const BLOCKS = Number(args.blocks);
const RUNS = Number(args.runs);
const QUESTION_BLOCKS = 16;
const SHAPE = { layers: 24, kvHeads: 2, headDim: 64, tokens: 256 };
/** stories260K's shape, 64 tokens: a block small enough that headers and group metadata weigh. */
const TINY = { layers: 5, kvHeads: 4, headDim: 8, tokens: 64 };
const STORIES = path.resolve('../shared/fixtures/stories260k-llama2c');
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

const time = (f: () => void) => {
  const t0 = performance.now();
  f();
  return performance.now() - t0;
};
const medianOf = (runs: number, f: () => void) => median(Array.from({ length: runs }, () => time(f)));
const minOf = (runs: number, f: () => void) => Math.min(...Array.from({ length: runs }, () => time(f)));

function lastBlockTtft4k(): number | undefined {
  try {
    const ttft = JSON.parse(fs.readFileSync('bench-output/ttft.json', 'utf8')) as { ttft: { promptTokens: number; blockMs: number }[] };
    return ttft.ttft.find((r) => r.promptTokens >= 4096)?.blockMs;
  } catch {
    return undefined;
  }
}

/** Max abs and RMS error of each codec against the float32 KV, and the KV's own RMS. */
async function realKvError(): Promise<{ sentences: number; tokens: number; rms: number; codecs: Record<KvCodec, { maxAbs: number; rms: number }> } | undefined> {
  if (!fs.existsSync(STORIES)) return undefined;
  const engine = await Engine.load(STORIES);
  try {
    const sentences = [
      'Once upon a time, there was a little girl named Lily. She loved to play outside in the park.',
      'One day, a big dog came to the garden. The dog was happy and wanted to play with the ball.',
      'Tom and his mom went to the store to buy some milk. Tom saw a red car and smiled.',
      'The sun was hot, so the bird sat in the shade of the old tree and sang a song.',
    ];
    const caches = await Promise.all(sentences.map((s) => engine.prefill(engine.tokenizer.encode(s, { bos: true }))));
    const codecs = {} as Record<KvCodec, { maxAbs: number; rms: number }>;
    let sumSq = 0;
    let count = 0;
    for (const codec of KV_CODECS) {
      let maxAbs = 0;
      let errSq = 0;
      for (const kv of caches) {
        const back = decodeKv(encodeKv(kv, codec), { dtype: 'float32' });
        const pairs: [KvData, KvData][] = kv.keys.map((k, l) => [k, back.keys[l]]);
        pairs.push(...kv.values.map((v, l): [KvData, KvData] => [v, back.values[l]]));
        for (const [a, b] of pairs) {
          for (let i = 0; i < a.length; i++) {
            const e = Math.abs(a[i] - b[i]);
            if (e > maxAbs) maxAbs = e;
            errSq += e * e;
            if (codec === 'float16') {
              sumSq += a[i] * a[i];
              count++;
            }
          }
        }
      }
      codecs[codec] = { maxAbs, rms: Math.sqrt(errSq / count) };
    }
    return { sentences: caches.length, tokens: caches.reduce((s, c) => s + c.tokens, 0), rms: Math.sqrt(sumSq / count), codecs };
  } finally {
    await engine.release();
  }
}

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'quire-bench-kv-'));
try {
  const db = openDatabase(path.join(dir, 'quire.db'));
  const caches = Array.from({ length: BLOCKS }, (_, i) => randomBlock(i + 1));
  const f16Bytes = kvBlobBytes('float16', SHAPE);

  // Per codec: size, the pieces of the path per block, and its blocks in the store.
  const stores = {} as Record<KvCodec, { store: KvStore; keys: KvKey[] }>;
  const perCodec = KV_CODECS.map((codec) => {
    const blob = encodeKv(caches[0], codec);
    const store = new KvStore(db, { codec });
    const keys = caches.map((_, i): KvKey => ({ modelFingerprint: `bench-${codec}`, tokenHash: tokenHash([i]) }));
    stores[codec] = { store, keys };
    const writeMs = time(() => caches.forEach((kv, i) => store.put(keys[i], kv)));
    return {
      codec,
      bytesPerToken: blob.byteLength / SHAPE.tokens,
      ratio: blob.byteLength / f16Bytes,
      tinyRatio: kvBlobBytes(codec, TINY) / kvBlobBytes('float16', TINY),
      encodeMs: medianOf(RUNS, () => encodeKv(caches[0], codec)),
      checksumMs: medianOf(RUNS, () => checksumOf(blob)),
      decodeMs: medianOf(RUNS, () => decodeKv(blob)),
      // on a shared machine the fastest run is the closer estimate of what decoding itself costs
      decodeMinMs: minOf(RUNS, () => decodeKv(blob)),
      writeMsPerBlock: writeMs / BLOCKS,
    };
  });
  db.pragma('wal_checkpoint(TRUNCATE)'); // reads below come from the main file, as they will later

  // One question: 16 blocks from anywhere in the store in one getMany (one commit), codecs in turn.
  const loads = Object.fromEntries(KV_CODECS.map((c) => [c, [] as number[]])) as Record<KvCodec, number[]>;
  const load = (codec: KvCodec, r: number) => {
    const { store, keys } = stores[codec];
    const pick = Array.from({ length: QUESTION_BLOCKS }, (_, i) => keys[(r * 7 + i * 5) % BLOCKS]);
    return time(() => {
      for (const got of store.getMany(pick)) if (got.status !== 'hit') throw new Error('bench: expected a hit');
    });
  };
  for (const codec of KV_CODECS) load(codec, 0); // warm-up
  // The order rotates run by run, so that no codec always follows another's allocations (and GC).
  for (let r = 0; r < RUNS; r++) {
    for (let j = 0; j < KV_CODECS.length; j++) {
      const codec = KV_CODECS[(r + j) % KV_CODECS.length];
      loads[codec].push(load(codec, r));
    }
  }
  const ratioToF16 = (codec: KvCodec) => median(loads[codec].map((ms, r) => ms / loads.float16[r]));

  // float16 (the default): throughput of single gets, and re-encoding a question's blocks.
  const f16 = stores.float16;
  const readMs = median(
    Array.from({ length: 3 }, () =>
      time(() => {
        for (const k of f16.keys) if (f16.store.get(k).status !== 'hit') throw new Error('bench: expected a hit'); // one commit each
      }),
    ),
  );
  const rope = ropeParamsFromConfig(specToHfConfig(benchSpec()));
  const question = f16.store.getMany(f16.keys.slice(0, QUESTION_BLOCKS)).map((g) => {
    if (g.status !== 'hit') throw new Error('bench: expected a hit');
    return { kv: g.kv };
  });
  // re-encoding as a question does it (the assembly Engine.answer runs): each block rotated to its start, all laid end to end
  const reencodeRuns: number[] = [];
  for (let r = 0; r < RUNS; r++) {
    const t0 = performance.now();
    await assembleBlocks(question, { rope, kvShape: kvShapeOf(question[0].kv) });
    reencodeRuns.push(performance.now() - t0);
  }
  const reencodeMs = median(reencodeRuns);
  db.close();

  const real = await realKvError();
  const result = {
    blockTokens: SHAPE.tokens,
    blocks: BLOCKS,
    runs: RUNS,
    codecs: perCodec.map((c) => ({
      ...c,
      load16Ms: median(loads[c.codec]),
      load16MinMaxMs: [Math.min(...loads[c.codec]), Math.max(...loads[c.codec])],
      loadVsFloat16: ratioToF16(c.codec),
    })),
    float16: {
      writeMiBps: f16Bytes / MIB / (perCodec[0].writeMsPerBlock / 1000),
      readMiBps: (BLOCKS * f16Bytes) / MIB / (readMs / 1000),
      reencode16Ms: reencodeMs,
      // block-mode TTFT at 4K from the last `npm run bench:ttft` on this machine, if there is one
      blockTtft4kMs: lastBlockTtft4k(),
    },
    realKv: real,
    machine: machineLine(),
    date: new Date().toISOString().slice(0, 10),
  };
  if (args.json) {
    console.log(JSON.stringify(result, null, 2));
  } else {
    const f = (x: number, d = 1) => x.toFixed(d);
    console.log(`KV store: ${SHAPE.tokens}-token blocks (24 layers, 2 KV heads, head dim 64, float16 cache), ${BLOCKS} blocks`);
    console.log(`${result.machine}; ${result.date}; medians of ${RUNS} interleaved runs\n`);
    console.log('| codec | bytes/token | x float16 (256 tok / tiny) | encode / checksum / decode (min) per block | write per block | load 16 blocks (min-max) | load vs float16 |');
    console.log('|---|---:|---:|---:|---:|---:|---:|');
    for (const c of result.codecs) {
      console.log(
        `| ${c.codec} | ${f(c.bytesPerToken, 0)} | ${f(c.ratio, 4)} / ${f(c.tinyRatio, 4)} | ${f(c.encodeMs)} / ${f(c.checksumMs, 2)} / ${f(c.decodeMs, 2)} (${f(c.decodeMinMs, 2)}) ms | ` +
          `${f(c.writeMsPerBlock)} ms | ${f(c.load16Ms)} ms (${f(c.load16MinMaxMs[0])}-${f(c.load16MinMaxMs[1])}) | ${f(c.loadVsFloat16, 3)} |`,
      );
    }
    const r16 = result.float16;
    console.log(`\nfloat16: write ${f(r16.writeMiBps)} MiB/s, one get per block ${f(r16.readMiBps)} MiB/s, re-encode 16 blocks ${f(r16.reencode16Ms)} ms`);
    if (r16.blockTtft4kMs) {
      const load16 = result.codecs[0].load16Ms;
      const share = (load16 + r16.reencode16Ms) / (load16 + r16.blockTtft4kMs);
      console.log(`load + re-encode as a share of block-mode TTFT at 4K: ${(100 * share).toFixed(1)}%`);
    }
    if (real) {
      console.log(`\nReconstruction error on real KV: stories260K, ${real.sentences} sentences, ${real.tokens} tokens, float32 KV of RMS ${real.rms.toPrecision(3)}`);
      console.log('| codec | max abs error | RMS error | RMS error / RMS value |');
      console.log('|---|---:|---:|---:|');
      for (const codec of KV_CODECS) {
        const e = real.codecs[codec];
        console.log(`| ${codec} | ${e.maxAbs.toExponential(2)} | ${e.rms.toExponential(2)} | ${(e.rms / real.rms).toExponential(2)} |`);
      }
    }
  }
} finally {
  fs.rmSync(dir, { recursive: true, force: true });
}
