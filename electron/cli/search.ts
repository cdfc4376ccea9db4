// `quire search <query>`: full-text search over the indexed passages. Each hit: path, title, page,
// snippet with the matches highlighted (bold on a terminal, «» otherwise; in JSON, «» plus the
// snippet as plain/highlighted parts) and score.
import fs from 'node:fs';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { openDatabase } from '../../db/open.ts';
import { highlightParts, searchPassages } from '../../db/search.ts';
import { defaultDbPath } from '../app-paths.ts';
import { printable } from '../indexing/file-names.ts';
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
    options: { db: { type: 'string' }, k: { type: 'string', short: 'k' }, json: { type: 'boolean' } },
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
    const hits: SearchCommandHit[] = searchPassages(db, query, { limit, marks: MARKS }).map((h) => ({
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
      process.stdout.write(`no passages match "${printable(query)}"\n`);
      return;
    }
    const tty = process.stdout.isTTY === true;
    // Paths, titles and passage text come from the user's files: escaped, so a name or a log line
    // holding a newline or an escape sequence cannot break the lines or drive the terminal; the
    // only escape sequence printed is our own bold.
    const oneLine = (text: string) => printable(text.replace(/\s+/g, ' '));
    const snippet = (h: SearchCommandHit) =>
      tty
        ? h.highlights.map((p) => (p.highlighted ? `\x1b[1m${oneLine(p.text)}\x1b[22m` : oneLine(p.text))).join('')
        : oneLine(h.snippet);
    hits.forEach((h, i) => {
      const where = `${printable(h.path)}${h.page !== null ? ` (page ${h.page})` : ''}`;
      process.stdout.write(`${i + 1}. ${where}  [${h.score.toPrecision(3)}]\n   ${printable(h.title ?? '')}\n   ${snippet(h)}\n`);
    });
  } finally {
    db.close();
  }
}
