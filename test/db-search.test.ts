import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { addFolder } from '../db/folders.ts';
import { upsertDocument } from '../db/documents.ts';
import { replacePassages } from '../db/passages.ts';
import { ftsExpressions, parseSearchQuery, STOP_WORDS, type SearchTerm } from '../db/fts-query.ts';
import { HIGHLIGHT_CLOSE, HIGHLIGHT_OPEN, highlightParts, highlightPassage, searchPassages } from '../db/search.ts';
import { tempDb, type TempDb } from './fixtures/db-temp.ts';

let t: TempDb;
let notesFolder: number;

/** One document per entry, one passage per string. */
const corpus: Record<string, string[]> = {
  '/notes/garden.md': [
    'Tomatoes need full sun. Water tomatoes deeply; stake tomatoes early.',
    'Basil grows well beside tomatoes in a sunny bed with other herbs and flowers.',
  ],
  '/notes/running.md': ['She runs every morning; running clears the mind.', 'The runner rested after the race.'],
  '/notes/cafe.md': ['We met at the café near the station.', 'Crème brûlée was on the menu.'],
  '/notes/long.md': [
    'A long passage about many things: weather, politics, music, travel, cooking, history, ' +
      'science, and once, in passing, tomatoes, among a great many other words that dilute the term.',
  ],
  '/docs/tokyo.md': ['東京都に住んでいます。毎日電車で通勤しています。', '京都は古い都です。'],
  '/docs/china.md': ['北京是中国的首都。', '上海是一个大城市。', '长'.repeat(60) + '江' + '水'.repeat(60)],
  '/docs/syntax.md': ['Use NEAR(a b) and "quotes" in C++ (or c-sharp) -- well-known e-mail tricks: 50% off*'],
};

beforeAll(() => {
  t = tempDb();
  notesFolder = addFolder(t.db, '/notes').id;
  const docsFolder = addFolder(t.db, '/docs').id;
  for (const [path, texts] of Object.entries(corpus)) {
    const doc = upsertDocument(t.db, {
      folderId: path.startsWith('/notes') ? notesFolder : docsFolder,
      path,
      size: 100,
      mtimeMs: 1,
      title: path.split('/').pop()!,
      status: 'indexed',
    });
    let at = 0;
    replacePassages(
      t.db,
      doc.id,
      texts.map((text, i) => ({ text, charStart: at, charEnd: (at += text.length), page: i + 1 })),
    );
  }
});
afterAll(() => t.cleanup());

const paths = (q: string, o = {}) => searchPassages(t.db, q, o).map((h) => `${h.path}#${h.ordinal}`);

/** A term as parseSearchQuery returns it, from the fields that differ from a plain optional word. */
const term = (text: string, o: Partial<SearchTerm> = {}): SearchTerm => ({ text, phrase: false, prefix: false, required: false, excluded: false, ...o });

