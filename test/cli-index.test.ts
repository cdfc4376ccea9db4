// `quire index` and `quire search` as a user runs them (child processes through bin/quire.js), the
// data directory rules, and the progress renderer.
import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { defaultDbPath, quireHome } from '../electron/app-paths.ts';
import type { IndexCommandSummary } from '../electron/cli/index.ts';
import { ProgressRenderer } from '../electron/cli/progress.ts';
import type { SearchCommandHit } from '../electron/cli/search.ts';
import type { IndexProgress } from '../electron/indexing/indexer.ts';
import { tinySpec } from './tools/tiny-model-spec.ts';
import { GOOD_FILES, makeCorpus, rel, type Corpus } from './fixtures/indexer-corpus.ts';
import { runQuire } from './helpers/cli.ts';
import { makeModelDir, removeDir } from './helpers/models.ts';

const quire = (args: string[], env: NodeJS.ProcessEnv = {}) => runQuire(args, { env });

let corpus: Corpus;
let work: string;

beforeAll(async () => {
  corpus = await makeCorpus();
  work = mkdtempSync(path.join(os.tmpdir(), 'quire-cli-'));
});

afterAll(() => {
  corpus?.cleanup();
  if (work) rmSync(work, { recursive: true, force: true });
});

describe('quire index / quire search', () => {
  it('indexes the corpus, reports bad files, exits 0; search finds page 2 of the PDF', async () => {
    const db = path.join(work, 'cli.db');
    const r = await quire(['index', corpus.root, '--db', db, '--json', '--max-file-mb', '0.0625']);
    expect(r.code, r.stderr).toBe(0);
    const summary = JSON.parse(r.stdout) as IndexCommandSummary;
    expect(summary.indexed).toBe(Object.keys(GOOD_FILES).length);
    expect(summary.kvBlocks).toBe(0);
    expect(summary.passages).toBeGreaterThanOrEqual(summary.indexed);
    const problems = new Map([...summary.failed, ...summary.skipped].map((p) => [rel(corpus.root, p.path), p.reason]));
    expect([...problems.keys()].sort()).toEqual(Object.keys(corpus.bad).sort());
    for (const [file, reason] of Object.entries(corpus.bad)) expect(problems.get(file), file).toMatch(reason);
    // Not a terminal: plain progress lines, no carriage returns.
    expect(r.stderr).toMatch(/^done .*: \d+\/\d+ files/m);
    expect(r.stderr).not.toContain('\r');
    expect(r.stderr).not.toContain('\x1b');

    const s = await quire(['search', 'purple giraffe', '--db', db, '-k', '3', '--json']);
    expect(s.code, s.stderr).toBe(0);
    const { hits } = JSON.parse(s.stdout) as { hits: SearchCommandHit[] };
    expect(hits.length).toBeGreaterThan(0);
    expect(rel(corpus.root, hits[0].path)).toBe('report.pdf');
    expect(hits[0].page).toBe(2);
    expect(hits[0].snippet).toContain('«purple»');
    expect(hits[0].highlights.filter((h) => h.highlighted).map((h) => h.text)).toEqual(['purple', 'giraffe']);
    expect(typeof hits[0].score).toBe('number');

    const text = await quire(['search', 'saffron', '--db', db]);
    expect(text.stdout).toMatch(/1\. .*page\.html/);
    // a question is a query; --all-words wants every content word in one passage (or its title)
    const question = 'Which spray do aphids dislike near the lighthouse?';
    const asked = JSON.parse((await quire(['search', question, '--db', db, '--json'])).stdout) as { hits: SearchCommandHit[] };
    expect(asked.hits.map((h) => rel(corpus.root, h.path))).toEqual(['notes.md', 'plain.txt']);
    expect(asked.hits[0].highlights.filter((h) => h.highlighted).map((h) => h.text)).toEqual(['Aphids', 'dislike', 'spray']);
    expect(JSON.parse((await quire(['search', question, '--db', db, '--all-words', '--json'])).stdout).hits).toEqual([]);
    const garden = JSON.parse((await quire(['search', 'garden aphids', '--db', db, '--all-words', '--json'])).stdout) as { hits: SearchCommandHit[] };
    expect(garden.hits.map((h) => rel(corpus.root, h.path))).toEqual(['notes.md']); // "Garden" is in the passage's title
    const again = await quire(['index', corpus.root, '--db', db]);
    expect(again.code).toBe(0);
    expect(again.stdout).toMatch(/0 indexed, 7 unchanged/);
  });

  it('indexes names that are not UTF-8 and prints every name escaped: no raw newline or escape sequence', async () => {
    const folder = path.join(work, 'odd-names');
    mkdirSync(folder);
    const named = (bytes: number[] | string) => Buffer.concat([Buffer.from(folder + path.sep), Buffer.from(bytes as never)]);
    writeFileSync(named([0x63, 0x61, 0x66, 0xe9, 0x2e, 0x74, 0x78, 0x74]), 'The ocelot naps in the Latin-1 file.\n'); // "café.txt", Latin-1
    writeFileSync(named([0xff, 0xfe, 0x2e, 0x6d, 0x64]), '# Notes\n\nThe ocelot hunts at dusk.\n');
    writeFileSync(named('evil\n\x1b[2Jname.pdf'), 'not a PDF at all'); // fails, so its name is printed
    writeFileSync(named('log.txt'), 'the ocelot \x1b]0;pwned\x07 line\n');
    const db = path.join(work, 'odd.db');
    const r = await quire(['index', folder, '--db', db]);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/4 files: 3 indexed, 0 unchanged, 0 skipped, 1 failed/);
    expect(r.stdout).toContain(`failed  ${folder}${path.sep}evil\\n\\x1b[2Jname.pdf: corrupt PDF`);
    expect(r.stdout).not.toContain('\x1b');
    expect(r.stdout.split('\n').filter((line) => line.startsWith('failed'))).toHaveLength(1);

    const s = await quire(['search', 'ocelot', '--db', db]);
    expect(s.code, s.stderr).toBe(0);
    expect(s.stdout).toContain(`${folder}${path.sep}caf\\xe9.txt`);
    expect(s.stdout).toContain(`${folder}${path.sep}\\xff\\xfe.md`);
    expect(s.stdout).toContain('\\x1b]0;pwned\\x07');
    // no control character but line breaks: nothing from the files reached the terminal raw
    // eslint-disable-next-line no-control-regex
    expect(s.stdout).not.toMatch(/[\x00-\x08\x0b-\x1f\x7f]/);
  });

  it('uses QUIRE_HOME for the default database, and fails clearly without one', async () => {
    const home = path.join(work, 'home');
    const folder = path.join(work, 'tiny');
    mkdirSync(folder);
    writeFileSync(path.join(folder, 'a.txt'), 'The albatross glides.\n');
    const r = await quire(['index', folder, '--json'], { QUIRE_HOME: home });
    expect(r.code, r.stderr).toBe(0);
    expect(existsSync(path.join(home, 'quire.db'))).toBe(true);
    const s = await quire(['search', 'albatross', '--json'], { QUIRE_HOME: home });
    expect(JSON.parse(s.stdout).hits).toHaveLength(1);
    const missing = await quire(['search', 'x'], { QUIRE_HOME: path.join(work, 'nowhere') });
    expect(missing.code).toBe(1);
    expect(missing.stderr).toMatch(/no index at/);
    const bad = await quire(['index', path.join(work, 'no-such-dir'), '--db', path.join(work, 'x.db')]);
    expect(bad.code).toBe(1);
    expect(bad.stderr).toMatch(/ENOENT/);
  });

  it('prints file names with control characters escaped; --json keeps them exact', async () => {
    const folder = path.join(work, 'hostile');
    mkdirSync(folder);
    const evil = 'clear\x1b[2J\nfake line.txt';
    writeFileSync(path.join(folder, evil), 'The quokka smiles.\n');
    writeFileSync(path.join(folder, 'empty\x07.txt'), '');
    const db = path.join(work, 'hostile.db');
    const r = await quire(['index', folder, '--db', db]);
    expect(r.code, r.stderr).toBe(0);
    const controls = [...(r.stdout + r.stderr)].filter((c) => c.charCodeAt(0) < 0x20 && c !== '\n');
    expect(controls).toEqual([]);
    expect(r.stdout).toContain(`skipped ${folder}/empty\\x07.txt: `);
    const s = await quire(['search', 'quokka', '--db', db]);
    expect(s.stdout).not.toContain('\x1b');
    expect(s.stdout).toContain(`1. ${folder}/clear\\x1b[2J\\nfake line.txt  [`);
    const j = await quire(['search', 'quokka', '--db', db, '--json']);
    expect((JSON.parse(j.stdout) as { hits: SearchCommandHit[] }).hits[0].path).toBe(path.join(folder, evil));
  });

  it('with --model, prefills passage KV; unchanged passages are not prefilled again', async () => {
    const modelDir = await makeModelDir(tinySpec());
    try {
      const folder = path.join(work, 'kv');
      mkdirSync(folder);
      writeFileSync(path.join(folder, 'a.md'), '# Alpha\n\nThe first note.\n');
      writeFileSync(path.join(folder, 'b.md'), '# Beta\n\nThe second note.\n');
      const db = path.join(work, 'kv.db');
      const first = await quire(['index', folder, '--db', db, '--model', modelDir, '--json']);
      expect(first.code, first.stderr).toBe(0);
      const s1 = JSON.parse(first.stdout) as IndexCommandSummary;
      expect(s1.kvBlocks).toBe(2);
      writeFileSync(path.join(folder, 'b.md'), '# Beta\n\nThe second note, edited.\n');
      const second = await quire(['index', folder, '--db', db, '--model', modelDir, '--json']);
      const s2 = JSON.parse(second.stdout) as IndexCommandSummary;
      expect(s2).toMatchObject({ indexed: 1, unchanged: 1, kvBlocks: 1 });
      const noKv = await quire(['index', folder, '--db', path.join(work, 'nokv.db'), '--model', modelDir, '--no-kv', '--json']);
      expect(JSON.parse(noKv.stdout) as IndexCommandSummary).toMatchObject({ kvBlocks: 0, kvBudgetBytes: null, kvStoredBytes: null });
      // --provider pins the provider prefill runs on, as it does for ask and generate
      const pinned = await quire(['index', folder, '--db', db, '--model', modelDir, '--provider', 'cpu', '--json']);
      expect((JSON.parse(pinned.stdout) as IndexCommandSummary).provider).toBe('cpu');
    } finally {
      removeDir(modelDir);
    }
  });
});

