// `quire index <folder>...`: index folders into the database (incremental; safe to kill and rerun).
// Progress goes to stderr (a bar on a terminal, plain lines otherwise); the summary to stdout, as
// text or, with --json, one JSON object. Files that fail are reported, not fatal: the exit code is 0.
import fs from 'node:fs';
import path from 'node:path';
import { openDatabase } from '../../db/open.ts';
import { dataDirForDb, defaultDbPath, providerChoicePath } from '../app-paths.ts';
import { indexFolder, type AfterDocument, type IndexSummary } from '../indexing/indexer.ts';
import { estimateTokens } from '../indexing/token-estimate.ts';
import type { CountTokens } from '../indexing/passages.ts';
import { formatByteSize } from '../byte-size.ts';
import { resolveModelDir } from '../models/catalog.ts';
import { kvStoreFor, providerOption } from './app-defaults.ts';
import { UsageError } from './args.ts';
import { DB, JSON_OUTPUT, MAX_FILE_MB, MODEL, NO_KV, type ParsedArgs } from './options.ts';
import { formatBytes, formatDuration, ProgressRenderer } from './progress.ts';
import { escapeForTerminal } from './terminal-text.ts';
import { coverageLimit, type KvCoverageLimit } from '../answering/kv-coverage-limits.ts';
import type { FolderKvCoverage } from '../answering/kv-coverage.ts';

/** The folders' summaries added up (see IndexSummary), with each folder's own figures. */
export interface IndexCommandSummary extends Omit<IndexSummary, 'root' | 'folderId'> {
  db: string;
  folders: Omit<IndexSummary, 'skipped' | 'failed'>[];
  /** The execution provider the model ran on (--provider, else the app's setting); null without a model. */
  provider: string | null;
  /** The KV budget this run kept (--kv-budget, else the app's setting); null without a model or with --no-kv. */
  kvBudgetBytes: number | null;
  /** Stored KV after the run, every model's (never above the budget); null when kvBudgetBytes is. */
  kvStoredBytes: number | null;
  /**
   * Passages of new or changed documents not prefilled because the budget was full (a store had to
   * evict); they get their KV when a question first uses them. Already stored ones are counted too.
   */
  kvSkippedForBudget: number;
  /**
   * Per folder indexed, after the run: its passages whose KV is stored for the model (exact), and why
   * not more ('budget': the run stopped prefilling at a full budget; 'not-prefilled': passages of
   * documents this run did not change, prefilled by the app or quire serve in the background).
   * Null without a model or with --no-kv.
   */
  kvCoverage: FolderCoverageSummary[] | null;
}

export interface FolderCoverageSummary {
  folderId: number;
  root: string;
  passages: number;
  stored: number;
  limitedBy: KvCoverageLimit | null;
}

