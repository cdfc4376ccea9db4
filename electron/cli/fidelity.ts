// `quire fidelity`: how far block attention moves a model's next-token distributions from full
// attention over the same tokens, per quality mode, boundary recompute and KV codec
// (electron/answering/fidelity.ts measures; fidelity-prompts.ts makes the prompts). Text: a table;
// --json: one FidelityReport object.
import fs from 'node:fs';
import path from 'node:path';
import { openDatabase } from '../../db/open.ts';
import { Engine } from '../../native-models/engine.ts';
import { fidelityConfigs, measureFidelity, type FidelityPrompt, type FidelityReport } from '../answering/fidelity.ts';
import { builtInPromptSet, libraryPrompts, loadPromptFile, tokenizePromptFile, tokenizeTextPrompt } from '../answering/fidelity-prompts.ts';
import { STORY_PROMPTS } from '../answering/fidelity-stories.ts';
import { dataDirForDb, defaultDbPath, providerChoicePath } from '../app-paths.ts';
import { resolveModelDir } from '../models/catalog.ts';
import { providerOption } from './app-defaults.ts';
import { BOUNDARY_LIST, CODEC_LIST, DB, FIDELITY_MODE_LIST, JSON_OUTPUT, MODEL, PROMPTS, type ParsedArgs } from './options.ts';
import { LiveLine } from './progress.ts';
import { escapeForTerminal } from './terminal-text.ts';

export async function fidelityCommand(args: ParsedArgs): Promise<void> {
  const json = args.has(JSON_OUTPUT);
  const modelArg = args.get(MODEL);
  const dataDir = dataDirForDb(args.get(DB));
  const modelDir = resolveModelDir(modelArg);
  const configs = fidelityConfigs(args.get(FIDELITY_MODE_LIST)!, args.get(BOUNDARY_LIST)!, args.get(CODEC_LIST)!);
  // a bad prompt file fails before a model of a gigabyte or more is loaded
  const promptFile = args.get(PROMPTS) === undefined ? undefined : loadPromptFile(args.get(PROMPTS)!);
  const engine = await Engine.load(modelDir, { provider: providerOption(args, dataDir), providerCache: providerChoicePath(dataDir) });
  try {
    const { prompts, source } = promptFile
      ? { prompts: tokenizePromptFile(engine, promptFile), source: path.basename(promptFile.file) }
      : builtInPrompts(engine, args);
    const progress = new LiveLine(process.stderr);
    if (!json) process.stderr.write(`${prompts.length} prompts (${source}), ${configs.length} rows, provider ${engine.provider}\n`);
    const controller = new AbortController();
    process.once('SIGINT', () => controller.abort());
    const rows = await measureFidelity(engine, prompts, configs, {
      signal: controller.signal,
      onProgress: (done, total) => progress.show(`prompt ${done}/${total}`, { final: done === total }),
    });
    const report: FidelityReport = { model: modelArg ?? modelDir, prompts: prompts.length, rows };
    if (json) {
      process.stdout.write(`${JSON.stringify(report)}\n`);
      return;
    }
    process.stdout.write(formatTable(report));
  } finally {
    await engine.release();
  }
}

/** Without --prompts: the built-in set that fits the model (fidelity-prompts.ts). */
function builtInPrompts(engine: Engine, args: ParsedArgs): { prompts: FidelityPrompt[]; source: string } {
  if (builtInPromptSet(engine) === 'stories') {
    return { prompts: STORY_PROMPTS.map((p) => tokenizeTextPrompt(engine, p)), source: 'built-in stories: the model has no chat template' };
  }
  const dbPath = args.get(DB) ?? defaultDbPath();
  if (!fs.existsSync(dbPath)) throw new Error(`no database at ${dbPath}: index a folder first (quire index), pass --db PATH, or give --prompts FILE.jsonl`);
  const db = openDatabase(dbPath, { readonly: true });
  try {
    const { prompts, questions } = libraryPrompts(db, engine);
    if (prompts.length === 0) throw new Error(`the library at ${dbPath} has no indexed passages to make prompts of: index a folder first, or give --prompts FILE.jsonl`);
    return { prompts, source: `questions from the library: ${questions.map((q) => JSON.stringify(escapeForTerminal(q))).join(', ')}` };
  } finally {
    db.close();
  }
}

function formatTable(r: FidelityReport): string {
  const header = ['mode', 'boundary', 'codec', 'klMean (nats)', 'top1'];
  const cells = r.rows.map((x) => [x.mode, String(x.boundaryTokens), x.codec, x.klMean === 0 ? '0' : x.klMean.toExponential(3), `${(100 * x.top1).toFixed(1)}%`]);
  const widths = header.map((h, i) => Math.max(h.length, ...cells.map((c) => c[i].length)));
  const line = (c: string[]) => c.map((v, i) => (i < 3 ? v.padEnd(widths[i]) : v.padStart(widths[i]))).join('  ');
  return [
    `${escapeForTerminal(r.model)}: ${r.prompts} prompts; KL(full || mode) per position of the final block, mean over positions then prompts; top1: argmax agrees with full`,
    line(header),
    ...cells.map(line),
    '',
  ].join('\n');
}