describe('app paths', () => {
  it('follows QUIRE_HOME, then the platform data directory', () => {
    expect(quireHome({ env: { QUIRE_HOME: '/data/q' }, platform: 'linux', homedir: '/home/u' })).toBe('/data/q');
    expect(quireHome({ env: {}, platform: 'linux', homedir: '/home/u' })).toBe('/home/u/.local/share/quire');
    expect(quireHome({ env: { XDG_DATA_HOME: '/xdg' }, platform: 'linux', homedir: '/home/u' })).toBe('/xdg/quire');
    expect(quireHome({ env: { XDG_DATA_HOME: 'relative' }, platform: 'linux', homedir: '/home/u' })).toBe('/home/u/.local/share/quire');
    expect(quireHome({ env: {}, platform: 'darwin', homedir: '/Users/u' })).toBe('/Users/u/Library/Application Support/Quire');
    expect(quireHome({ env: { APPDATA: 'C:\\Users\\u\\AppData\\Roaming' }, platform: 'win32', homedir: 'C:\\Users\\u' })).toBe(
      'C:\\Users\\u\\AppData\\Roaming\\Quire',
    );
    expect(defaultDbPath({ env: { QUIRE_HOME: '/data/q' }, platform: 'linux' })).toBe('/data/q/quire.db');
  });
});

