// npm run bench:ttft [-- options] — time to first token: full mode vs block mode (passage blocks
// already prefilled) on one execution provider, plus block prefill throughput against a bare
// onnxruntime session.run of the same tokens and, on the CPU provider, transformers.js on the same
// prompt. Defaults: CPU provider, the bench-shape model (Qwen2.5-0.5B's shape), contexts of 4/8/16
// blocks of 256 tokens plus a ~50-token question. Results: bench-output/ttft.json (or --out).
//   --provider cpu|webgpu|cuda|auto   --blocks 4,8,16   --shape bench|tiny   --out FILE
//   --full-chunk N   full mode above N prompt tokens prefills in causal chunks of N tokens (the one
//                    forward's attention scores, heads x n x n floats, outgrow a GPU buffer at 16K+)
//   --no-transformers-js
//   --prefill-only   only the block prefill figures (one block per run, batched, bare session.run)
// bench/device-check.sh runs it on a GPU machine (4K/16K/32K on WebGPU and CUDA).
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import ort from 'onnxruntime-node';
import { Engine } from '../native-models/engine.ts';
import { emptyKv, type KvCache } from '../native-models/kv.ts';
import { positionRange, prefillBlocks } from '../native-models/prefill.ts';
import { seededRandom } from '../native-models/seeded-random.ts';
import { PROVIDER_CHOICES, type ProviderChoice } from '../native-models/provider-names.ts';
import { generateModel } from '../test/tools/generate-model.ts';
import { benchSpec, tinySpec } from '../test/tools/tiny-model-spec.ts';
import { machineLine, median, timeInterleaved } from './stats.ts';
import { benchModelDir } from './bench-model.ts';

const BLOCK_TOKENS = 256;
const QUESTION_TOKENS = 50;

const { values: args } = parseArgs({
  options: {
    provider: { type: 'string', default: 'cpu' },
    blocks: { type: 'string', default: '4,8,16' },
    shape: { type: 'string', default: 'bench' },
    out: { type: 'string', default: 'bench-output/ttft.json' },
    'full-chunk': { type: 'string' },
    'no-transformers-js': { type: 'boolean', default: false },
    'prefill-only': { type: 'boolean', default: false },
  },
  strict: true,
});
const PROVIDER = args.provider as ProviderChoice;
if (!PROVIDER_CHOICES.includes(PROVIDER)) throw new Error(`--provider must be one of ${PROVIDER_CHOICES.join(', ')}`);
const CONTEXTS = args.blocks.split(',').map(Number);
if (CONTEXTS.some((n) => !Number.isInteger(n) || n < 1)) throw new Error('--blocks: a comma-separated list of block counts');
if (args.shape !== 'bench' && args.shape !== 'tiny') throw new Error('--shape must be bench or tiny');
const FULL_CHUNK = args['full-chunk'] ? Number(args['full-chunk']) : undefined;
const RUNS = Number(process.env.BENCH_RUNS ?? 3);

function randomIds(n: number, vocab: number, random: () => number): number[] {
  // skip the 4 special tokens so no block contains an EOS
  return Array.from({ length: n }, () => 4 + Math.floor(random() * (vocab - 4)));
}

async function modelDir(): Promise<string> {
  if (args.shape === 'bench') return benchModelDir();
  const dir = path.join(os.tmpdir(), 'quire-bench-tiny');
  if (!fs.existsSync(path.join(dir, 'onnx', 'model.onnx'))) await generateModel(dir, tinySpec({ kvDtype: 'float16' }));
  return dir;
}

/** Full mode's first token: one causal forward (what `--mode full` runs), or causal chunks above --full-chunk. */
async function fullFirstToken(engine: Engine, ids: number[]): Promise<unknown> {
  if (!FULL_CHUNK || ids.length <= FULL_CHUNK) return engine.answer([], ids, { maxNewTokens: 1 });
  let past: KvCache = emptyKv(engine.runner.kvShape);
  let logits: Float32Array | undefined;
  for (let start = 0; start < ids.length; start += FULL_CHUNK) {
    const chunk = ids.slice(start, start + FULL_CHUNK);
    const out = await engine.runner.forward(chunk, positionRange(start, chunk.length), past);
    past = out.present;
    logits = out.logits[0];
  }
  return logits!.indexOf(Math.max(...logits!));
}

