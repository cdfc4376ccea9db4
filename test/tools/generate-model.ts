// Writes a seeded random decoder as a model folder in the layout of the spec's export style
// (native-models/export-style.ts): config.json, generation_config.json, tokenizer files, and the
// ONNX graph with its weights in external data, written by optimum-graph.ts (Optimum /
// transformers.js: onnx/model.onnx + onnx/model.onnx_data) or genai-graph.ts (onnxruntime-genai's
// builder: model.onnx + model.onnx.data + genai_config.json at the top). Every graph can be
// checked against the float64 reference forward (reference.ts), which computes with the same
// stored weights (weight-formats.ts).
import { existsSync } from 'node:fs';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { EXPORT_STYLES } from '../../native-models/export-style.ts';
import { buildGenaiGraph, genaiConfigOf } from './genai-graph.ts';
import { buildOptimumGraph } from './optimum-graph.ts';
import { buildWeights, specToHfConfig, type TinyModelSpec } from './tiny-model-spec.ts';
import { BOS_TOKEN_ID, EOS_TOKEN_ID, generateTokenizer, PAD_TOKEN_ID } from './generate-tokenizer.ts';

/** Where the graph and its external data go, relative to the folder, by layout. */
export function onnxPathOf(spec: TinyModelSpec): { model: string; data: string } {
  return EXPORT_STYLES[spec.exportStyle].layout === 'genai'
    ? { model: 'model.onnx', data: 'model.onnx.data' }
    : { model: path.join('onnx', 'model.onnx'), data: path.join('onnx', 'model.onnx_data') };
}

export interface GenerateOptions {
  /**
   * A folder whose tokenizer.json, tokenizer_config.json (and special_tokens_map.json if present)
   * are copied instead of generating a tokenizer: a real tokenizer on a generated body. Its vocabulary
   * must be spec.vocabSize, and its BOS / EOS / pad ids those of the generated config (1 / 2 / 0, as
   * Llama 2's <s> / </s> / <unk>).
   */
  tokenizerFrom?: string;
}

/** Writes the model folder for `spec` (see the file comment for what goes where). */
export async function generateModel(dir: string, spec: TinyModelSpec, options: GenerateOptions = {}): Promise<void> {
  const style = EXPORT_STYLES[spec.exportStyle];
  if (!style) throw new RangeError(`unknown export style ${String(spec.exportStyle)}`);
  if (spec.heads % spec.kvHeads !== 0) throw new RangeError(`heads ${spec.heads} is not a multiple of kvHeads ${spec.kvHeads}`);
  if (style.activations === 'float16' && spec.kvDtype !== 'float16') {
    throw new RangeError(`${style.id} keeps its KV cache in float16: kvDtype must be float16`);
  }
  const files = onnxPathOf(spec);
  await mkdir(path.dirname(path.join(dir, files.model)), { recursive: true });
  await writeFile(path.join(dir, 'config.json'), JSON.stringify(specToHfConfig(spec), null, 2));
  const generationConfig = {
    bos_token_id: spec.addBos ? BOS_TOKEN_ID : null,
    eos_token_id: EOS_TOKEN_ID,
    pad_token_id: PAD_TOKEN_ID,
  };
  await writeFile(path.join(dir, 'generation_config.json'), JSON.stringify(generationConfig, null, 2));
  if (options.tokenizerFrom) await copyTokenizer(options.tokenizerFrom, dir, spec);
  else await generateTokenizer(dir, spec);
  const build = style.layout === 'genai' ? buildGenaiGraph : buildOptimumGraph;
  const { model, graph } = build(spec, buildWeights(spec), path.basename(files.data));
  if (style.layout === 'genai') {
    await writeFile(path.join(dir, 'genai_config.json'), JSON.stringify(genaiConfigOf(spec, EOS_TOKEN_ID, PAD_TOKEN_ID), null, 4));
  }
  await graph.externalData.write(path.join(dir, files.data));
  // last, so an interrupted run leaves no model file that points at incomplete weights
  await writeFile(path.join(dir, files.model), model);
}

async function copyTokenizer(from: string, dir: string, spec: TinyModelSpec): Promise<void> {
  const tokenizer = JSON.parse(await readFile(path.join(from, 'tokenizer.json'), 'utf8')) as { model: { vocab: Record<string, number> } };
  const size = Object.keys(tokenizer.model.vocab).length;
  if (size !== spec.vocabSize) throw new RangeError(`the tokenizer in ${from} has ${size} tokens, the spec ${spec.vocabSize}`);
  for (const name of ['tokenizer.json', 'tokenizer_config.json', 'special_tokens_map.json']) {
    // read and written, not copied: the fixtures are read-only and the copies need not be
    if (existsSync(path.join(from, name))) await writeFile(path.join(dir, name), await readFile(path.join(from, name)));
  }
}
