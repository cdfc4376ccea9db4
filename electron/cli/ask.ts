// `quire ask`: answer a question over the indexed folders, streaming to the terminal, or as one JSON
// object (AskCommandJson): the answer, the passages it cites, every passage it was given (sources,
// with whether each one's KV was reused or computed) and the per-answer figures (how many passages
// fit the model's context among them: passagesUsed, passagesDropped, passagesShortened).
import fs from 'node:fs';
import path from 'node:path';
import { getFolderByPath } from '../../db/folders.ts';
import { openDatabase } from '../../db/open.ts';
import { Engine } from '../../native-models/engine.ts';
import { ask, type AnswerFigures, type AskResult } from '../answering/ask.ts';
import { createAnswerContext } from '../answering/passage-kv.ts';
import { NO_PASSAGES_ANSWER, type AnswerCitation } from '../answering/citations.ts';
import { retrieve } from '../answering/retrieve.ts';
import { dataDirForDb, defaultDbPath, providerChoicePath } from '../app-paths.ts';
import { resolveModelDir } from '../models/catalog.ts';
import { kvStoreFor, providerOption } from './app-defaults.ts';
import { UsageError } from './args.ts';
import { ANSWER_MAX_TOKENS, BOUNDARY, DB, FOLDER, JSON_OUTPUT, MODE, MODEL, QUALITY, RETRIEVE_K, type ParsedArgs } from './options.ts';
import { escapeForTerminal } from './terminal-text.ts';

/** A passage the answer was given, numbered as the model saw it ([n]), cited or not. */
export interface AskSource extends AnswerCitation {
  /** 'reused': its KV was loaded from the store; 'computed': prefilled for this answer (full mode: always). */
  kv: 'reused' | 'computed';
}

/** `quire ask --json`: one object. */
export interface AskCommandJson {
  answer: string;
  /** The passages the answer cites by [n]. */
  citations: AnswerCitation[];
  /** Every passage the answer was given, cited or not; [] when none was found. */
  sources: AskSource[];
  ttftMs: number;
  reusedBlocks: number;
  computedBlocks: number;
  provider: string | null;
  mode: string;
  /** False when nothing matched and the fixed answer was given without loading a model. */
  ranModel: boolean;
  quality?: string;
  figures?: AnswerFigures;
}

export function askSources(r: Pick<AskResult, 'passages' | 'passageKvReused'>): AskSource[] {
  return r.passages.map((p, i) => ({
    n: i + 1,
    passageId: p.passageId,
    path: p.path,
    title: p.title,
    page: p.page,
    charStart: p.charStart,
    charEnd: p.charEnd,
    kv: r.passageKvReused[i] ? 'reused' : 'computed',
  }));
}

export async function askCommand(args: ParsedArgs): Promise<void> {
  const question = args.positionals.join(' ').trim();
  if (!question) throw new UsageError('a question is required');
  const dbPath = args.get(DB) ?? defaultDbPath();
  const dataDir = dataDirForDb(args.get(DB));
  if (!fs.existsSync(dbPath)) throw new Error(`no database at ${dbPath}: index a folder first (or pass --db PATH)`);
  const db = openDatabase(dbPath);
  const json = args.has(JSON_OUTPUT);
  const k = args.get(RETRIEVE_K);
  const folderOption = args.get(FOLDER);
  const folder = folderOption
    ? getFolderByPath(db, path.resolve(folderOption))?.id
    : undefined;
  if (folderOption && folder === undefined) throw new UsageError(`--folder: ${folderOption} is not an indexed folder`);
  // Nothing to answer from: say so without loading (and hashing) a model of a gigabyte or more.
  if (retrieve(db, question, { k, folderId: folder }).length === 0) {
    const none: AskCommandJson = {
      answer: NO_PASSAGES_ANSWER,
      citations: [],
      sources: [],
      ttftMs: 0,
      reusedBlocks: 0,
      computedBlocks: 0,
      provider: null,
      mode: args.get(MODE) ?? 'block',
      ranModel: false,
    };
    process.stdout.write(json ? `${JSON.stringify(none)}\n` : `${NO_PASSAGES_ANSWER}\n`);
    db.close();
    return;
  }
  const engine = await Engine.load(resolveModelDir(args.get(MODEL)), {
    provider: providerOption(args, dataDir),
    providerCache: providerChoicePath(dataDir),
  });
  try {
    const ctx = await createAnswerContext(db, engine, { store: kvStoreFor(db, args, dataDir) });
    const controller = new AbortController();
    process.once('SIGINT', () => controller.abort());
    const r = await ask(ctx, question, {
      k,
      folderId: folder,
      mode: args.get(MODE),
      quality: args.get(QUALITY),
      boundaryTokens: args.get(BOUNDARY),
      maxNewTokens: args.get(ANSWER_MAX_TOKENS),
      signal: controller.signal,
      // the answer keeps its lines; escape sequences from the documents it quotes are written out
      onText: json ? undefined : (piece) => process.stdout.write(escapeForTerminal(piece, { keepLineBreaks: true })),
    });
    const f = r.figures;
    if (json) {
      const out: AskCommandJson = {
        answer: r.answer,
        citations: r.citations,
        sources: askSources(r),
        ttftMs: f.ttftMs,
        reusedBlocks: f.reusedBlocks,
        computedBlocks: f.computedBlocks,
        provider: f.provider,
        mode: f.mode,
        ranModel: r.ranModel,
        quality: f.quality,
        figures: f,
      };
      process.stdout.write(`${JSON.stringify(out)}\n`);
      return;
    }
    process.stdout.write('\n');
    for (const c of r.citations) {
      process.stdout.write(`[${c.n}] ${escapeForTerminal(c.path)}${c.page ? ` p. ${c.page}` : ''} (chars ${c.charStart}-${c.charEnd})\n`);
    }
    if (r.ranModel) {
      process.stderr.write(
        `${f.mode} mode (${f.quality}${f.boundaryTokens ? `, boundary ${f.boundaryTokens}` : ''}), ${f.provider}: ` +
          `${f.reusedBlocks} blocks reused, ${f.computedBlocks} computed; TTFT ${f.ttftMs.toFixed(0)} ms ` +
          `(load ${f.loadMs.toFixed(0)}, prefill ${f.computeMs.toFixed(0)}, re-encode ${f.reencodeMs.toFixed(0)}, final ${f.finalMs.toFixed(0)})` +
          `${f.tokensPerSecond === null ? '' : `; ${f.tokensPerSecond.toFixed(1)} tok/s`}` +
          `${f.passagesDropped || f.passagesShortened ? `; passages ${f.passagesUsed} used, ${f.passagesDropped} left out, ${f.passagesShortened} shortened to fit the model` : ''}\n`,
      );
    }
  } finally {
    await engine.release();
    db.close();
  }
}
