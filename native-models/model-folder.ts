// A Hugging Face style ONNX decoder folder: config, tokenizer files, chat template, the ONNX file and
// its external data. Reading it never runs the model; see model-runner.ts for that.
import fs from 'node:fs';
import path from 'node:path';
import crypto from 'node:crypto';
import { ModelLoadError } from './errors.ts';
import { familyQuirks, layerAttentionOf, modelRope, type LayerAttention } from './model-family.ts';
import { UnsupportedRopeError, type RopeParams } from './rope-config.ts';

type Json = Record<string, unknown>;

export interface ModelFolder {
  dir: string;
  /** config.json (Hugging Face form). */
  config: Json;
  /** genai_config.json of onnxruntime-genai exports, when present. */
  genaiConfig?: Json;
  tokenizerJson: Json;
  tokenizerConfig: Json;
  /** The decoder graph; external data files sit beside it. */
  onnxPath: string;
  externalDataPaths: string[];
  chatTemplate?: string;
  eosTokenIds: number[];
  maxPositions: number;
  /** RoPE of every layer (per-layer where the family has local and global layers). */
  rope: RopeParams;
  /** Per layer: full attention or a sliding window (model-family.ts). */
  layerAttention: LayerAttention[];
  /** Declared block fine-tuned (isolated blocks are then the right default). */
  blockFineTuned: boolean;
}

function readJson(file: string, what: string): Json {
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch {
    throw new ModelLoadError(`model folder is missing ${what} (${file})`);
  }
  try {
    return JSON.parse(text) as Json;
  } catch (e) {
    throw new ModelLoadError(`${what} is not valid JSON (${file}): ${(e as Error).message}`);
  }
}

function readOptionalJson(file: string, what: string): Json | undefined {
  return fs.existsSync(file) ? readJson(file, what) : undefined;
}

function findOnnx(dir: string, genai?: Json): string {
  const decoder = (genai?.model as Json | undefined)?.decoder as Json | undefined;
  const candidates = [
    typeof decoder?.filename === 'string' ? path.join(dir, decoder.filename) : undefined,
    path.join(dir, 'onnx', 'model.onnx'),
    path.join(dir, 'model.onnx'),
  ].filter((p): p is string => !!p);
  const found = candidates.find((p) => fs.existsSync(p));
  if (!found) throw new ModelLoadError(`no ONNX file in ${dir} (looked for ${candidates.map((p) => path.relative(dir, p)).join(', ')})`);
  const head = Buffer.alloc(2);
  const fd = fs.openSync(found, 'r');
  try {
    fs.readSync(fd, head, 0, 2, 0);
  } finally {
    fs.closeSync(fd);
  }
  // Every ONNX ModelProto starts with field 1 (ir_version, varint): tag byte 0x08.
  if (head[0] !== 0x08) throw new ModelLoadError(`${found} is not an ONNX model (unexpected file header)`);
  return found;
}

function externalDataOf(onnxPath: string): string[] {
  const dir = path.dirname(onnxPath);
  const base = path.basename(onnxPath);
  return fs
    .readdirSync(dir)
    .filter((f) => f !== base && f.startsWith(base) && /(_data|\.data)(_\d+)?$/.test(f))
    .map((f) => path.join(dir, f))
    .sort();
}

function eosIds(config: Json, generation?: Json): number[] {
  const raw = generation?.eos_token_id ?? config.eos_token_id;
  const list = Array.isArray(raw) ? raw : raw === undefined || raw === null ? [] : [raw];
  return [...new Set(list.filter((x): x is number => typeof x === 'number'))];
}

/** Reads and validates a model folder; errors name the file and the reason. */
export function loadModelFolder(dir: string): ModelFolder {
  if (!fs.existsSync(dir) || !fs.statSync(dir).isDirectory()) throw new ModelLoadError(`model folder not found: ${dir}`);
  const genaiConfig = readOptionalJson(path.join(dir, 'genai_config.json'), 'genai_config.json');
  if (genaiConfig && !fs.existsSync(path.join(dir, 'config.json'))) {
    // the builder writes genai_config.json, which lacks the RoPE theta and scaling re-encoding needs
    throw new ModelLoadError(
      `model folder is missing config.json (${path.join(dir, 'config.json')}): onnxruntime-genai exports do not carry one, but re-encoding stored keys needs its RoPE parameters; copy config.json from the original Hugging Face model`,
    );
  }
  const config = readJson(path.join(dir, 'config.json'), 'config.json');
  const tokenizerJson = readJson(path.join(dir, 'tokenizer.json'), 'tokenizer.json');
  const tokenizerConfig = readOptionalJson(path.join(dir, 'tokenizer_config.json'), 'tokenizer_config.json') ?? {};
  const generation = readOptionalJson(path.join(dir, 'generation_config.json'), 'generation_config.json');
  const onnxPath = findOnnx(dir, genaiConfig);
  const unsupported = familyQuirks(config).unsupported;
  if (unsupported) throw new ModelLoadError(`unsupported model: ${unsupported}`);
  let rope: RopeParams;
  let layerAttention: LayerAttention[];
  try {
    layerAttention = layerAttentionOf(config);
    rope = modelRope(config, layerAttention);
  } catch (e) {
    if (e instanceof UnsupportedRopeError) throw new ModelLoadError(`unsupported model: ${e.message}`, { cause: e });
    throw new ModelLoadError(`config.json: ${(e as Error).message}`, { cause: e });
  }
  const template = tokenizerConfig.chat_template;
  const chatTemplate =
    typeof template === 'string'
      ? template
      : fs.existsSync(path.join(dir, 'chat_template.jinja'))
        ? fs.readFileSync(path.join(dir, 'chat_template.jinja'), 'utf8')
        : undefined;
  const genaiContext = (genaiConfig?.model as Json | undefined)?.context_length;
  const maxPositions = Number(config.max_position_embeddings ?? genaiContext ?? 2048);
  return {
    dir,
    config,
    genaiConfig,
    tokenizerJson,
    tokenizerConfig,
    onnxPath,
    externalDataPaths: externalDataOf(onnxPath),
    chatTemplate,
    eosTokenIds: eosIds(config, generation),
    maxPositions,
    rope,
    layerAttention,
    blockFineTuned: config.block_attention === true || config.quire_block_fine_tuned === true,
  };
}

const fingerprints = new Map<string, string>();

/**
 * SHA-256 over config.json and every ONNX/external-data file: two models share KV only if they are
 * byte-identical. Memoised per (path, size, mtime) since hashing a 1 GB model takes seconds.
 */
export async function modelFingerprint(model: ModelFolder): Promise<string> {
  const files = [path.join(model.dir, 'config.json'), model.onnxPath, ...model.externalDataPaths];
  const key = files
    .map((f) => {
      const st = fs.statSync(f);
      return `${f}:${st.size}:${st.mtimeMs}`;
    })
    .join('|');
  const known = fingerprints.get(key);
  if (known) return known;
  const hash = crypto.createHash('sha256');
  for (const f of files) {
    hash.update(path.basename(f));
    for await (const chunk of fs.createReadStream(f, { highWaterMark: 4 << 20 })) hash.update(chunk as Buffer);
  }
  const digest = hash.digest('hex');
  fingerprints.set(key, digest);
  return digest;
}
