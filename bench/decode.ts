// npm run bench:decode [-- options] — decoding speed at ~2.5K tokens of context, CPU provider:
// our tokens/s (decode.ts's one definition: tokens after the first over the time from the first
// sampled token to the last) against transformers.js (same onnxruntime-node, same model folder,
// same prompt ids, greedy), in interleaved runs, medians. Also the cost of the binding's copy-out
// of the present KV per step: a bare one-token session.run at the same past fetching every output
// against fetching only the logits (ORT computes the presents either way; only the copy into
// JavaScript differs), and whether a preallocated output (a fetch given as a tensor) saves that copy.
//   --shape llama|bench   llama (default): issue 15's shape, dim 512, 8 layers, float32 KV, Llama 2
//                         tokenizer; bench: Qwen2.5-0.5B's shape, float16 KV
//   --context N           prompt tokens before the generated ones (default 2560)
//   --tokens N            tokens generated per run (default 32)
//   --out FILE            default bench-output/decode.json
//   --malloc-ab N         instead: our decode alone in N rounds of 3 processes: plain glibc malloc,
//                         GLIBC_TUNABLES that keep the binding's per-step buffers off mmap, and plain
//                         with the threshold raised from inside (primeMalloc)
// BENCH_RUNS (default 5) runs of each after a warm-up; about 2 minutes on 2 cores.
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { parseArgs } from 'node:util';
import v8 from 'node:v8';
import { runInNewContext } from 'node:vm';
import ort from 'onnxruntime-node';
import { decode, tokensPerSecond } from '../native-models/decode.ts';
import { Engine } from '../native-models/engine.ts';
import { emptyKv, type KvCache } from '../native-models/kv.ts';
import { positionRange } from '../native-models/prefill.ts';
import { argmax } from '../native-models/sampling.ts';
import { seededRandom } from '../native-models/seeded-random.ts';
import { BENCH_SHAPE, LLAMA_SHAPE } from './bench-model.ts';
import { machineLine, median } from './stats.ts';

const { values: args } = parseArgs({
  options: {
    shape: { type: 'string', default: 'llama' },
    context: { type: 'string', default: '2560' },
    tokens: { type: 'string', default: '32' },
    out: { type: 'string', default: 'bench-output/decode.json' },
    'malloc-ab': { type: 'string' },
    'ours-only': { type: 'boolean', default: false },
  },
  strict: true,
});
if (args.shape !== 'llama' && args.shape !== 'bench') throw new Error('--shape must be llama or bench');
const MODEL = args.shape === 'llama' ? LLAMA_SHAPE : BENCH_SHAPE;
const CONTEXT = Number(args.context);
const NEW_TOKENS = Number(args.tokens);
const RUNS = Number(process.env.BENCH_RUNS ?? 5);
/** The last tokens of the context go in the final block (the question's place), the rest is the past. */
const FINAL_TOKENS = 64;

/** glibc malloc kept off mmap for the binding's multi-megabyte output buffers, and from trimming the heap. */
const MALLOC_TUNABLES = 'glibc.malloc.mmap_threshold=33554432:glibc.malloc.trim_threshold=1073741824';

async function ourDecoder() {
  const dir = await MODEL.dir();
  const engine = await Engine.load(dir, { provider: 'cpu' });
  const random = seededRandom(11);
  // random ids above the special tokens: the same prompt for both, no EOS in it
  const ids = Array.from({ length: CONTEXT }, () => 4 + Math.floor(random() * (MODEL.spec.vocabSize - 4)));
  const pastIds = ids.slice(0, CONTEXT - FINAL_TOKENS);
  const finalIds = ids.slice(CONTEXT - FINAL_TOKENS);
  console.error(`prefilling ${pastIds.length} tokens ...`);
  const past = (await engine.runner.forward(pastIds, positionRange(0, pastIds.length), emptyKv(engine.runner.kvShape))).present;
  const ours = async () => {
    // stop tokens off: both sides generate exactly NEW_TOKENS tokens
    const r = await decode(engine.runner, engine.tokenizer, { past, finalIds, sampler: argmax, maxNewTokens: NEW_TOKENS, stopTokenIds: [] });
    return { tokensPerSecond: r.tokensPerSecond!, tokenIds: r.tokenIds };
  };
  return { dir, engine, ids, past, ours };
}