async function main(): Promise<void> {
  const dir = await modelDir();
  const spec = args.shape === 'bench' ? benchSpec() : tinySpec({ kvDtype: 'float16' });
  const outFile = path.resolve(args.out);
  fs.mkdirSync(path.dirname(outFile), { recursive: true });
  const engine = await Engine.load(dir, { provider: PROVIDER, providerCache: path.join(path.dirname(outFile), 'provider-choice.json') });
  console.error(`provider: ${engine.provider} (${engine.runner.providerReason})`);
  const random = seededRandom(7);
  const blocks = Array.from({ length: Math.max(...CONTEXTS) }, () => randomIds(BLOCK_TOKENS, spec.vocabSize, random));
  const question = randomIds(QUESTION_TOKENS, spec.vocabSize, random);

  // Block prefill throughput: the engine one block per run, the engine with the blocks batched
  // (prefillBlocks: 4 rows of 256 tokens in one run where the model allows it), and a bare
  // session.run on the same 256-token blocks, in turn.
  const kvs: KvCache[] = [];
  const bare = bareForward(engine);
  const timed = blocks.slice(0, Math.min(4, blocks.length));
  const prefill = await timeInterleaved(RUNS, {
    engine: async () => {
      kvs.length = 0;
      for (const ids of timed) kvs.push(await engine.prefill(ids));
    },
    batched: () => prefillBlocks(engine.runner, timed),
    bare: async () => {
      for (const ids of timed) await bare(ids);
    },
  });
  const prefillTokS = (timed.length * BLOCK_TOKENS) / (median(prefill.engine) / 1000);
  const batchedTokS = (timed.length * BLOCK_TOKENS) / (median(prefill.batched) / 1000);
  const bareTokS = (timed.length * BLOCK_TOKENS) / (median(prefill.bare) / 1000);
  const prefillResult = {
    provider: engine.provider,
    engineTokPerS: prefillTokS,
    batchedTokPerS: batchedTokS,
    batchedRows: engine.runner.batchPrefill ? timed.length : 1,
    batchedOverOneByOne: batchedTokS / prefillTokS,
    bareOrtTokPerS: bareTokS,
    overhead: bareTokS / prefillTokS - 1,
  };
  if (args['prefill-only']) {
    console.log(`${new Date().toISOString().slice(0, 10)}, ${machineLine()}, ${engine.provider} provider (${engine.runner.providerReason}), medians of ${RUNS} interleaved runs after a warm-up`);
    console.log(prefillLine(prefillResult));
    await engine.release();
    return;
  }
  for (const ids of blocks.slice(timed.length)) kvs.push(await engine.prefill(ids));

  const tjs = engine.provider === 'cpu' && !args['no-transformers-js'] ? await transformersJs(dir) : undefined;
  const rows = [];
  for (const n of CONTEXTS) {
    const all = [...blocks.slice(0, n).flat(), ...question];
    const fns: Record<string, () => Promise<unknown>> = {
      block: () => engine.answer(kvs.slice(0, n).map((kv) => ({ kv })), question, { maxNewTokens: 1 }),
      full: () => fullFirstToken(engine, all),
    };
    if (tjs) fns.transformersJs = () => tjs.firstToken(all);
    const t = await timeInterleaved(RUNS, fns);
    const row = {
      promptTokens: all.length,
      fullMs: median(t.full),
      fullMethod: FULL_CHUNK && all.length > FULL_CHUNK ? `causal chunks of ${FULL_CHUNK}` : 'one forward',
      blockMs: median(t.block),
      blockOverFull: median(t.block) / median(t.full),
      ...(tjs ? { transformersJsMs: median(t.transformersJs), fullOverTransformersJs: median(t.full) / median(t.transformersJs) } : {}),
    };
    rows.push(row);
    console.error(JSON.stringify(row));
  }
  await tjs?.dispose();
  await engine.release();

  const result = {
    date: new Date().toISOString(),
    machine: machineLine(),
    provider: engine.provider,
    providerReason: engine.runner.providerReason,
    onnxruntime: ort.env.versions.node ?? ort.env.versions.common,
    runs: RUNS,
    model: { shape: args.shape, layers: spec.layers, hidden: spec.hiddenSize, heads: spec.heads, kvHeads: spec.kvHeads, vocab: spec.vocabSize, kv: spec.kvDtype },
    prefill: prefillResult,
    ttft: rows,
  };
  fs.writeFileSync(outFile, JSON.stringify(result, null, 2));
  console.log(table(result));
}