describe('query parsing', () => {
  it.each([
    ['plain words', 'tomato basil', [term('tomato'), term('basil')]],
    ['a question: stop words and punctuation dropped', 'How do I water the tomatoes?', [term('water'), term('tomatoes')]],
    ['a phrase (required, stop words kept) and a prefix', '"the full sun" wat*', [term('the full sun', { phrase: true, required: true }), term('wat', { prefix: true })]],
    ['a phrase prefix', '"crème br"*', [term('crème br', { phrase: true, prefix: true, required: true })]],
    ['+word required, NOT excluded', '+basil tomatoes NOT "full sun"', [term('basil', { required: true }), term('tomatoes'), term('full sun', { phrase: true, excluded: true })]],
    ['AND: every content word required', 'the basil AND tomatoes', [term('basil', { required: true }), term('tomatoes', { required: true })]],
    ['OR, NEAR and parentheses dropped', 'ant OR (bee NEAR cow) NEAR/3 doe', ['ant', 'bee', 'cow', 'doe'].map((w) => term(w))],
    ['only stop words: kept rather than nothing', 'What is this?', [term('What'), term('is'), term('this')]],
    ['an unbalanced quote', 'shout "hello', [term('shout'), term('hello')]],
    ['only punctuation', '(( ) * - " : ^', []],
  ])('%s', (_, input, terms) => {
    expect(parseSearchQuery(input)).toEqual(terms);
  });

  it("match 'all' requires every content word; longer words become prefixes when tuned so", () => {
    expect(parseSearchQuery('how to water tomatoes', 'all')).toEqual([term('water', { required: true }), term('tomatoes', { required: true })]);
    const tuned = parseSearchQuery('water tomatoes c3po', 'any', { prefixMinLength: 6, dropStopWords: true });
    expect(tuned.map((t) => t.prefix)).toEqual([false, true, false]); // letters only: c3po stays exact
  });

  it('stop words are function and question words, not topics', () => {
    for (const w of ['how', 'do', 'i', 'the', 'what', "don't", 'use']) expect(STOP_WORDS.has(w)).toBe(true);
    for (const w of ['list', 'file', 'time', 'password']) expect(STOP_WORDS.has(w)).toBe(false);
  });

  it('quotes every term as an FTS5 string; required and excluded terms become filters', () => {
    expect(ftsExpressions(parseSearchQuery('wat* "full sun" x:y'))).toEqual({ rank: '"wat"* OR "full sun" OR "x:y"', required: '"full sun"', excluded: null });
    expect(ftsExpressions(parseSearchQuery('ant bee', 'all'))).toEqual({ rank: '"ant" AND "bee"', required: null, excluded: null });
    expect(ftsExpressions(parseSearchQuery('ant NOT bee'))).toEqual({ rank: '"ant"', required: null, excluded: '"bee"' });
    expect(ftsExpressions(parseSearchQuery('NOT bee'))).toBeNull();
    expect(ftsExpressions([])).toBeNull();
  });
});

/** Every passage ranked, with no per-document cap. */
const uncapped = { perDocument: Infinity };