/** --ours-only: a warm-up and then BENCH_RUNS of our decode alone; one JSON line on stdout (for --malloc-ab). */
async function oursOnly(): Promise<void> {
  if (process.env.BENCH_PRIME_MALLOC === '1') primeMalloc();
  const { engine, ours } = await ourDecoder();
  await ours();
  const tps: number[] = [];
  for (let i = 0; i < RUNS; i++) tps.push((await ours()).tokensPerSecond);
  // resident memory with the past and one decode's garbage about: what the tunables cost in memory
  const rssMiB = process.memoryUsage().rss / 2 ** 20;
  await engine.release();
  console.log(JSON.stringify({ tokensPerSecond: median(tps), rssMiB }));
}

/**
 * The same effect from inside the process: glibc raises its mmap threshold to the size of an
 * mmap'd block when that block is freed (up to 32 MiB), so one block just under 32 MiB, allocated
 * and collected, sends the later multi-megabyte buffers to the heap.
 */
function primeMalloc(): void {
  Buffer.allocUnsafeSlow(32 * 2 ** 20 - 64 * 1024).fill(1, 0, 1); // dropped at once
  collectGarbage();
}

/**
 * --malloc-ab N: our decode in child processes, N rounds of plain, with MALLOC_TUNABLES (glibc reads
 * them at process start, so they cannot share a process) and primed (primeMalloc).
 */
