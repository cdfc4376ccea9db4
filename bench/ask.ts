// npm run bench:ask [-- --all-paths] [-- --models bench,llama] — the question path (ask(), as the app runs it), CPU provider,
// one generated token (maxNewTokens 1: TTFT only), on two generated models:
// - the bench shape (Qwen2.5-0.5B's shape, generated tokenizer, float16 KV), and
// - issue 15's Llama shape (dim 512, 8 layers, GQA 8/4, the real Llama 2 tokenizer, float32 KV),
// at k = 10 and k = 20 passages of ~256 tokens (+ the instruction and final blocks). Each iteration
// runs warm (passage KV in SQLite: load + re-encode + final block) and full mode (one causal
// prefill) back to back, so warm/full is a ratio within one iteration (quoted as the median of the
// per-iteration ratios, next to the ratio of the medians). The first iteration warms up; the first
// block-mode run finds no KV stored (cold: every block prefilled and stored) and is shown once.
// Two more warm paths run in each iteration, as the app and `quire serve` answer: "in memory" (the
// engine worker's KvStore keeps decoded blocks, decoded-kv-cache.ts: no read, no decode) and
// "prefetched" (the question prepared while typed, prepared-question.ts: only the final block runs).
// --all-paths adds, on the bench shape at k = 10, the isolated quality mode and boundary recompute 16.
// BENCH_RUNS (default 3) iterations after the warm-up; about 10 minutes on 2 cores.
// Results: bench-output/ask.json and Markdown tables on stdout (docs/BENCHMARKS.md).
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { openDatabase } from '../db/open.ts';
import { Engine } from '../native-models/engine.ts';
import { ask, type AnswerFigures, type AskOptions } from '../electron/answering/ask.ts';
import { createAnswerContext, type AnswerContext } from '../electron/answering/passage-kv.ts';
import { PreparedQuestion } from '../electron/answering/prepared-question.ts';
import { DEFAULT_DECODED_KV_CACHE_BYTES } from '../db/decoded-kv-cache.ts';
import { KvStore } from '../db/kv-store.ts';
import { passageBlockText } from '../electron/answering/prompt-blocks.ts';
import { machineLine, median } from './stats.ts';
import { BENCH_SHAPE, LLAMA_SHAPE, type BenchModel } from './bench-model.ts';
import { BENCH_QUESTION, benchPassages } from './bench-passages.ts';

const KS = [10, 20];
const BLOCK_TOKENS = 256;
const RUNS = Number(process.env.BENCH_RUNS ?? 3);
const { values: args } = parseArgs({
  options: { 'all-paths': { type: 'boolean', default: false }, models: { type: 'string', default: 'bench,llama' } },
  strict: true,
});
const MODELS = args.models.split(',').map((name) => {
  if (name !== 'bench' && name !== 'llama') throw new Error('--models: a comma-separated list of bench, llama');
  return name === 'bench' ? BENCH_SHAPE : LLAMA_SHAPE;
});

interface PathRow {
  path: string;
  ttftMs: number;
  loadMs: number;
  computeMs: number;
  reencodeMs: number;
  finalMs: number;
  reused: number;
  computed: number;
}

interface KRow {
  model: string;
  kvDtype: string;
  k: number;
  promptTokens: number;
  cold: PathRow;
  warm: PathRow;
  /** Warm with the decoded blocks kept in memory (the app's worker, quire serve). */
  memory: PathRow;
  /** Prepared while typed: the final block only. */
  prefetched: PathRow;
  full: PathRow;
  /** Median over iterations of warm TTFT / full TTFT of the same iteration. */
  warmOverFull: number;
  /** (KV load + re-encode) / warm TTFT, median over iterations. */
  loadReencodeShare: number;
  memoryOverFull: number;
  memoryLoadReencodeShare: number;
  prefetchedOverFull: number;
  extra: PathRow[];
}