export async function indexCommand(args: ParsedArgs): Promise<void> {
  const folders = args.positionals;
  if (folders.length === 0) throw new UsageError('give at least one folder to index');
  const maxFileMb = args.get(MAX_FILE_MB);
  const dbPath = path.resolve(args.get(DB) ?? defaultDbPath());
  const dataDir = dataDirForDb(args.get(DB));
  fs.mkdirSync(path.dirname(dbPath), { recursive: true });

  const controller = new AbortController();
  const onSigint = () => controller.abort();
  process.once('SIGINT', onSigint);
  const db = openDatabase(dbPath);
  const release: (() => Promise<void>)[] = [];
  const renderer = new ProgressRenderer(process.stderr);
  let budget: { bytes: number; stored: () => number } | undefined;
  let coverageOf: ((folderId: number) => FolderKvCoverage | undefined) | undefined;
  let full = false;
  let provider: string | null = null;
  let skippedForBudget = 0;
  try {
    // Without a model, token counts are estimated (estimateTokens: ~4 Latin characters per token,
    // 1 per CJK character); passages still come out at about 256 tokens.
    let countTokens: CountTokens = estimateTokens;
    let afterDocument: AfterDocument | undefined;
    const model = args.get(MODEL);
    if (model !== undefined) {
      const { Engine } = await import('../../native-models/engine.ts');
      const engine = await Engine.load(resolveModelDir(model), {
        provider: providerOption(args, dataDir),
        providerCache: providerChoicePath(dataDir),
      });
      release.push(() => engine.release());
      provider = engine.provider;
      countTokens = (text) => engine.tokenizer.encode(text).length;
      if (!args.has(NO_KV)) {
        const { createAnswerContext, prefillPassages } = await import('../answering/passage-kv.ts');
        const store = kvStoreFor(db, args, dataDir);
        const ctx = await createAnswerContext(db, engine, { store });
        budget = { bytes: store.budgetBytes, stored: () => store.stats().bytes };
        const { kvCoverage } = await import('../answering/kv-coverage.ts');
        coverageOf = (folderId) => kvCoverage(db, ctx, ctx.defaultQuality, { folderId })[0];
        // As the app's background prefill does: fill the budget's free room, never evict stored
        // blocks (those questions use among them) to make room for more. Prefill goes one block at
        // a time, each stored as a prefetch, and stops at the first block the store had to evict
        // for, or refused (larger than the budget, or only likelier blocks to displace): at most one
        // block's bytes were evicted. KvStore keeps the total within the budget either way.
        afterDocument = async (_doc, passages) => {
          let computed = 0;
          for (const p of passages) {
            if (full) {
              skippedForBudget++;
              continue;
            }
            const before = store.stats();
            const r = await prefillPassages(ctx, [p.id], { signal: controller.signal });
            const after = store.stats();
            computed += r.computed;
            full = after.evictions > before.evictions || r.computed > r.stored;
          }
          return computed;
        };
      }
    }

    const summaries: IndexSummary[] = [];
    for (const folder of folders) {
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
    // re-indexed passages keep their block keys, removed ones' go: coverage stays exact
    const { carryBlockKeys } = await import('../answering/passage-kv.ts');
    carryBlockKeys(db);
    const summary: IndexCommandSummary = {
      ...combine(dbPath, summaries),
      provider,
      kvBudgetBytes: budget?.bytes ?? null,
      kvStoredBytes: budget?.stored() ?? null,
      kvSkippedForBudget: skippedForBudget,
      kvCoverage: coverageOf
        ? summaries.flatMap((f) => {
            const c = coverageOf!(f.folderId);
            if (!c) return [];
            const limitedBy = coverageLimit(c, { model: true, prefillOn: true, paused: false, queued: 0, budgetFull: full });
            return [{ folderId: f.folderId, root: f.root, passages: c.passages, stored: c.stored, limitedBy }];
          })
        : null,
    };
    if (args.has(JSON_OUTPUT)) process.stdout.write(`${JSON.stringify(summary)}\n`);
    else process.stdout.write(describe(summary));
  } finally {
    renderer.finish();
    process.off('SIGINT', onSigint);
    for (const r of release) await r();
    db.close();
  }
}

function combine(
  dbPath: string,
  summaries: IndexSummary[],
): Omit<IndexCommandSummary, 'provider' | 'kvBudgetBytes' | 'kvStoredBytes' | 'kvSkippedForBudget' | 'kvCoverage'> {
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
    `database: ${escapeForTerminal(s.db)}`,
  ];
  if (s.kvBudgetBytes !== null) {
    lines.push(
      `stored KV: ${formatByteSize(s.kvStoredBytes ?? 0)} of a ${formatByteSize(s.kvBudgetBytes)} budget` +
        (s.kvSkippedForBudget ? `; ${s.kvSkippedForBudget} passages not prefilled: the budget is full (--kv-budget raises it)` : ''),
    );
  }
  for (const c of s.kvCoverage ?? []) {
    const share = c.passages > 0 ? Math.round((c.stored / c.passages) * 100) : 100;
    const why = c.limitedBy === 'budget' ? ': the KV budget is full' : c.limitedBy === 'not-prefilled' ? ': the rest is prefilled in the background by the app or quire serve' : '';
    lines.push(`${escapeForTerminal(c.root)}: ${share}% of ${c.passages} passages answer without prefill (KV stored for ${c.stored})${why}`);
  }
  for (const f of s.failed) lines.push(`failed  ${escapeForTerminal(f.path)}: ${escapeForTerminal(f.reason)}`);
  for (const f of s.skipped) lines.push(`skipped ${escapeForTerminal(f.path)}: ${escapeForTerminal(f.reason)}`);
  return `${lines.join('\n')}\n`;
}