describe('searchPassages: ranking and word forms', () => {
  it('ranks by bm25: more occurrences in a shorter passage come first', () => {
    const hits = searchPassages(t.db, 'tomatoes', uncapped);
    expect(hits.map((h) => `${h.path}#${h.ordinal}`)).toEqual(['/notes/garden.md#0', '/notes/garden.md#1', '/notes/long.md#0']);
    expect(hits[0].score).toBeGreaterThan(hits[1].score);
    expect(hits[1].score).toBeGreaterThan(hits[2].score);
    expect(hits[0]).toMatchObject({ title: 'garden.md', page: 1, method: 'word', charStart: 0 });
  });

  it('one passage per document while other documents have hits, then the rest in rank order', () => {
    expect(paths('tomatoes')).toEqual(['/notes/garden.md#0', '/notes/long.md#0', '/notes/garden.md#1']);
    expect(paths('tomatoes', { limit: 2 })).toEqual(['/notes/garden.md#0', '/notes/long.md#0']);
    expect(paths('tomatoes', { perDocument: 2, limit: 2 })).toEqual(['/notes/garden.md#0', '/notes/garden.md#1']);
  });

  it('stems: "running" finds "runs" and "running", "tomato" finds "tomatoes"', () => {
    expect(paths('running')).toEqual(['/notes/running.md#0']);
    expect(paths('run')).toContain('/notes/running.md#0');
    expect(paths('tomato')).toHaveLength(3);
  });

  it('folds diacritics both ways: "cafe" finds "café", "creme brulee" finds "Crème brûlée"', () => {
    expect(paths('cafe')).toEqual(['/notes/cafe.md#0']);
    expect(paths('CAFÉ')).toEqual(['/notes/cafe.md#0']);
    expect(paths('creme brulee')).toEqual(['/notes/cafe.md#1']);
  });

  it('needs one content word by default, ranking passages with more of them first; all of them on request', () => {
    expect(paths('basil tomatoes', uncapped)).toEqual(['/notes/garden.md#1', '/notes/garden.md#0', '/notes/long.md#0']);
    expect(paths('basil runner').sort()).toEqual(['/notes/garden.md#1', '/notes/running.md#1']);
    expect(paths('basil tomatoes', { match: 'all' })).toEqual(['/notes/garden.md#1']);
    expect(paths('basil runner', { match: 'all' })).toEqual([]);
    expect(paths('basil AND runner')).toEqual([]);
  });

  it('a question finds the passage about it', () => {
    expect(paths('Where did we meet, near which station?')[0]).toBe('/notes/cafe.md#0');
    expect(paths('What should I plant next to my tomatoes?', uncapped)[0]).toBe('/notes/garden.md#0');
  });

  it('quoted phrases and +words restrict; NOT excludes; prefixes on purpose', () => {
    expect(paths('"full sun"')).toEqual(['/notes/garden.md#0']);
    expect(paths('"sun full"')).toEqual([]);
    expect(paths('tomatoes "full sun"', uncapped)).toEqual(['/notes/garden.md#0']);
    expect(paths('tomatoes +basil', uncapped)).toEqual(['/notes/garden.md#1']);
    expect(paths('tomatoes NOT basil', uncapped)).toEqual(['/notes/garden.md#0', '/notes/long.md#0']);
    expect(paths('NOT basil')).toEqual([]);
    expect(paths('bas*')).toEqual(['/notes/garden.md#1']);
    expect(paths('bas')).toEqual([]);
  });

  it('filters by folder and honours the limit', () => {
    expect(paths('tomatoes', { folderId: notesFolder, limit: 1 })).toEqual(['/notes/garden.md#0']);
    expect(paths('station', { folderId: notesFolder + 1 })).toEqual([]);
  });

  it('marks matches in the snippet and splits them for rendering', () => {
    const [hit] = searchPassages(t.db, 'station');
    expect(hit.snippet).toContain(`${HIGHLIGHT_OPEN}station${HIGHLIGHT_CLOSE}`);
    expect(highlightParts(hit.snippet).filter((p) => p.highlighted)).toEqual([{ text: 'station', highlighted: true }]);
    const [custom] = searchPassages(t.db, 'station', { marks: { open: '[', close: ']' } });
    expect(custom.snippet).toBe('We met at the café near the [station].');
    const [whole] = searchPassages(t.db, 'tomatoes water', { marks: { open: '<', close: '>' } });
    expect(whole.highlighted).toBe('<Tomatoes> need full sun. <Water> <tomatoes> deeply; stake <tomatoes> early.');
  });

  it('marks the content words of a question, not its stop words', () => {
    const [hit] = searchPassages(t.db, 'Is the cafe at the station?', { marks: { open: '<', close: '>' } });
    expect(hit.highlighted).toBe('We met at the <café> near the <station>.');
  });

  it('highlightPassage marks one passage as its search hit would, or says the query misses it', () => {
    const [garden1] = searchPassages(t.db, '+basil');
    const marks = { open: '<', close: '>' };
    expect(highlightPassage(t.db, garden1.passageId, 'how do basil and tomatoes grow?', { marks })).toBe(
      '<Basil> <grows> well beside <tomatoes> in a sunny bed with other herbs and flowers.',
    );
    expect(highlightPassage(t.db, garden1.passageId, 'station')).toBeNull();
    expect(highlightPassage(t.db, garden1.passageId, 'basil NOT herbs')).toBeNull();
    const [tokyo] = searchPassages(t.db, '東京都');
    expect(highlightPassage(t.db, tokyo.passageId, '通勤', { marks })).toBe('東京都に住んでいます。毎日電車で<通勤>しています。');
  });
});

