// `quire models list|download|use`: the curated models, downloading one (resumable, verified) into
// the data directory, and choosing the model `quire ask` uses (a catalog id or a local folder).
import fs from 'node:fs';
import path from 'node:path';
import { CATALOG, catalogModel, DEFAULT_MODEL_ID, modelDir, readSettings, resolveModelDir, writeSettings } from '../models/catalog.ts';
import { downloadModel, HUB_URL } from '../models/download.ts';
import { describeDownloadError } from '../models/download-errors.ts';
import { UsageError } from './args.ts';
import { HUB, JSON_OUTPUT, type ParsedArgs } from './options.ts';
import { formatBytes, LiveLine } from './progress.ts';
import { escapeForTerminal } from './terminal-text.ts';

export async function modelsCommand(args: ParsedArgs): Promise<void> {
  const [action, target] = args.positionals;
  const chosen = readSettings().model ?? DEFAULT_MODEL_ID;
  if (action === 'list' || action === undefined) {
    const rows = CATALOG.map((m) => ({
      id: m.id,
      repo: m.repo,
      file: m.files.find((f) => (f.local ?? f.remote) === 'onnx/model.onnx')?.remote,
      exportStyle: m.exportStyle,
      approxMB: Math.round(m.approxBytes / 1e6),
      downloaded: fs.existsSync(path.join(modelDir(m.id), '.complete')),
      inUse: m.id === chosen,
      recommended: m.id === DEFAULT_MODEL_ID,
      description: m.description,
    }));
    if (args.has(JSON_OUTPUT)) {
      process.stdout.write(`${JSON.stringify({ models: rows, inUse: chosen })}\n`);
      return;
    }
    for (const r of rows) {
      process.stdout.write(
        `${r.inUse ? '*' : ' '} ${r.id.padEnd(30)} ~${String(r.approxMB).padStart(5)} MB  ${r.downloaded ? 'downloaded ' : '           '}${r.repo} (${r.file}, ${r.exportStyle})${r.recommended ? '  [recommended]' : ''}\n`,
      );
    }
    if (!catalogModel(chosen)) process.stdout.write(`* in use: local folder ${escapeForTerminal(chosen)}\n`);
    return;
  }
  if (action === 'download') {
    const model = catalogModel(target ?? DEFAULT_MODEL_ID);
    if (!model) throw new UsageError(`unknown model "${target}" (see "quire models list")`);
    const controller = new AbortController();
    process.once('SIGINT', () => controller.abort());
    const line = new LiveLine(process.stderr);
    const hubUrl = args.get(HUB) ?? process.env.HF_ENDPOINT ?? HUB_URL;
    let dir: string;
    try {
      dir = await downloadModel(model, modelDir(model.id), {
        hubUrl,
        accessToken: process.env.HF_TOKEN,
        signal: controller.signal,
        onProgress: (p) =>
          line.show(`${formatBytes(p.bytes)} / ${formatBytes(p.total)}  ${p.file}`, { final: p.total > 0 && p.bytes >= p.total }),
      });
    } catch (e) {
      // Ctrl-C stays a cancel (exit 130); anything else is said as the app says it, not "fetch failed"
      if ((e as Error).name === 'AbortError') throw e;
      throw new Error(`${model.id}: ${describeDownloadError(e, hubUrl)}`, { cause: e });
    } finally {
      line.finish();
    }
    process.stdout.write(`${dir}\n`);
    return;
  }
  if (action === 'use') {
    if (!target) throw new UsageError('quire models use ID|DIR');
    const resolved = catalogModel(target) ? target : path.resolve(target);
    resolveModelDir(resolved); // throws if not downloaded / not a folder
    writeSettings({ ...readSettings(), model: resolved });
    process.stdout.write(`using ${escapeForTerminal(resolved)}\n`);
    return;
  }
  throw new UsageError(`unknown action "${action}" (list, download or use)`);
}
