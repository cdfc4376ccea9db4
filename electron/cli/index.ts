// `quire index <folder>...`: index folders into the database (incremental; safe to kill and rerun).
// Progress goes to stderr (a bar on a terminal, plain lines otherwise); the summary to stdout, as
// text or, with --json, one JSON object. Files that fail are reported, not fatal: the exit code is 0.
import fs from 'node:fs';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { openDatabase } from '../../db/open.ts';
import { defaultDbPath } from '../app-paths.ts';
import { printable } from '../indexing/file-names.ts';
import { estimateTokens, indexFolder, type AfterDocument, type IndexSummary } from '../indexing/indexer.ts';
import type { CountTokens } from '../indexing/passages.ts';
import { numberOption, UsageError } from './args.ts';
import { formatBytes, formatDuration, ProgressRenderer } from './progress.ts';

/** The folders' summaries added up (see IndexSummary), with each folder's own figures. */
export interface IndexCommandSummary extends Omit<IndexSummary, 'root' | 'folderId'> {
  db: string;
  folders: Omit<IndexSummary, 'skipped' | 'failed'>[];
}

export async function indexCommand(argv: string[]): Promise<void> {
  const { values, positionals } = parseArgs({
    args: argv,
    options: {
      db: { type: 'string' },
      model: { type: 'string' },
      'no-kv': { type: 'boolean' },
      json: { type: 'boolean' },
      'max-file-mb': { type: 'string' },
    },
    allowPositionals: true,
    strict: true,
  });
  if (positionals.length === 0) throw new UsageError('give at least one folder to index');
  const maxFileMb = numberOption(values['max-file-mb'], 'max-file-mb', (n) => n > 0);
  const dbPath = path.resolve(values.db ?? defaultDbPath());
  fs.mkdirSync(path.dirname(dbPath), { recursive: true });

  const controller = new AbortController();
  const onSigint = () => controller.abort();
  process.once('SIGINT', onSigint);
  const db = openDatabase(dbPath);
  const release: (() => Promise<void>)[] = [];
  const renderer = new ProgressRenderer(process.stderr);
  try {
    // Without a model, token counts are estimated (estimateTokens: ~4 Latin characters per token,
    // 1 per CJK character); passages still come out at about 256 tokens.
    let countTokens: CountTokens = estimateTokens;
    let afterDocument: AfterDocument | undefined;
    if (values.model) {
      const { Engine } = await import('../../native-models/engine.ts');
      const engine = await Engine.load(values.model);
      release.push(() => engine.release());
      countTokens = (text) => engine.tokenizer.encode(text).length;
      if (!values['no-kv']) {
        const { createAnswerContext, prefillPassages } = await import('../answering/passage-kv.ts');
        const ctx = await createAnswerContext(db, engine);
        afterDocument = async (_doc, passages) =>
          (await prefillPassages(ctx, passages.map((p) => p.id), { signal: controller.signal })).computed;
      }
    }

    const summaries: IndexSummary[] = [];
    for (const folder of positionals) {
      summaries.push(
        await indexFolder(db, folder, {
          countTokens,
          afterDocument,
          maxFileBytes: maxFileMb === undefined ? undefined : Math.round(maxFileMb * 1024 * 1024),
          signal: controller.signal,
          onProgress: (p) => renderer.update(p),
        }),
      );
    }
    const summary = combine(dbPath, summaries);
    if (values.json) process.stdout.write(`${JSON.stringify(summary)}\n`);
    else process.stdout.write(describe(summary));
  } finally {
    renderer.finish();
    process.off('SIGINT', onSigint);
    for (const r of release) await r();
    db.close();
  }
}

function combine(dbPath: string, summaries: IndexSummary[]): IndexCommandSummary {
  const sum = (key: 'files' | 'indexed' | 'unchanged' | 'passages' | 'passagesWritten' | 'removed' | 'renamed' | 'kvBlocks' | 'bytes' | 'elapsedMs') =>
    summaries.reduce((s, x) => s + x[key], 0);
  return {
    db: dbPath,
    files: sum('files'),
    indexed: sum('indexed'),
    unchanged: sum('unchanged'),
    skipped: summaries.flatMap((s) => s.skipped),
    failed: summaries.flatMap((s) => s.failed),
    passages: sum('passages'),
    passagesWritten: sum('passagesWritten'),
    removed: sum('removed'),
    renamed: sum('renamed'),
    kvBlocks: sum('kvBlocks'),
    bytes: sum('bytes'),
    elapsedMs: sum('elapsedMs'),
    folders: summaries.map(({ skipped: _s, failed: _f, ...rest }) => rest),
  };
}

function describe(s: IndexCommandSummary): string {
  const lines = [
    `${s.files} files: ${s.indexed} indexed, ${s.unchanged} unchanged, ${s.skipped.length} skipped, ${s.failed.length} failed` +
      (s.removed ? `, ${s.removed} removed` : '') +
      (s.renamed ? `, ${s.renamed} renamed` : ''),
    `${s.passages} passages (${s.passagesWritten} written), ${s.kvBlocks} KV blocks prefilled, ${formatBytes(s.bytes)} read in ${formatDuration(s.elapsedMs)}`,
    `database: ${printable(s.db)}`,
  ];
  // names with newlines or escape sequences must not break the lines or drive the terminal
  for (const f of s.failed) lines.push(`failed  ${printable(f.path)}: ${printable(f.reason)}`);
  for (const f of s.skipped) lines.push(`skipped ${printable(f.path)}: ${printable(f.reason)}`);
  return `${lines.join('\n')}\n`;
}
