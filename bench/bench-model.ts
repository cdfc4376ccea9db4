// The bench-shape model (Qwen2.5-0.5B's shape) shared by the benchmarks: generated once (~30 s,
// 1.5 GB) under os.tmpdir()/quire-bench-model, or BENCH_MODEL_DIR, and reused.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { generateModel } from '../test/tools/generate-model.ts';
import { benchSpec } from '../test/tools/tiny-model-spec.ts';

export async function benchModelDir(): Promise<string> {
  const dir = process.env.BENCH_MODEL_DIR ?? path.join(os.tmpdir(), 'quire-bench-model');
  if (!fs.existsSync(path.join(dir, 'onnx', 'model.onnx'))) {
    console.error(`generating the bench model in ${dir} ...`);
    await generateModel(dir, benchSpec());
  }
  return dir;
}
