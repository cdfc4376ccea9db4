// npm run bench:ask — the question path on the bench-shape model (Qwen2.5-0.5B's shape), CPU:
// k = 10 passages of ~256 tokens + the instruction and final blocks, TTFT medians for
// warm (passage KV in SQLite: load + re-encode + final block), cold (no KV stored: every block
// prefilled and stored first), full mode (one causal prefill), and each quality mode.
// Results: bench-output/ask.json and a Markdown table on stdout (docs/BENCHMARKS.md).
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { openDatabase } from '../db/open.ts';
import { Engine } from '../native-models/engine.ts';
import { ask, type AnswerFigures, type AskOptions } from '../electron/answering/ask.ts';
import { createAnswerContext } from '../electron/answering/passage-kv.ts';
import { passageBlockText } from '../electron/answering/prompt-blocks.ts';
import { machineLine, median } from './stats.ts';
import { benchModelDir } from './bench-model.ts';
import { BENCH_QUESTION, benchPassages } from './bench-passages.ts';

const K = 10;
const BLOCK_TOKENS = 256;
const RUNS = Number(process.env.BENCH_RUNS ?? 3);

async function main(): Promise<void> {
  const modelDir = await benchModelDir();
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'quire-bench-ask-'));
  const db = openDatabase(path.join(tmp, 'bench.db'));
  const engine = await Engine.load(modelDir, { provider: 'cpu' });
  const ctx = await createAnswerContext(db, engine);
  const passages = benchPassages(engine, K, BLOCK_TOKENS);
  const tokens = passages.map((p) => engine.tokenizer.encode(passageBlockText(p)).length);
  console.error(`passage blocks: ${tokens.join(', ')} tokens; instruction ${ctx.frame.instructionIds.length}`);

  const base: AskOptions = { passages, maxNewTokens: 1 };
  const measure = async (name: string, options: AskOptions, before?: () => void) => {
    const figures: AnswerFigures[] = [];
    for (let i = 0; i <= RUNS; i++) {
      before?.();
      const r = await ask(ctx, BENCH_QUESTION, { ...base, ...options });
      if (i > 0) figures.push(r.figures); // the first run warms up
    }
    const m = (pick: (f: AnswerFigures) => number) => median(figures.map(pick));
    const row = {
      name,
      ttftMs: m((f) => f.ttftMs),
      loadMs: m((f) => f.loadMs),
      computeMs: m((f) => f.computeMs),
      reencodeMs: m((f) => f.reencodeMs),
      finalMs: m((f) => f.finalMs),
      reused: figures[0].reusedBlocks,
      computed: figures[0].computedBlocks,
      promptTokens: figures[0].promptTokens,
    };
    console.error(JSON.stringify(row));
    return row;
  };
  const clear = () => ctx.store.deleteModel(ctx.fingerprint);
  const rows = [
    await measure('full mode', { mode: 'full' }),
    await measure('cold, shared-prefix (no KV stored)', { quality: 'shared-prefix' }, clear),
    await measure('warm, shared-prefix (default)', { quality: 'shared-prefix' }),
    await measure('warm, isolated', { quality: 'isolated' }),
    await measure('warm, shared-prefix + boundary recompute 16', { quality: 'shared-prefix', boundaryTokens: 16 }),
  ];
  const full = rows[0].ttftMs;
  const result = {
    date: new Date().toISOString(),
    machine: machineLine(),
    provider: engine.provider,
    runs: RUNS,
    k: K,
    passageTokens: tokens,
    kvStoreBytes: ctx.store.stats().bytes,
    rows: rows.map((r) => ({ ...r, overFull: r.ttftMs / full })),
  };
  await engine.release();
  db.close();
  fs.rmSync(tmp, { recursive: true, force: true });
  fs.mkdirSync('bench-output', { recursive: true });
  fs.writeFileSync('bench-output/ask.json', JSON.stringify(result, null, 2));
  const pct = (x: number) => `${(100 * x).toFixed(1)}%`;
  console.log(
    [
      `${result.date.slice(0, 10)}, ${result.machine}, CPU provider, k = ${K} passages of ~${BLOCK_TOKENS} tokens, ${rows[0].promptTokens} prompt tokens, medians of ${RUNS} runs after a warm-up`,
      '',
      '| path | TTFT (ms) | of full | KV load | prefill | re-encode | final block | blocks reused / computed |',
      '|---|---:|---:|---:|---:|---:|---:|---:|',
      ...result.rows.map(
        (r) =>
          `| ${r.name} | ${r.ttftMs.toFixed(0)} | ${pct(r.overFull)} | ${r.loadMs.toFixed(1)} | ${r.computeMs.toFixed(0)} | ${r.reencodeMs.toFixed(1)} | ${r.finalMs.toFixed(0)} | ${r.reused} / ${r.computed} |`,
      ),
    ].join('\n'),
  );
}

await main();
