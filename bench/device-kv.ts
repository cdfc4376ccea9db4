// npm run bench:device-kv [-- options] — decode steps on the WebGPU provider with the KV kept on
// the device (SessionOptions.kvOnDevice) vs copied to the CPU and back at every step: the KV bytes
// each generated token moves (counted by the runner, exact) and the time per token (medians of
// interleaved runs). Needs a WebGPU adapter. Results: bench-output/device-kv.json (or --out).
//   --shape tiny|bench   --past 256,1024   --tokens 16   --out FILE
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import ort from 'onnxruntime-node';
import { describeAdapter, webGpuAdapter } from '../native-models/gpu-adapter.ts';
import { Engine } from '../native-models/engine.ts';
import { kvBytesPerToken } from '../native-models/device-kv.ts';
import { DecodeKv } from '../native-models/decode-kv.ts';
import { emptyKv, type KvCache } from '../native-models/kv.ts';
import { positionRange } from '../native-models/prefill.ts';
import { seededRandom } from '../native-models/seeded-random.ts';
import { generateModel } from '../test/tools/generate-model.ts';
import { tinySpec } from '../test/tools/tiny-model-spec.ts';
import { benchModelDir } from './bench-model.ts';
import { machineLine, median, timeInterleaved } from './stats.ts';

const { values: args } = parseArgs({
  options: {
    shape: { type: 'string', default: 'tiny' },
    past: { type: 'string', default: '256,1024' },
    tokens: { type: 'string', default: '16' },
    out: { type: 'string', default: 'bench-output/device-kv.json' },
  },
  strict: true,
});
const PASTS = args.past.split(',').map(Number);
const TOKENS = Number(args.tokens);
const RUNS = Number(process.env.BENCH_RUNS ?? 3);

async function modelDir(): Promise<string> {
  if (args.shape === 'bench') return benchModelDir();
  const dir = path.join(os.tmpdir(), 'quire-bench-tiny');
  if (!fs.existsSync(path.join(dir, 'onnx', 'model.onnx'))) await generateModel(dir, tinySpec({ kvDtype: 'float16' }));
  return dir;
}

/** TOKENS decode steps of fixed tokens after `past`, as decode() runs them; returns the KV bytes moved. */
async function decodeSteps(engine: Engine, past: KvCache, tokens: number[]): Promise<number> {
  const before = engine.runner.kvTraffic.uploadedBytes + engine.runner.kvTraffic.downloadedBytes;
  const kv = new DecodeKv(engine.runner);
  try {
    let step = await kv.forward([tokens[0]], [past.tokens], past);
    for (let i = 1; i < tokens.length; i++) step = await kv.forward([tokens[i]], [past.tokens + i], step.present);
    await kv.toCpu(step.present);
  } finally {
    kv.release();
  }
  return engine.runner.kvTraffic.uploadedBytes + engine.runner.kvTraffic.downloadedBytes - before;
}

async function main(): Promise<void> {
  const dir = await modelDir();
  const device = await Engine.load(dir, { provider: 'webgpu', kvOnDevice: true });
  const copied = await Engine.load(dir, { provider: 'webgpu' });
  const shape = device.runner.kvShape;
  const vocab = Number(device.model.config.vocab_size);
  const random = seededRandom(11);
  const ids = (n: number) => Array.from({ length: n }, () => 4 + Math.floor(random() * (vocab - 4)));
  const rows = [];
  for (const pastTokens of PASTS) {
    // one past for both, prefilled on the CPU-copy runner in 256-token chunks
    let past: KvCache = emptyKv(shape);
    for (let at = 0; at < pastTokens; at += 256) {
      const chunk = ids(Math.min(256, pastTokens - at));
      past = (await copied.runner.forward(chunk, positionRange(at, chunk.length), past)).present;
    }
    const tokens = ids(TOKENS);
    const bytes = { onDevice: 0, copied: 0 };
    const t = await timeInterleaved(RUNS, {
      onDevice: async () => (bytes.onDevice = await decodeSteps(device, past, tokens)),
      copied: async () => (bytes.copied = await decodeSteps(copied, past, tokens)),
    });
    const row = {
      pastTokens,
      tokens: TOKENS,
      kvBytesPerTokenOnDevice: bytes.onDevice / TOKENS,
      kvBytesPerTokenCopied: bytes.copied / TOKENS,
      msPerTokenOnDevice: median(t.onDevice) / TOKENS,
      msPerTokenCopied: median(t.copied) / TOKENS,
    };
    rows.push(row);
    console.error(JSON.stringify(row));
  }
  await device.release();
  await copied.release();
  const result = {
    date: new Date().toISOString(),
    machine: machineLine(),
    adapter: describeAdapter(await webGpuAdapter()),
    onnxruntime: ort.env.versions.node ?? ort.env.versions.common,
    runs: RUNS,
    model: { shape: args.shape, ...shape, kvBytesPerToken: kvBytesPerToken(shape) },
    rows,
  };
  const outFile = path.resolve(args.out);
  fs.mkdirSync(path.dirname(outFile), { recursive: true });
  fs.writeFileSync(outFile, JSON.stringify(result, null, 2));
  const kib = (b: number) => (b / 1024).toFixed(1);
  console.log(`${result.date.slice(0, 10)}, ${result.machine}, ${result.adapter}, medians of ${RUNS} interleaved runs after a warm-up`);
  console.log('');
  console.log(`KV KiB per generated token, over ${TOKENS} tokens: on the device that is the past uploaded and the final KV downloaded once, nothing per step`);
  console.log('');
  console.log('| past tokens | KV KiB/token copied | KV KiB/token on device | ms/token copied | ms/token on device | ratio |');
  console.log('|---:|---:|---:|---:|---:|---:|');
  for (const r of rows) {
    console.log(
      `| ${r.pastTokens} | ${kib(r.kvBytesPerTokenCopied)} | ${kib(r.kvBytesPerTokenOnDevice)} | ${r.msPerTokenCopied.toFixed(1)} | ${r.msPerTokenOnDevice.toFixed(1)} | ${(r.msPerTokenOnDevice / r.msPerTokenCopied).toFixed(3)} |`,
    );
  }
}

await main();
