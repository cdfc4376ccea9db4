// The one retrieval ranking (db/search.ts) on a small real corpus: excerpts of the Python manual
// indexed by the real indexer. Questions find the passage that answers them, the way a search box
// and quire ask both call it; quoted phrases and the all-words mode still restrict; snippets mark
// the content words that matched and never the stop words.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { addFolder } from '../db/folders.ts';
import { STOP_WORDS } from '../db/fts-query.ts';
import { highlightParts, searchPassages } from '../db/search.ts';
import { retrieve } from '../electron/answering/retrieve.ts';
import { indexFolder } from '../electron/indexing/indexer.ts';
import { estimateTokens } from '../electron/indexing/token-estimate.ts';
import { tempDb, type TempDb } from './fixtures/db-temp.ts';
import { writePythonDocExcerpts } from './fixtures/python-doc-excerpts.ts';

let t: TempDb;
let docs: { root: string; cleanup: () => void };

beforeAll(async () => {
  t = tempDb();
  docs = writePythonDocExcerpts();
  addFolder(t.db, docs.root);
  await indexFolder(t.db, docs.root, { countTokens: estimateTokens });
});
afterAll(() => {
  t?.cleanup();
  docs?.cleanup();
});

/** A hit as "page: its first four words". */
const where = (h: { path: string; text: string }) => `${h.path.slice(docs.root.length + 1)}: ${h.text.split(/\s+/).slice(0, 4).join(' ')}`;

describe('questions find the passage that answers them', () => {
  it.each([
    ['How do I suspend my program for a number of seconds?', 'library/time.md: Suspend execution of the'],
    ['Can I ask for a password without it being echoed?', 'library/getpass.md: Prompt the user for'],
    ['What is the best way to read a file line by line?', 'tutorial/inputoutput.md: f.readline() reads a single'],
    ['Which function picks a random element out of a sequence?', 'library/random.md: Return a random element'],
  ])('%s', (question, passage) => {
    const hits = searchPassages(t.db, question);
    expect(where(hits[0])).toBe(passage);
    // quire ask retrieves with the same ranking
    expect(where(retrieve(t.db, question, { k: 3 })[0] as { path: string; text: string })).toBe(passage);
    // no passage has every content word of the question: requiring them all (the all-words mode,
    // and the search box before questions were queries) finds nothing
    expect(searchPassages(t.db, question, { match: 'all' })).toEqual([]);
  });
});

describe('phrases and the all-words mode still restrict', () => {
  it('a quoted phrase must occur in every hit, in order', () => {
    expect(searchPassages(t.db, 'password').length).toBeGreaterThan(1);
    expect(searchPassages(t.db, 'password "without echoing"').map(where)).toEqual(['library/getpass.md: Prompt the user for']);
    expect(searchPassages(t.db, 'password "echoing without"')).toEqual([]);
    expect(retrieve(t.db, 'What does it say about the "shadow password system"?').map(where)).toEqual(['library/pwd.md: This module provides access']);
  });

  it('all words (match all, or AND): every content word in every hit; otherwise any of them, ranked', () => {
    expect(searchPassages(t.db, 'unix password', { match: 'all' }).map(where).sort()).toEqual([
      'library/getpass.md: Prompt the user for',
      'library/pwd.md: This module provides access',
    ]);
    expect(searchPassages(t.db, 'unix AND password').map(where).sort()).toEqual([
      'library/getpass.md: Prompt the user for',
      'library/pwd.md: This module provides access',
    ]);
    expect(searchPassages(t.db, 'echo AND seconds')).toEqual([]);
    expect(searchPassages(t.db, 'unix password', { perDocument: Infinity }).map(where)).toContain('library/pwd.md: Return the password database');
    expect(searchPassages(t.db, 'echo seconds').map(where).sort()).toEqual([
      'library/getpass.md: Prompt the user for',
      'library/time.md: Return the time in',
      'library/time.md: Suspend execution of the',
    ]);
  });
});

describe('snippets mark the matched content words only', () => {
  it('a question marks its content words and none of its stop words', () => {
    const question = 'Can I ask for a password without it being echoed?';
    const [hit] = searchPassages(t.db, question, { marks: { open: '<', close: '>' } });
    const marked = [...hit.highlighted.matchAll(/<([^>]*)>/g)].map((m) => m[1].toLowerCase());
    expect([...new Set(marked)].sort()).toEqual(['echo', 'echoing', 'password', 'without']);
    // the passage is full of the question's stop words ("for", "a", "it"), left unmarked
    expect(hit.highlighted).toMatch(/ for a <password>/);
    for (const part of highlightParts(hit.snippet).filter((p) => p.highlighted)) expect(STOP_WORDS.has(part.text.toLowerCase())).toBe(false);
  });
});