describe('ProgressRenderer', () => {
  const base: IndexProgress = {
    folderId: 1, root: '/r', phase: 'indexing', filesFound: 10, filesDone: 5, filesIndexed: 4, filesUnchanged: 0,
    filesSkipped: 1, filesFailed: 0, passages: 12, kvBlocks: 0, bytesDone: 2048, bytesTotal: 4096, etaMs: 3000,
  };

  it('draws a bar in place on a terminal', () => {
    let out = '';
    let t = 0;
    const r = new ProgressRenderer({ write: (s: string) => (out += s), isTTY: true, columns: 200 }, { now: () => t });
    r.update({ ...base, phase: 'scanning' });
    r.update(base);
    expect(out).toContain('\r\x1b[2K[##########----------]  50% 5/10 files (1 skipped), 12 passages, 2.0 KB/4.0 KB, ETA 3s');
    t = 10;
    r.update({ ...base, filesDone: 6 }); // throttled
    expect(out).not.toContain('6/10');
    r.update({ ...base, phase: 'done', filesDone: 10, bytesDone: 4096 });
    expect(out.endsWith('\n')).toBe(true);
  });

  it('writes plain lines, throttled, when not a terminal', () => {
    let out = '';
    let t = 0;
    const r = new ProgressRenderer({ write: (s: string) => (out += s) }, { now: () => t });
    r.update({ ...base, phase: 'scanning', filesFound: 3 });
    r.update(base);
    t = 500;
    r.update({ ...base, filesDone: 6 });
    t = 2600;
    r.update({ ...base, filesDone: 7 });
    r.update({ ...base, phase: 'done', filesDone: 10 });
    expect(out.split('\n').filter(Boolean)).toEqual([
      'scanning /r: 3 files',
      'indexing /r: 5/10 files (1 skipped), 12 passages, 2.0 KB/4.0 KB, ETA 3s',
      'indexing /r: 7/10 files (1 skipped), 12 passages, 2.0 KB/4.0 KB, ETA 3s',
      'done /r: 10/10 files (1 skipped), 12 passages, 2.0 KB/4.0 KB',
    ]);
  });
});
