// `quire ask`: answer a question over the indexed folders, streaming to the terminal, or as one JSON
// object {answer, citations, ttftMs, reusedBlocks, computedBlocks, provider, mode}.
import fs from 'node:fs';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { openDatabase } from '../../db/open.ts';
import { Engine } from '../../native-models/engine.ts';
import { PROVIDER_CHOICES } from '../../native-models/session.ts';
import { ask } from '../answering/ask.ts';
import { createAnswerContext } from '../answering/passage-kv.ts';
import { QUALITY_MODES } from '../answering/quality-modes.ts';
import { NO_PASSAGES_ANSWER } from '../answering/citations.ts';
import { retrieve } from '../answering/retrieve.ts';
import { defaultDbPath } from '../app-paths.ts';
import { printable } from '../indexing/file-names.ts';
import { resolveModelDir } from '../models/catalog.ts';
import { choiceOption, numberOption, UsageError } from './args.ts';

export async function askCommand(argv: string[]): Promise<void> {
  const { values, positionals } = parseArgs({
    args: argv,
    allowPositionals: true,
    options: {
      db: { type: 'string' },
      model: { type: 'string' },
      mode: { type: 'string' },
      quality: { type: 'string' },
      boundary: { type: 'string' },
      k: { type: 'string', short: 'k' },
      folder: { type: 'string' },
      'max-new-tokens': { type: 'string' },
      provider: { type: 'string' },
      json: { type: 'boolean' },
    },
    strict: true,
  });
  const question = positionals.join(' ').trim();
  if (!question) throw new UsageError('a question is required');
  const dbPath = values.db ?? defaultDbPath();
  if (!fs.existsSync(dbPath)) throw new Error(`no database at ${dbPath}: index a folder first (or pass --db PATH)`);
  const db = openDatabase(dbPath);
  const json = values.json ?? false;
  const k = numberOption(values.k, 'k', (n) => Number.isInteger(n) && n > 0);
  const folder = values.folder
    ? (db.prepare('SELECT id FROM folders WHERE path = ?').pluck().get(path.resolve(values.folder)) as number | undefined)
    : undefined;
  if (values.folder && folder === undefined) throw new UsageError(`--folder: ${values.folder} is not an indexed folder`);
  // Nothing to answer from: say so without loading (and hashing) a model of a gigabyte or more.
  if (retrieve(db, question, { k, folderId: folder }).length === 0) {
    const none = { answer: NO_PASSAGES_ANSWER, citations: [], ttftMs: 0, reusedBlocks: 0, computedBlocks: 0, provider: null, mode: values.mode ?? 'block', ranModel: false };
    process.stdout.write(json ? `${JSON.stringify(none)}\n` : `${NO_PASSAGES_ANSWER}\n`);
    db.close();
    return;
  }
  const engine = await Engine.load(resolveModelDir(values.model), { provider: choiceOption(values.provider, 'provider', PROVIDER_CHOICES) });
  try {
    const ctx = await createAnswerContext(db, engine);
    const controller = new AbortController();
    process.once('SIGINT', () => controller.abort());
    const r = await ask(ctx, question, {
      k,
      folderId: folder,
      mode: choiceOption(values.mode, 'mode', ['block', 'full'] as const),
      quality: choiceOption(values.quality, 'quality', QUALITY_MODES),
      boundaryTokens: numberOption(values.boundary, 'boundary', (n) => Number.isInteger(n) && n >= 0),
      maxNewTokens: numberOption(values['max-new-tokens'], 'max-new-tokens', (n) => Number.isInteger(n) && n > 0) ?? 256,
      signal: controller.signal,
      // the answer keeps its lines; escape sequences from the documents it quotes are written out
      onText: json ? undefined : (piece) => process.stdout.write(printable(piece, { keepLineBreaks: true })),
    });
    const f = r.figures;
    if (json) {
      const { answer, citations } = r;
      process.stdout.write(
        `${JSON.stringify({ answer, citations, ttftMs: f.ttftMs, reusedBlocks: f.reusedBlocks, computedBlocks: f.computedBlocks, provider: f.provider, mode: f.mode, quality: f.quality, figures: f })}\n`,
      );
      return;
    }
    process.stdout.write('\n');
    for (const c of r.citations) {
      process.stdout.write(`[${c.n}] ${printable(c.path)}${c.page ? ` p. ${c.page}` : ''} (chars ${c.charStart}-${c.charEnd})\n`);
    }
    if (r.ranModel) {
      process.stderr.write(
        `${f.mode} mode (${f.quality}${f.boundaryTokens ? `, boundary ${f.boundaryTokens}` : ''}), ${f.provider}: ` +
          `${f.reusedBlocks} blocks reused, ${f.computedBlocks} computed; TTFT ${f.ttftMs.toFixed(0)} ms ` +
          `(load ${f.loadMs.toFixed(0)}, prefill ${f.computeMs.toFixed(0)}, re-encode ${f.reencodeMs.toFixed(0)}, final ${f.finalMs.toFixed(0)}); ` +
          `${f.tokensPerSecond.toFixed(1)} tok/s\n`,
      );
    }
  } finally {
    await engine.release();
    db.close();
  }
}
