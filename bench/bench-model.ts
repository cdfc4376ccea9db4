// The models shared by the benchmarks, generated once under os.tmpdir() and reused:
// - the bench shape (Qwen2.5-0.5B's shape, vocab 8192, float16 KV; ~30 s, 1.5 GB), or BENCH_MODEL_DIR;
// - issue 15's Llama shape (dim 512, 8 layers, GQA 8/4, float32 KV) with the real Llama 2 tokenizer
//   (32000 tokens) from ../shared/fixtures, or BENCH_LLAMA_MODEL_DIR.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { generateModel, type GenerateOptions } from '../test/tools/generate-model.ts';
import { benchSpec, llamaBenchSpec, type TinyModelSpec } from '../test/tools/tiny-model-spec.ts';

/** The real Llama 2 tokenizer (see ../shared/fixtures/README.md). */
export const LLAMA2_TOKENIZER_DIR = path.resolve('../shared/fixtures/tiny-llama-fp16-genai');

export interface BenchModel {
  /** How tables name it. */
  name: string;
  /** Its short name in wide tables. */
  short: string;
  spec: TinyModelSpec;
  dir(): Promise<string>;
}

async function generatedOnce(dir: string, spec: TinyModelSpec, options: GenerateOptions = {}): Promise<string> {
  if (!fs.existsSync(path.join(dir, 'onnx', 'model.onnx'))) {
    console.error(`generating a bench model in ${dir} ...`);
    await generateModel(dir, spec, options);
  }
  return dir;
}

export const BENCH_SHAPE: BenchModel = {
  name: 'bench shape (Qwen2.5-0.5B shape, vocab 8192, float16 KV)',
  short: 'bench shape',
  spec: benchSpec(),
  dir: () => generatedOnce(process.env.BENCH_MODEL_DIR ?? path.join(os.tmpdir(), 'quire-bench-model'), benchSpec()),
};

export const LLAMA_SHAPE: BenchModel = {
  name: 'Llama shape (dim 512, 8 layers, 8/4 heads, Llama 2 tokenizer, float32 KV)',
  short: 'Llama shape',
  spec: llamaBenchSpec(),
  dir: () =>
    generatedOnce(process.env.BENCH_LLAMA_MODEL_DIR ?? path.join(os.tmpdir(), 'quire-bench-llama'), llamaBenchSpec(), {
      tokenizerFrom: LLAMA2_TOKENIZER_DIR,
    }),
};

export function benchModelDir(): Promise<string> {
  return BENCH_SHAPE.dir();
}
