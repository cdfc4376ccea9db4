// npm run bench:ttft — time to first token on the bench-shape model (Qwen2.5-0.5B's shape), CPU:
// full mode vs block mode (passage blocks already prefilled) vs transformers.js on the same prompt,
// at 1K/2K/4K tokens of 256-token blocks plus a ~50-token question; and block prefill throughput
// against a bare onnxruntime session.run of the same tokens. Results: bench-output/ttft.json.
import fs from 'node:fs';
import path from 'node:path';
import ort from 'onnxruntime-node';
import { AutoModelForCausalLM, env, Tensor } from '@huggingface/transformers';
import { Engine } from '../native-models/engine.ts';
import { emptyKv, type KvCache } from '../native-models/kv.ts';
import { seededRandom } from '../native-models/seeded-random.ts';
import { benchSpec } from '../test/tools/tiny-model-spec.ts';
import { machineLine, median, timeInterleaved } from './stats.ts';
import { benchModelDir } from './bench-model.ts';

const BLOCK_TOKENS = 256;
const QUESTION_TOKENS = 50;
const CONTEXTS = [4, 8, 16]; // blocks: 1K, 2K, 4K tokens
const RUNS = Number(process.env.BENCH_RUNS ?? 3);

function randomIds(n: number, vocab: number, random: () => number): number[] {
  // skip the 4 special tokens so no block contains an EOS
  return Array.from({ length: n }, () => 4 + Math.floor(random() * (vocab - 4)));
}

async function main(): Promise<void> {
  const modelDir = await benchModelDir();
  const spec = benchSpec();
  const engine = await Engine.load(modelDir, { provider: 'cpu' });
  const random = seededRandom(7);
  const blocks = Array.from({ length: Math.max(...CONTEXTS) }, () => randomIds(BLOCK_TOKENS, spec.vocabSize, random));
  const question = randomIds(QUESTION_TOKENS, spec.vocabSize, random);

  // Block prefill throughput: the engine vs a bare session.run on the same 256-token blocks, in turn.
  const kvs: KvCache[] = [];
  const bare = bareForward(engine);
  const prefill = await timeInterleaved(RUNS, {
    engine: async () => {
      kvs.length = 0;
      for (const ids of blocks.slice(0, 4)) kvs.push(await engine.prefill(ids));
    },
    bare: async () => {
      for (const ids of blocks.slice(0, 4)) await bare(ids);
    },
  });
  for (const ids of blocks.slice(4)) kvs.push(await engine.prefill(ids));
  const prefillTokS = (4 * BLOCK_TOKENS) / (median(prefill.engine) / 1000);
  const bareTokS = (4 * BLOCK_TOKENS) / (median(prefill.bare) / 1000);

  env.allowRemoteModels = false;
  env.localModelPath = path.dirname(modelDir);
  const tjs = await AutoModelForCausalLM.from_pretrained(path.basename(modelDir), {
    dtype: 'fp32',
    device: 'cpu',
    use_external_data_format: true,
  });

  const rows = [];
  for (const n of CONTEXTS) {
    const all = [...blocks.slice(0, n).flat(), ...question];
    const input = new Tensor('int64', BigInt64Array.from(all, BigInt), [1, all.length]);
    const mask = new Tensor('int64', new BigInt64Array(all.length).fill(1n), [1, all.length]);
    const t = await timeInterleaved(RUNS, {
      block: () => engine.answer(kvs.slice(0, n).map((kv) => ({ kv })), question, { maxNewTokens: 1 }),
      full: () => engine.answer([], all, { maxNewTokens: 1 }),
      transformersJs: () => tjs.generate({ input_ids: input, attention_mask: mask, max_new_tokens: 1, do_sample: false }),
    });
    const [block, full, transformersJs] = [t.block, t.full, t.transformersJs];
    const row = {
      promptTokens: all.length,
      fullMs: median(full),
      blockMs: median(block),
      blockOverFull: median(block) / median(full),
      transformersJsMs: median(transformersJs),
      fullOverTransformersJs: median(full) / median(transformersJs),
    };
    rows.push(row);
    console.error(JSON.stringify(row));
  }
  await tjs.dispose();
  await engine.release();

  const result = {
    date: new Date().toISOString(),
    machine: machineLine(),
    provider: engine.provider,
    runs: RUNS,
    model: { layers: spec.layers, hidden: spec.hiddenSize, heads: spec.heads, kvHeads: spec.kvHeads, vocab: spec.vocabSize, kv: spec.kvDtype },
    prefill: { engineTokPerS: prefillTokS, bareOrtTokPerS: bareTokS, overhead: bareTokS / prefillTokS - 1 },
    ttft: rows,
  };
  fs.mkdirSync('bench-output', { recursive: true });
  fs.writeFileSync('bench-output/ttft.json', JSON.stringify(result, null, 2));
  console.log(table(result));
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

function table(r: {
  date: string;
  machine: string;
  ttft: { promptTokens: number; fullMs: number; blockMs: number; blockOverFull: number; transformersJsMs: number; fullOverTransformersJs: number }[];
  prefill: { engineTokPerS: number; bareOrtTokPerS: number; overhead: number };
}): string {
  const pct = (x: number) => `${(100 * x).toFixed(1)}%`;
  const lines = [
    `${r.date.slice(0, 10)}, ${r.machine}, CPU provider, medians of ${RUNS} interleaved runs after a warm-up`,
    '',
    '| prompt tokens | full TTFT (ms) | block TTFT (ms) | block/full | transformers.js TTFT (ms) | full/transformers.js |',
    '|---:|---:|---:|---:|---:|---:|',
    ...r.ttft.map(
      (x) =>
        `| ${x.promptTokens} | ${x.fullMs.toFixed(0)} | ${x.blockMs.toFixed(1)} | ${pct(x.blockOverFull)} | ${x.transformersJsMs.toFixed(0)} | ${x.fullOverTransformersJs.toFixed(3)} |`,
    ),
    '',
    `Block prefill: ${r.prefill.engineTokPerS.toFixed(0)} tokens/s (engine) vs ${r.prefill.bareOrtTokPerS.toFixed(0)} tokens/s (bare session.run): overhead ${pct(r.prefill.overhead)}`,
  ];
  return lines.join('\n');
}

await main();