/** transformers.js (same onnxruntime-node) generating one token: loaded only for this comparison (a dev dependency). */
async function transformersJs(dir: string): Promise<{ firstToken(ids: number[]): Promise<unknown>; dispose(): Promise<unknown> }> {
  const { AutoModelForCausalLM, env, Tensor } = await import('@huggingface/transformers');
  env.allowRemoteModels = false;
  env.localModelPath = path.dirname(dir);
  const model = await AutoModelForCausalLM.from_pretrained(path.basename(dir), { dtype: 'fp32', device: 'cpu', use_external_data_format: true });
  return {
    firstToken: (ids) =>
      model.generate({
        input_ids: new Tensor('int64', BigInt64Array.from(ids, BigInt), [1, ids.length]),
        attention_mask: new Tensor('int64', new BigInt64Array(ids.length).fill(1n), [1, ids.length]),
        max_new_tokens: 1,
        do_sample: false,
      }),
    dispose: () => model.dispose(),
  };
}

/** A block prefill as one session.run with hand-made feeds (tensors built inside, as the engine does): the floor for our overhead. */
function bareForward(engine: Engine): (ids: number[]) => Promise<unknown> {
  const session = engine.runner.session;
  const shape = engine.runner.kvShape;
  const empty = emptyKv(shape);
  return (ids) => {
    const feeds: Record<string, ort.Tensor> = {
      input_ids: new ort.Tensor('int64', BigInt64Array.from(ids, BigInt), [1, ids.length]),
      attention_mask: new ort.Tensor('int64', new BigInt64Array(ids.length).fill(1n), [1, ids.length]),
      position_ids: new ort.Tensor('int64', BigInt64Array.from(ids.keys(), BigInt), [1, ids.length]),
    };
    for (let l = 0; l < shape.layers; l++) {
      feeds[`past_key_values.${l}.key`] = new ort.Tensor(shape.dtype, empty.keys[l], [1, shape.kvHeads, 0, shape.headDim]);
      feeds[`past_key_values.${l}.value`] = new ort.Tensor(shape.dtype, empty.values[l], [1, shape.kvHeads, 0, shape.headDim]);
    }
    return session.run(feeds);
  };
}

interface Row {
  promptTokens: number;
  fullMs: number;
  fullMethod: string;
  blockMs: number;
  blockOverFull: number;
  transformersJsMs?: number;
  fullOverTransformersJs?: number;
}

interface PrefillFigures {
  provider: string;
  engineTokPerS: number;
  batchedTokPerS: number;
  batchedRows: number;
  batchedOverOneByOne: number;
  bareOrtTokPerS: number;
  overhead: number;
}

function prefillLine(p: PrefillFigures): string {
  return (
    `Block prefill on ${p.provider}: ${p.engineTokPerS.toFixed(0)} tokens/s one block per run (engine) vs ${p.bareOrtTokPerS.toFixed(0)} tokens/s (bare session.run): overhead ${(100 * p.overhead).toFixed(1)}%; ` +
    `batched (${p.batchedRows} blocks per run): ${p.batchedTokPerS.toFixed(0)} tokens/s, ${p.batchedOverOneByOne.toFixed(3)}x one block per run`
  );
}

function table(r: { date: string; machine: string; provider: string; ttft: Row[]; prefill: PrefillFigures }): string {
  const pct = (x: number) => `${(100 * x).toFixed(1)}%`;
  const withTjs = r.ttft.some((x) => x.transformersJsMs !== undefined);
  const lines = [
    `${r.date.slice(0, 10)}, ${r.machine}, ${r.provider} provider, medians of ${RUNS} interleaved runs after a warm-up`,
    '',
    `| prompt tokens | full TTFT (ms) | block TTFT (ms) | block/full |${withTjs ? ' transformers.js TTFT (ms) | full/transformers.js |' : ' full mode |'}`,
    `|---:|---:|---:|---:|${withTjs ? '---:|---:|' : '---|'}`,
    ...r.ttft.map(
      (x) =>
        `| ${x.promptTokens} | ${x.fullMs.toFixed(0)} | ${x.blockMs.toFixed(1)} | ${pct(x.blockOverFull)} |` +
        (withTjs ? ` ${x.transformersJsMs!.toFixed(0)} | ${x.fullOverTransformersJs!.toFixed(3)} |` : ` ${x.fullMethod} |`),
    ),
    '',
    prefillLine(r.prefill),
  ];
  return lines.join('\n');
}

await main();
