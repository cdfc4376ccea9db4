// `quire search <query>`: search over the indexed passages with the ranking the app uses (a question
// or keywords; "phrases", +word, NOT word; --all-words or AND: every content word). Each hit: path,
// title, page, snippet with the matched words highlighted (bold on a terminal, «» otherwise; in
// JSON, «» plus the snippet as plain/highlighted parts) and score.
import fs from 'node:fs';
import path from 'node:path';
import { openDatabase } from '../../db/open.ts';
import { highlightParts, searchPassages } from '../../db/search.ts';
import { defaultDbPath } from '../app-paths.ts';
import { UsageError } from './args.ts';
import { ALL_WORDS, DB, JSON_OUTPUT, SEARCH_LIMIT, type ParsedArgs } from './options.ts';
import { escapeForTerminal } from './terminal-text.ts';

export interface SearchCommandHit {
  path: string;
  title: string | null;
  page: number | null;
  snippet: string;
  highlights: { text: string; highlighted: boolean }[];
  score: number;
}

const MARKS = { open: '«', close: '»' };

export async function searchCommand(args: ParsedArgs): Promise<void> {
  const query = args.positionals.join(' ').trim();
  if (!query) throw new UsageError('give a query');
  const limit = args.get(SEARCH_LIMIT);
  const dbPath = path.resolve(args.get(DB) ?? defaultDbPath());
  if (!fs.existsSync(dbPath)) throw new Error(`no index at ${dbPath}: run quire index <folder> first`);
  const db = openDatabase(dbPath, { readonly: true });
  try {
    const hits: SearchCommandHit[] = searchPassages(db, query, { limit, marks: MARKS, match: args.has(ALL_WORDS) ? 'all' : 'any' }).map((h) => ({
      path: h.path,
      title: h.passageTitle ?? h.title,
      page: h.page,
      snippet: h.snippet,
      highlights: highlightParts(h.snippet, MARKS),
      score: h.score,
    }));
    if (args.has(JSON_OUTPUT)) {
      process.stdout.write(`${JSON.stringify({ query, hits })}\n`);
      return;
    }
    if (hits.length === 0) {
      process.stdout.write(`no passages match "${escapeForTerminal(query)}"\n`);
      return;
    }
    const tty = process.stdout.isTTY === true;
    // whitespace runs become one space first (a snippet is one line), then what is left is escaped
    const clean = (t: string) => escapeForTerminal(t.replace(/\s+/g, ' '));
    const snippet = (h: SearchCommandHit) =>
      tty ? h.highlights.map((p) => (p.highlighted ? `\x1b[1m${clean(p.text)}\x1b[22m` : clean(p.text))).join('') : clean(h.snippet);
    hits.forEach((h, i) => {
      const where = `${escapeForTerminal(h.path)}${h.page !== null ? ` (page ${h.page})` : ''}`;
      process.stdout.write(`${i + 1}. ${where}  [${h.score.toPrecision(3)}]\n   ${escapeForTerminal(h.title ?? '')}\n   ${snippet(h)}\n`);
    });
  } finally {
    db.close();
  }
}