describe('searchPassages: Chinese and Japanese', () => {
  it('finds a substring of 3+ characters through the trigram index', () => {
    expect(paths('東京都')).toEqual(['/docs/tokyo.md#0']);
    expect(paths('中国的首都')).toEqual(['/docs/china.md#0']);
    const [hit] = searchPassages(t.db, '電車で通勤');
    expect(hit).toMatchObject({ path: '/docs/tokyo.md', method: 'substring' });
    expect(hit.snippet).toContain(`${HIGHLIGHT_OPEN}電車で通勤${HIGHLIGHT_CLOSE}`);
  });

  it('finds 1-2 character terms by scanning, ranked by occurrences', () => {
    expect(paths('京都').sort()).toEqual(['/docs/tokyo.md#0', '/docs/tokyo.md#1']);
    const hits = searchPassages(t.db, '都');
    expect(hits.map((h) => h.method)).toEqual(['scan', 'scan', 'scan']);
    expect(hits[0]).toMatchObject({ path: '/docs/tokyo.md', ordinal: 1 }); // 京都は古い都です: twice
    expect(hits[0].score).toBe(2);
    const [capital] = searchPassages(t.db, '首都', { marks: { open: '<', close: '>' } });
    expect(capital.snippet).toBe('北京是中国的<首都>。');
    expect(capital.highlighted).toBe('北京是中国的<首都>。');
  });

  it('cuts a window around the first match of a short term in a long passage', () => {
    const [hit] = searchPassages(t.db, '江', { marks: { open: '<', close: '>' } });
    expect(hit.snippet).toBe(`…${'长'.repeat(40)}<江>${'水'.repeat(40)}…`);
  });

  it('does not find CJK words by word search alone (why the trigram index exists)', () => {
    const viaWords = t.db.prepare(`SELECT COUNT(*) FROM passages_fts WHERE passages_fts MATCH '"東京都"'`).pluck().get();
    expect(viaWords).toBe(0);
  });
});

describe('the trigram index holds only passages that need substring search', () => {
  const inTrigram = (db: TempDb['db']) =>
    (db.prepare('SELECT p.text FROM passages_trigram_docsize s JOIN passages p ON p.id = s.id ORDER BY p.id').pluck().all() as string[]);
  const integrityCheck = (db: TempDb['db']) => {
    // rank 1: also compare each index with its content (the trigram table's is the view passages_substring).
    db.prepare(`INSERT INTO passages_fts(passages_fts, rank) VALUES ('integrity-check', 1)`).run();
    db.prepare(`INSERT INTO passages_trigram(passages_trigram, rank) VALUES ('integrity-check', 1)`).run();
  };

  it('leaves English passages out and puts CJK passages in', () => {
    const cjk = Object.values(corpus).flat().filter((text) => /[東京北上长]/u.test(text));
    expect(inTrigram(t.db).sort()).toEqual(cjk.sort());
    const english = t.db.prepare(`SELECT COUNT(*) FROM passages_trigram WHERE passages_trigram MATCH '"tomatoes"'`).pluck().get();
    expect(english).toBe(0);
    expect(paths('tomatoes').length).toBeGreaterThan(0); // word search still finds them
    integrityCheck(t.db);
  });

  it('a mixed query with match any still finds English passages by their words', () => {
    const hits = searchPassages(t.db, '東京都 runner', { match: 'any' });
    expect(hits.map((h) => `${h.path}#${h.ordinal}`).sort()).toEqual(['/docs/tokyo.md#0', '/notes/running.md#1']);
    expect(hits.find((h) => h.path === '/notes/running.md')).toMatchObject({ method: 'word' });
    expect(hits.find((h) => h.path === '/docs/tokyo.md')).toMatchObject({ method: 'substring' });
    // with 'all', a hit must contain the CJK term, so only indexed passages can match
    expect(paths('東京都 runner', { match: 'all' })).toEqual([]);
    expect(paths('+東京都 runner')).toEqual(['/docs/tokyo.md#0']);
    expect(searchPassages(t.db, '東京都 runner', { match: 'any', folderId: notesFolder }).map((h) => h.path)).toEqual(['/notes/running.md']);
  });

  it('stays consistent through inserts, deletes and replacements of mixed passages', () => {
    const own = tempDb();
    try {
      const folder = addFolder(own.db, '/mixed').id;
      const doc = (path: string) => upsertDocument(own.db, { folderId: folder, path, size: 1, mtimeMs: 1, status: 'indexed' }).id;
      const a = doc('/mixed/a.md');
      const b = doc('/mixed/b.md');
      const put = (id: number, texts: string[]) =>
        replacePassages(own.db, id, texts.map((text, i) => ({ text, charStart: i, charEnd: i + 1 })));
      put(a, ['An English passage about rivers.', '日本語の文章です。川について。', 'Mixed: the river 長江 is long.']);
      put(b, ['Another English passage.', '한국어 문장입니다.']);
      expect(inTrigram(own.db)).toEqual(['日本語の文章です。川について。', 'Mixed: the river 長江 is long.', '한국어 문장입니다.']);
      integrityCheck(own.db);
      expect(searchPassages(own.db, '文章です').map((h) => h.path)).toEqual(['/mixed/a.md']);

      // replace: CJK passages become English and the other way round
      put(a, ['日本語に変わりました。', 'Now only English here.']);
      integrityCheck(own.db);
      expect(inTrigram(own.db)).toEqual(['한국어 문장입니다.', '日本語に変わりました。']);
      expect(searchPassages(own.db, '文章です')).toEqual([]);
      expect(searchPassages(own.db, '変わりました').map((h) => h.path)).toEqual(['/mixed/a.md']);
      expect(searchPassages(own.db, 'english').map((h) => h.path).sort()).toEqual(['/mixed/a.md', '/mixed/b.md']);

      // direct updates of the text or the flag keep index and view in step (the update trigger)
      own.db.prepare(`UPDATE passages SET text = '東京タワーの話', substring_indexed = 1 WHERE text = 'Another English passage.'`).run();
      own.db.prepare(`UPDATE passages SET substring_indexed = 0 WHERE text = '한국어 문장입니다.'`).run();
      integrityCheck(own.db);
      expect(inTrigram(own.db)).toEqual(['東京タワーの話', '日本語に変わりました。']);

      // delete: a document's passages go, cascading from the document
      own.db.prepare('DELETE FROM documents WHERE id = ?').run(b);
      put(a, []);
      integrityCheck(own.db);
      expect(inTrigram(own.db)).toEqual([]);
      expect(own.db.prepare('SELECT COUNT(*) FROM passages_trigram_docsize').pluck().get()).toBe(0);
    } finally {
      own.cleanup();
    }
  });
});

