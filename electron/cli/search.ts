// `quire search <query>`: search over the indexed passages with the ranking the app uses (a question
// or keywords; "phrases", +word, NOT word; --all-words or AND: every content word). Each hit: path,
// title, page, snippet with the matched words highlighted (bold on a terminal, «» otherwise; in
// JSON, «» plus the snippet as plain/highlighted parts) and score.
import fs from 'node:fs';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { openDatabase } from '../../db/open.ts';
import { highlightParts, searchPassages } from '../../db/search.ts';
import { defaultDbPath } from '../app-paths.ts';
import { numberOption, UsageError } from './args.ts';

export interface SearchCommandHit {
  path: string;
  title: string | null;
  page: number | null;
  snippet: string;
  highlights: { text: string; highlighted: boolean }[];
  score: number;
}

const MARKS = { open: '«', close: '»' };

export async function searchCommand(argv: string[]): Promise<void> {
  const { values, positionals } = parseArgs({
    args: argv,
    options: { db: { type: 'string' }, k: { type: 'string', short: 'k' }, 'all-words': { type: 'boolean' }, json: { type: 'boolean' } },
    allowPositionals: true,
    strict: true,
  });
  const query = positionals.join(' ').trim();
  if (!query) throw new UsageError('give a query');
  const limit = numberOption(values.k, 'k', (n) => Number.isInteger(n) && n > 0) ?? 10;
  const dbPath = path.resolve(values.db ?? defaultDbPath());
  if (!fs.existsSync(dbPath)) throw new Error(`no index at ${dbPath}: run quire index <folder> first`);
  const db = openDatabase(dbPath, { readonly: true });
  try {
    const hits: SearchCommandHit[] = searchPassages(db, query, { limit, marks: MARKS, match: values['all-words'] ? 'all' : 'any' }).map((h) => ({
      path: h.path,
      title: h.passageTitle ?? h.title,
      page: h.page,
      snippet: h.snippet,
      highlights: highlightParts(h.snippet, MARKS),
      score: h.score,
    }));
    if (values.json) {
      process.stdout.write(`${JSON.stringify({ query, hits })}\n`);
      return;
    }
    if (hits.length === 0) {
      process.stdout.write(`no passages match "${query}"\n`);
      return;
    }
    const tty = process.stdout.isTTY === true;
    const snippet = (h: SearchCommandHit) =>
      tty
        ? h.highlights.map((p) => (p.highlighted ? `\x1b[1m${p.text}\x1b[22m` : p.text)).join('')
        : h.snippet;
    hits.forEach((h, i) => {
      const where = `${h.path}${h.page !== null ? ` (page ${h.page})` : ''}`;
      process.stdout.write(`${i + 1}. ${where}  [${h.score.toPrecision(3)}]\n   ${h.title ?? ''}\n   ${snippet(h).replace(/\s+/g, ' ')}\n`);
    });
  } finally {
    db.close();
  }
}
