// The curated models: small instruct models with ONNX exports on the Hugging Face hub that fit the
// engine (decoder with past_key_values, RoPE). Sizes are approximate (the hub's listing is the truth
// at download time). The chosen ONNX file is saved as onnx/model.onnx, where the engine looks.
// Not exercised against the real hub here (no network in tests); the download path is tested on a
// local server that serves a generated model in the hub's URL layout, and each entry's export style
// and family run as a generated look-alike in test/catalog-styles.test.ts.
import fs from 'node:fs';
import path from 'node:path';
import { EXPORT_STYLES, type ExportStyleId } from '../../native-models/export-style.ts';
import { quireHome } from '../app-paths.ts';

export interface CatalogFile {
  /** Path in the hub repository. */
  remote: string;
  /** Path in the local model folder (default: the same). */
  local?: string;
  /** A missing optional file is skipped (e.g. generation_config.json). */
  optional?: boolean;
}

export interface CatalogModel {
  id: string;
  repo: string;
  revision: string;
  description: string;
  /** Approximate download size in bytes. */
  approxBytes: number;
  /** How the ONNX file was exported (native-models/export-style.ts). */
  exportStyle: ExportStyleId;
  files: CatalogFile[];
}

const meta = (): CatalogFile[] => [
  { remote: 'config.json' },
  { remote: 'tokenizer.json' },
  { remote: 'tokenizer_config.json' },
  { remote: 'generation_config.json', optional: true },
];

/** The style's ONNX file, saved where the engine looks. */
const onnxOf = (style: ExportStyleId): CatalogFile => ({ remote: EXPORT_STYLES[style].onnxFile, local: 'onnx/model.onnx' });

export const CATALOG: readonly CatalogModel[] = [
  {
    id: 'qwen2.5-0.5b-instruct-q4f16',
    repo: 'onnx-community/Qwen2.5-0.5B-Instruct',
    revision: 'main',
    description: 'Qwen2.5 0.5B Instruct, 4-bit weights / fp16 activations: small and fast on CPU',
    approxBytes: 490e6,
    exportStyle: 'transformers.js-q4f16',
    files: [...meta(), onnxOf('transformers.js-q4f16')],
  },
  {
    id: 'qwen2.5-0.5b-instruct-fp16',
    repo: 'onnx-community/Qwen2.5-0.5B-Instruct',
    revision: 'main',
    description: 'Qwen2.5 0.5B Instruct, fp16 weights: best fidelity for its size, for GPUs',
    approxBytes: 990e6,
    exportStyle: 'transformers.js-fp16',
    files: [...meta(), onnxOf('transformers.js-fp16')],
  },
  {
    id: 'smollm2-360m-instruct-q4f16',
    repo: 'HuggingFaceTB/SmolLM2-360M-Instruct',
    revision: 'main',
    description: 'SmolLM2 360M Instruct, 4-bit: the smallest, for slow machines',
    approxBytes: 370e6,
    exportStyle: 'transformers.js-q4f16',
    files: [...meta(), onnxOf('transformers.js-q4f16')],
  },
  {
    id: 'llama-3.2-1b-instruct-q4f16',
    repo: 'onnx-community/Llama-3.2-1B-Instruct',
    revision: 'main',
    description: 'Llama 3.2 1B Instruct, 4-bit: stronger answers, about twice the cost of Qwen2.5 0.5B',
    approxBytes: 1.1e9,
    exportStyle: 'transformers.js-q4f16',
    files: [...meta(), onnxOf('transformers.js-q4f16')],
  },
];

export const DEFAULT_MODEL_ID = CATALOG[0].id;

export function catalogModel(id: string): CatalogModel | undefined {
  return CATALOG.find((m) => m.id === id);
}

export function modelsDir(): string {
  return path.join(quireHome(), 'models');
}

/** Where a catalog model lives once downloaded. */
export function modelDir(id: string): string {
  return path.join(modelsDir(), id);
}

interface Settings {
  /** A catalog id or a local folder. */
  model?: string;
}

function settingsPath(): string {
  return path.join(quireHome(), 'settings.json');
}

export function readSettings(): Settings {
  try {
    return JSON.parse(fs.readFileSync(settingsPath(), 'utf8')) as Settings;
  } catch {
    return {};
  }
}

export function writeSettings(settings: Settings): void {
  fs.mkdirSync(quireHome(), { recursive: true });
  const tmp = `${settingsPath()}.tmp`;
  fs.writeFileSync(tmp, JSON.stringify(settings, null, 2));
  fs.renameSync(tmp, settingsPath());
}

/**
 * A model folder from a catalog id or a path (or the model chosen with `quire models use`, or the
 * default). Throws with a hint when a catalog model is not downloaded yet.
 */
export function resolveModelDir(idOrDir?: string): string {
  const wanted = idOrDir ?? readSettings().model ?? DEFAULT_MODEL_ID;
  if (catalogModel(wanted)) {
    const dir = modelDir(wanted);
    if (!fs.existsSync(path.join(dir, '.complete'))) {
      throw new Error(`model ${wanted} is not downloaded: run "quire models download ${wanted}"`);
    }
    return dir;
  }
  if (fs.existsSync(wanted) && fs.statSync(wanted).isDirectory()) return path.resolve(wanted);
  throw new Error(`"${wanted}" is neither a model folder nor a catalog id (see "quire models list")`);
}