describe('searchPassages: hostile input', () => {
  const hostile = [
    '"', '""', '"""', "'", '(', ')', '((a)', 'a)', '*', '**', 'a**b', '*a', '-', '--', '-a', 'a -b', 'NOT', 'AND OR',
    'a AND', 'OR b', 'NEAR', 'NEAR(', 'NEAR(a b', 'NEAR(a b, 2)', 'a NEAR/2 b', 'text:a', '{text}: a', '^a', 'a + b',
    'col:', ':', '\\', '%', '_', '%_\\', 'a"b', '"a" "b', '\u0000', '\u0002x\u0003', 'DROP TABLE passages; --',
    '  ', '', '東"京', '京*', '"東京都"*', 'c++', 'e-mail', '50%', 'NEAR(a b) and "quotes"', '🙂', 'x'.repeat(5000),
  ];
  it.each(hostile.map((q) => [JSON.stringify(q).slice(0, 40), q]))('%s does not throw', (_, q) => {
    expect(() => searchPassages(t.db, q)).not.toThrow();
    expect(() => searchPassages(t.db, q, { match: 'any' })).not.toThrow();
  });

  it('treats syntax characters as text, so they still find what they surround', () => {
    expect(paths('NEAR(a b)')).toEqual(['/docs/syntax.md#0']); // the words a and b, not a NEAR group
    expect(paths('c++ well-known')).toEqual(['/docs/syntax.md#0']);
    expect(paths('"quotes" (c-sharp')).toEqual(['/docs/syntax.md#0']);
    expect(paths('e-mail -- tricks*')).toEqual(['/docs/syntax.md#0']);
    expect(paths('50%')).toEqual(['/docs/syntax.md#0']);
  });
});