function row(name: string, figures: AnswerFigures[]): PathRow {
  const m = (pick: (f: AnswerFigures) => number) => median(figures.map(pick));
  return {
    path: name,
    ttftMs: m((f) => f.ttftMs),
    loadMs: m((f) => f.loadMs),
    computeMs: m((f) => f.computeMs),
    reencodeMs: m((f) => f.reencodeMs),
    finalMs: m((f) => f.finalMs),
    reused: figures[0].reusedBlocks,
    computed: figures[0].computedBlocks,
  };
}

async function benchModel(model: BenchModel): Promise<KRow[]> {
  const dir = await model.dir();
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'quire-bench-ask-'));
  const db = openDatabase(path.join(tmp, 'bench.db'));
  const engine = await Engine.load(dir, { provider: 'cpu' });
  const ctx = await createAnswerContext(db, engine);
  const rows: KRow[] = [];
  try {
    for (const k of KS) rows.push(await benchK(model, engine, ctx, k));
  } finally {
    await engine.release();
    db.close();
    fs.rmSync(tmp, { recursive: true, force: true });
  }
  return rows;
}

async function benchK(model: BenchModel, engine: Engine, ctx: AnswerContext, k: number): Promise<KRow> {
  const passages = benchPassages(engine, k, BLOCK_TOKENS);
  const tokens = passages.map((p) => engine.tokenizer.encode(passageBlockText(p)).length);
  console.error(`${model.name}, k = ${k}: passage blocks of ${Math.min(...tokens)}-${Math.max(...tokens)} tokens; instruction ${ctx.frame.instructionIds.length}`);
  const run = async (options: AskOptions, on: AnswerContext = ctx) => (await ask(on, BENCH_QUESTION, { passages, maxNewTokens: 1, ...options })).figures;
  // the same model, database and instruction block, over a store that keeps decoded blocks (as the engine worker's)
  const inMemory: AnswerContext = { ...ctx, store: new KvStore(ctx.db, { decodedCacheBytes: DEFAULT_DECODED_KV_CACHE_BYTES }) };
  const runPrefetched = async () => {
    const prepared = PreparedQuestion.start(inMemory, BENCH_QUESTION, { passages, maxNewTokens: 1 });
    if (!(await prepared?.ready)) throw new Error('the prepare did not finish');
    const figures = await run({ prepared }, inMemory);
    if (!figures.prefetched) throw new Error('the prepared past was not used');
    return figures;
  };

  // the first block-mode run stores the passages' KV (cold); then warm and full alternate
  const cold = await run({});
  const warm: AnswerFigures[] = [];
  const memory: AnswerFigures[] = [];
  const prefetched: AnswerFigures[] = [];
  const full: AnswerFigures[] = [];
  for (let i = 0; i <= RUNS; i++) {
    const w = await run({});
    const m = await run({}, inMemory);
    const p = await runPrefetched();
    const f = await run({ mode: 'full' });
    console.error(JSON.stringify({ k, iteration: i, warmMs: w.ttftMs, memoryMs: m.ttftMs, prefetchedMs: p.ttftMs, fullMs: f.ttftMs, loadMs: w.loadMs, reencodeMs: w.reencodeMs, finalMs: w.finalMs }));
    if (i === 0) continue; // warm-up (and the first fill of the memory cache)
    warm.push(w);
    memory.push(m);
    prefetched.push(p);
    full.push(f);
  }
  if (warm[0].passagesUsed !== k || warm[0].passagesShortened > 0) throw new Error(`only ${warm[0].passagesUsed} of ${k} passages fit the context whole`);
  const extra: PathRow[] = [];
  if (args['all-paths'] && model === BENCH_SHAPE && k === KS[0]) {
    for (const [name, options] of [
      ['warm, isolated', { quality: 'isolated' }],
      ['warm, shared-prefix + boundary recompute 16', { boundaryTokens: 16 }],
    ] as const) {
      const figures: AnswerFigures[] = [];
      for (let i = 0; i <= RUNS; i++) {
        const f = await run(options);
        if (i > 0) figures.push(f);
      }
      extra.push(row(name, figures));
    }
  }
  return {
    model: model.short,
    kvDtype: model.spec.kvDtype,
    k,
    promptTokens: warm[0].promptTokens,
    cold: row('cold (no KV stored; one run)', [cold]),
    warm: row('warm, shared-prefix (default)', warm),
    memory: row('warm, decoded blocks in memory (app, serve)', memory),
    prefetched: row('prefetched while typing (app)', prefetched),
    full: row('full mode', full),
    warmOverFull: median(warm.map((w, i) => w.ttftMs / full[i].ttftMs)),
    loadReencodeShare: median(warm.map((w) => (w.loadMs + w.reencodeMs) / w.ttftMs)),
    memoryOverFull: median(memory.map((w, i) => w.ttftMs / full[i].ttftMs)),
    memoryLoadReencodeShare: median(memory.map((w) => (w.loadMs + w.reencodeMs) / w.ttftMs)),
    prefetchedOverFull: median(prefetched.map((w, i) => w.ttftMs / full[i].ttftMs)),
    extra,
  };
}