function mallocAb(pairs: number): void {
  const script = process.argv[1];
  const child = (tunables: string | undefined, prime = false) => {
    const env: NodeJS.ProcessEnv = { ...process.env, BENCH_RUNS: String(RUNS), BENCH_PRIME_MALLOC: prime ? '1' : '0' };
    if (tunables) env.GLIBC_TUNABLES = tunables;
    else delete env.GLIBC_TUNABLES;
    const out = execFileSync(process.execPath, [...process.execArgv, script, '--ours-only', '--shape', args.shape, '--context', args.context, '--tokens', args.tokens], { env, encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'] });
    return JSON.parse(out.trim().split('\n').at(-1)!) as { tokensPerSecond: number; rssMiB: number };
  };
  const plain: number[] = [];
  const tuned: number[] = [];
  const primed: number[] = [];
  const rss = { plain: [] as number[], tuned: [] as number[], primed: [] as number[] };
  for (let i = 0; i < pairs; i++) {
    const a = child(undefined);
    const b = child(MALLOC_TUNABLES);
    const c = child(undefined, true);
    plain.push(a.tokensPerSecond);
    tuned.push(b.tokensPerSecond);
    primed.push(c.tokensPerSecond);
    rss.plain.push(a.rssMiB);
    rss.tuned.push(b.rssMiB);
    rss.primed.push(c.rssMiB);
    console.error(JSON.stringify({ round: i + 1, plain: a, tuned: b, primed: c }));
  }
  console.log(
    [
      `${new Date().toISOString().slice(0, 10)}, ${machineLine()}, ${MODEL.name}; ${CONTEXT} tokens of context, ${NEW_TOKENS} greedy tokens; our decode in ${3 * pairs} processes, in rounds of plain / tunables / primed; each the median of ${RUNS} decodes after a warm-up`,
      '',
      '| glibc malloc | tokens/s (median) | per-round ratio to plain (median) | RSS after the decodes (MiB, median) |',
      '|---|---:|---:|---:|',
      `| plain | ${median(plain).toFixed(2)} | | ${median(rss.plain).toFixed(0)} |`,
      `| GLIBC_TUNABLES=${MALLOC_TUNABLES} | ${median(tuned).toFixed(2)} | ${median(tuned.map((t, i) => t / plain[i])).toFixed(3)} | ${median(rss.tuned).toFixed(0)} |`,
      `| plain, primed in-process (a ~32 MiB block allocated and collected first) | ${median(primed).toFixed(2)} | ${median(primed.map((t, i) => t / plain[i])).toFixed(3)} | ${median(rss.primed).toFixed(0)} |`,
    ].join('\n'),
  );
}

async function main(): Promise<void> {
  const { dir, engine, ids, past, ours } = await ourDecoder();
  const tjs = await transformersJs(dir);
  const theirs = () => tjs.generate(ids, NEW_TOKENS);
  const copyOut = bareStep(engine, past);

  const figures = { ours: [] as number[], transformersJs: [] as number[], stepAll: [] as number[], stepLogitsOnly: [] as number[] };
  let agreement = { same: 0, of: NEW_TOKENS };
  let preallocated = { filled: false, returnedAsGiven: false };
  for (let i = 0; i <= RUNS; i++) {
    // each side starts without the other's garbage (~40 MB of dropped KV per step) left to collect
    collectGarbage();
    const a = await ours();
    collectGarbage();
    const b = await theirs();
    collectGarbage();
    const { preallocated: pre, ...step } = await copyOut();
    preallocated = pre;
    if (i === 0) {
      // the first run warms up; its ids say whether both decoded the same tokens
      const same = a.tokenIds.findIndex((t, j) => t !== b.tokenIds[j]);
      agreement = { same: same < 0 ? Math.min(a.tokenIds.length, b.tokenIds.length) : same, of: NEW_TOKENS };
      continue;
    }
    figures.ours.push(a.tokensPerSecond);
    figures.transformersJs.push(b.tokensPerSecond);
    figures.stepAll.push(step.allMs);
    figures.stepLogitsOnly.push(step.logitsOnlyMs);
    console.error(JSON.stringify({ run: i, ours: a.tokensPerSecond, transformersJs: b.tokensPerSecond, ...step }));
  }
  await tjs.dispose();
  await engine.release();

  const kvBytesPerStep = engine.runner.kvShape.layers * 2 * engine.runner.kvShape.kvHeads * engine.runner.kvShape.headDim * CONTEXT * (engine.runner.kvShape.dtype === 'float32' ? 4 : 2);
  const result = {
    date: new Date().toISOString(),
    machine: machineLine(),
    onnxruntime: ort.env.versions.node ?? ort.env.versions.common,
    model: MODEL.name,
    /** glibc malloc settings in effect (they change what the binding's large per-step allocations cost). */
    glibcTunables: process.env.GLIBC_TUNABLES ?? null,
    runs: RUNS,
    contextTokens: CONTEXT,
    newTokens: NEW_TOKENS,
    oursTokPerS: median(figures.ours),
    transformersJsTokPerS: median(figures.transformersJs),
    oursOverTransformersJs: median(figures.ours.map((x, i) => x / figures.transformersJs[i])),
    greedyTokensAgreeing: agreement,
    bareStep: {
      kvMegabytes: kvBytesPerStep / 2 ** 20,
      allOutputsMs: median(figures.stepAll),
      logitsOnlyMs: median(figures.stepLogitsOnly),
      copyOutShare: median(figures.stepAll.map((x, i) => (x - figures.stepLogitsOnly[i]) / x)),
      /** A fetch given as a tensor: filled by onnxruntime; returned as given (no copy) or copied out anyway. */
      preallocatedOutput: preallocated,
    },
    perRun: figures,
  };
  fs.mkdirSync(path.dirname(path.resolve(args.out)), { recursive: true });
  fs.writeFileSync(args.out, JSON.stringify(result, null, 2));
  const r = result;
  console.log(
    [
      `${r.date.slice(0, 10)}, ${r.machine}, onnxruntime-node ${r.onnxruntime}, CPU provider, ${r.model}; ${CONTEXT} tokens of context (final block ${FINAL_TOKENS}), ${NEW_TOKENS} greedy tokens; medians of ${RUNS} interleaved runs after a warm-up${r.glibcTunables ? `; GLIBC_TUNABLES=${r.glibcTunables}` : ''}`,
      '',
      '| decoder | tokens/s | ours / transformers.js (per-run ratio, median; ratio of the medians) |',
      '|---|---:|---:|',
      `| Quire (decode.ts) | ${r.oursTokPerS.toFixed(2)} | ${r.oursOverTransformersJs.toFixed(3)}; ${(r.oursTokPerS / r.transformersJsTokPerS).toFixed(3)} |`,
      `| transformers.js ${tjs.version} | ${r.transformersJsTokPerS.toFixed(2)} | |`,
      '',
      `Greedy ids agreeing from the start: ${r.greedyTokensAgreeing.same} of ${r.greedyTokensAgreeing.of}.`,
      `One bare decoding step at ${CONTEXT} tokens (${r.bareStep.kvMegabytes.toFixed(1)} MiB of KV): ${r.bareStep.allOutputsMs.toFixed(1)} ms fetching every output, ${r.bareStep.logitsOnlyMs.toFixed(1)} ms fetching only the logits: the binding's copy-out of the present KV is ${(100 * r.bareStep.copyOutShare).toFixed(1)}% of a step.`,
      `A preallocated output (fetch given as a tensor): ${r.bareStep.preallocatedOutput.filled ? 'filled by onnxruntime' : 'NOT filled'}, ${r.bareStep.preallocatedOutput.returnedAsGiven ? 'returned as given (no copy-out)' : 'but the binding returns a fresh copy (no copy saved)'}.`,
    ].join('\n'),
  );
}

/** A full garbage collection (the flag is set at run time, so `npm run bench:decode` needs no node option). */
function collectGarbage(): void {
  v8.setFlagsFromString('--expose-gc');
  (runInNewContext('gc') as () => void)();
}

/**
 * transformers.js generating `n` greedy tokens after `ids` (its own prefill, then its decoding loop);
 * tokens/s by decode.ts's definition, from the times its streamer receives each sampled token.
 */
async function transformersJs(dir: string) {
  const { AutoModelForCausalLM, BaseStreamer, env, Tensor } = await import('@huggingface/transformers');
  type TextStreamer = typeof import('@huggingface/transformers').TextStreamer;
  env.allowRemoteModels = false;
  env.localModelPath = path.dirname(dir);
  const model = await AutoModelForCausalLM.from_pretrained(path.basename(dir), { dtype: 'fp32', device: 'cpu', use_external_data_format: true });
  class Timestamps extends BaseStreamer {
    prompt = true;
    times: number[] = [];
    tokens: number[] = [];
    override put(value: bigint[][]): void {
      if (this.prompt) this.prompt = false; // generate() first puts the prompt
      else {
        this.times.push(performance.now());
        this.tokens.push(Number(value[0][0]));
      }
    }
    override end(): void {}
  }
  return {
    version: env.version,
    async generate(ids: number[], n: number) {
      const streamer = new Timestamps();
      await model.generate({
        input_ids: new Tensor('int64', BigInt64Array.from(ids, BigInt), [1, ids.length]),
        attention_mask: new Tensor('int64', new BigInt64Array(ids.length).fill(1n), [1, ids.length]),
        max_new_tokens: n,
        min_new_tokens: n,
        do_sample: false,
        // its types ask for a TextStreamer; generate() only calls put() and end()
        streamer: streamer as unknown as InstanceType<TextStreamer>,
      });
      return { tokensPerSecond: tokensPerSecond(streamer.times.length, streamer.times[0], streamer.times.at(-1)!)!, tokenIds: streamer.tokens };
    },
    dispose: () => model.dispose(),
  };
}

/** One decoding step as a bare session.run at `past`, fetching every output and then only the logits. */
function bareStep(engine: Engine, past: KvCache) {
  const session = engine.runner.session;
  const { layers, kvHeads, headDim, dtype } = engine.runner.kvShape;
  const feeds: Record<string, ort.Tensor> = {
    input_ids: new ort.Tensor('int64', BigInt64Array.from([5n]), [1, 1]),
    attention_mask: new ort.Tensor('int64', new BigInt64Array(past.tokens + 1).fill(1n), [1, past.tokens + 1]),
    position_ids: new ort.Tensor('int64', BigInt64Array.from([BigInt(past.tokens)]), [1, 1]),
  };
  for (let l = 0; l < layers; l++) {
    feeds[`past_key_values.${l}.key`] = new ort.Tensor(dtype, past.keys[l], [1, kvHeads, past.tokens, headDim]);
    feeds[`past_key_values.${l}.value`] = new ort.Tensor(dtype, past.values[l], [1, kvHeads, past.tokens, headDim]);
  }
  const time = async (fetches?: string[]) => {
    const t0 = performance.now();
    await (fetches ? session.run(feeds, fetches) : session.run(feeds));
    return performance.now() - t0;
  };
  /**
   * Whether a preallocated output saves the binding's copy: onnxruntime fills a fetch given as a
   * tensor, but if the binding returns a different array, the copy into a fresh ArrayBuffer happens
   * anyway (onnxruntime-node 1.30 on the CPU: it does).
   */
  const preallocatedOutput = async () => {
    const plain = await session.run(feeds, ['logits']);
    const given = new Float32Array((plain.logits.data as Float32Array).length).fill(Number.NaN);
    const out = await session.run(feeds, { logits: new ort.Tensor('float32', given, plain.logits.dims) });
    return {
      filled: given.every((x, i) => x === (plain.logits.data as Float32Array)[i]),
      returnedAsGiven: out.logits.data === given,
    };
  };
  return async () => {
    const all: number[] = [];
    const logitsOnly: number[] = [];
    for (let i = 0; i < 5; i++) {
      all.push(await time());
      logitsOnly.push(await time(['logits']));
    }
    return { allMs: median(all), logitsOnlyMs: median(logitsOnly), preallocated: await preallocatedOutput() };
  };
}

if (args['ours-only']) await oursOnly();
else if (args['malloc-ab']) mallocAb(Number(args['malloc-ab']));
else await main();
