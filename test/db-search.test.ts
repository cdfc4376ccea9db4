import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { addFolder } from '../db/folders.ts';
import { upsertDocument } from '../db/documents.ts';
import { replacePassages } from '../db/passages.ts';
import { ftsMatchExpression, parseSearchQuery } from '../db/fts-query.ts';
import { HIGHLIGHT_CLOSE, HIGHLIGHT_OPEN, highlightParts, searchPassages } from '../db/search.ts';
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

describe('query parsing', () => {
  it.each([
    ['plain words', 'tomato basil', [{ text: 'tomato', phrase: false, prefix: false }, { text: 'basil', phrase: false, prefix: false }]],
    ['a phrase and a prefix', '"full sun" wat*', [{ text: 'full sun', phrase: true, prefix: false }, { text: 'wat', phrase: false, prefix: true }]],
    ['a phrase prefix', '"crème br"*', [{ text: 'crème br', phrase: true, prefix: true }]],
    ['operators dropped', 'a AND b OR NOT c NEAR d NEAR/3 e', ['a', 'b', 'c', 'd', 'e'].map((text) => ({ text, phrase: false, prefix: false }))],
    ['an unbalanced quote', 'say "hello', [{ text: 'say', phrase: false, prefix: false }, { text: 'hello', phrase: false, prefix: false }]],
    ['only punctuation', '(( ) * - " : ^', []],
  ])('%s', (_, input, terms) => {
    expect(parseSearchQuery(input)).toEqual(terms);
  });

  it('quotes every term as an FTS5 string', () => {
    expect(ftsMatchExpression(parseSearchQuery('wat* "full sun" x:y'))).toBe('"wat"* AND "full sun" AND "x:y"');
    expect(ftsMatchExpression(parseSearchQuery('a b'), 'any')).toBe('"a" OR "b"');
    expect(ftsMatchExpression([])).toBeNull();
  });
});

describe('searchPassages: ranking and word forms', () => {
  it('ranks by bm25: more occurrences in a shorter passage come first', () => {
    const hits = searchPassages(t.db, 'tomatoes');
    expect(hits.map((h) => `${h.path}#${h.ordinal}`)).toEqual(['/notes/garden.md#0', '/notes/garden.md#1', '/notes/long.md#0']);
    expect(hits[0].score).toBeGreaterThan(hits[1].score);
    expect(hits[1].score).toBeGreaterThan(hits[2].score);
    expect(hits[0]).toMatchObject({ title: 'garden.md', page: 1, method: 'word' });
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

  it('matches all terms by default, any term on request', () => {
    expect(paths('basil tomatoes')).toEqual(['/notes/garden.md#1']);
    expect(paths('basil runner')).toEqual([]);
    expect(paths('basil runner', { match: 'any' }).sort()).toEqual(['/notes/garden.md#1', '/notes/running.md#1']);
  });

  it('supports phrases and prefixes on purpose', () => {
    expect(paths('"full sun"')).toEqual(['/notes/garden.md#0']);
    expect(paths('"sun full"')).toEqual([]);
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
    expect(paths('東京都 runner')).toEqual([]);
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