async function main(): Promise<void> {
  const started = performance.now();
  const rows: KRow[] = [];
  for (const model of MODELS) rows.push(...(await benchModel(model)));
  const result = { date: new Date().toISOString(), machine: machineLine(), provider: 'cpu', runs: RUNS, blockTokens: BLOCK_TOKENS, minutes: (performance.now() - started) / 60000, rows };
  fs.mkdirSync('bench-output', { recursive: true });
  fs.writeFileSync('bench-output/ask.json', JSON.stringify(result, null, 2));
  console.log(table(result));
}

function table(result: { date: string; machine: string; runs: number; minutes: number; rows: KRow[] }): string {
  const pct = (x: number) => `${(100 * x).toFixed(1)}%`;
  const ms = (x: number) => (x >= 100 ? x.toFixed(0) : x.toFixed(1));
  const lines = [
    `${result.date.slice(0, 10)}, ${result.machine}, CPU provider, passages of ~${BLOCK_TOKENS} tokens, one generated token, medians of ${result.runs} iterations after a warm-up (warm and full alternating), ${result.minutes.toFixed(1)} minutes`,
    '',
    `Models: ${MODELS.map((m) => m.name).join('; ')}.`,
    '',
    '| model | KV | k | prompt tokens | warm TTFT (ms) | full TTFT (ms) | warm / full | KV load (ms) | re-encode (ms) | load + re-encode of warm | cold TTFT (ms, 1 run) |',
    '|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|',
    ...result.rows.map(
      (r) =>
        `| ${r.model} | ${r.kvDtype} | ${r.k} | ${r.promptTokens} | ${ms(r.warm.ttftMs)} | ${ms(r.full.ttftMs)} | **${pct(r.warmOverFull)}** (medians: ${pct(r.warm.ttftMs / r.full.ttftMs)}) | ${ms(r.warm.loadMs)} | ${ms(r.warm.reencodeMs)} | ${pct(r.loadReencodeShare)} | ${ms(r.cold.ttftMs)} |`,
    ),
    '',
    'The app and `quire serve` (decoded blocks kept in memory; a question prepared while typed):',
    '',
    '| model | k | in memory: TTFT (ms) | of full | KV load (ms) | re-encode (ms) | load + re-encode of it | prefetched: TTFT (ms) | of full | final block alone (ms) |',
    '|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|',
    ...result.rows.map(
      (r) =>
        `| ${r.model} | ${r.k} | ${ms(r.memory.ttftMs)} | **${pct(r.memoryOverFull)}** | ${ms(r.memory.loadMs)} | ${ms(r.memory.reencodeMs)} | ${pct(r.memoryLoadReencodeShare)} | ${ms(r.prefetched.ttftMs)} | **${pct(r.prefetchedOverFull)}** | ${ms(r.prefetched.finalMs)} |`,
    ),
  ];
  for (const r of result.rows.filter((x) => x.extra.length)) {
    lines.push('', `| path (${r.model}, k = ${r.k}) | TTFT (ms) | KV load | re-encode | final block |`, '|---|---:|---:|---:|---:|');
    for (const e of [r.warm, ...r.extra]) lines.push(`| ${e.path} | ${ms(e.ttftMs)} | ${ms(e.loadMs)} | ${ms(e.reencodeMs)} | ${ms(e.finalMs)} |`);
  }
  return lines.join('\n');
}

await main();
