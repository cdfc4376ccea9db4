import { execFileSync } from 'node:child_process';
import { chmodSync, mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { walkFolder, type WalkEntry, type WalkProblem } from '../electron/indexing/walk.ts';

let base: string;
let root: string;
let outside: string;
const isRoot = process.getuid?.() === 0;

function write(file: string, content = 'x'): void {
  mkdirSync(path.dirname(file), { recursive: true });
  writeFileSync(file, content);
}

async function collect(dir: string, options = {}): Promise<WalkEntry[]> {
  const entries: WalkEntry[] = [];
  for await (const entry of walkFolder(dir, options)) entries.push(entry);
  return entries;
}

function filesOf(entries: WalkEntry[]): string[] {
  return entries.filter((e) => e.kind === 'file').map((e) => path.relative(root, e.path).split(path.sep).join('/'));
}

function problemsOf(entries: WalkEntry[]): Record<string, string> {
  const problems = entries.filter((e): e is WalkProblem => e.kind === 'problem');
  return Object.fromEntries(problems.map((p) => [path.relative(root, p.path).split(path.sep).join('/'), p.reason]));
}

beforeAll(() => {
  base = mkdtempSync(path.join(os.tmpdir(), 'quire-walk-'));
  root = path.join(base, 'root');
  outside = path.join(base, 'outside');
  write(path.join(root, 'a.md'), '# A');
  write(path.join(root, 'build'), 'a FILE named build is not a build directory');
  write(path.join(root, '.hidden.md'));
  write(path.join(root, '.git/config'));
  write(path.join(root, 'node_modules/pkg/index.js'));
  write(path.join(root, 'dist/bundle.js'));
  write(path.join(root, 'out/report.txt'));
  write(path.join(root, 'src/__pycache__/m.pyc'));
  write(path.join(root, '~$draft.docx'));
  // The root's own rules re-include one default (out/) and exclude a folder.
  write(path.join(root, '.quireignore'), '!out/\nsecret/\narchive/\n');
  write(path.join(root, 'secret/plans.txt'));
  write(path.join(root, 'archive/old.md'));
  // Scoped rules: they apply under docs/ only; a deeper file overrides them.
  write(path.join(root, 'docs/.gitignore'), '*.log\n!keep.log\ndrafts/\n/local-only.txt\n');
  write(path.join(root, 'docs/guide.md'));
  write(path.join(root, 'docs/debug.log'));
  write(path.join(root, 'docs/keep.log'));
  write(path.join(root, 'docs/drafts/wip.md'));
  write(path.join(root, 'docs/local-only.txt'));
  write(path.join(root, 'docs/sub/local-only.txt')); // anchored pattern: only docs/local-only.txt
  write(path.join(root, 'docs/sub/other.log'));
  write(path.join(root, 'docs/sub/.quireignore'), '!important.log\n!archive/\n');
  write(path.join(root, 'docs/sub/archive/kept.md')); // re-included below the root's archive/ rule
  write(path.join(root, 'docs/sub/important.log'));
  write(path.join(root, 'debug.log')); // *.log from docs/.gitignore does not reach up here
  write(path.join(root, 'notes/n.txt'));
  // Symlinks: a loop to the root, duplicates of things inside the root, a dangling one,
  // a self-referencing one, and two links to one folder outside the root (which loops on itself).
  symlinkSync(root, path.join(root, 'notes/loop'));
  symlinkSync(path.join(root, 'notes'), path.join(root, 'notes-link'));
  symlinkSync(path.join(root, 'a.md'), path.join(root, 'a-link.md'));
  symlinkSync(path.join(root, 'nowhere'), path.join(root, 'broken-link'));
  symlinkSync(path.join(root, 'self-link'), path.join(root, 'self-link'));
  write(path.join(outside, 'o.txt'));
  symlinkSync(outside, path.join(outside, 'back'));
  symlinkSync(outside, path.join(root, 'ext-1'));
  symlinkSync(outside, path.join(root, 'ext-2'));
  symlinkSync(path.join(outside, 'o.txt'), path.join(root, 'o-link-1.txt'));
  // Special files and unreadable directories.
  if (process.platform !== 'win32') execFileSync('mkfifo', [path.join(root, 'pipe')]);
  write(path.join(root, 'locked/inside.txt'));
  chmodSync(path.join(root, 'locked'), 0o000);
});

afterAll(() => {
  chmodSync(path.join(root, 'locked'), 0o755);
  rmSync(base, { recursive: true, force: true });
});

describe('walkFolder', () => {
  it('yields indexable files with size and mtime, leaving out defaults and ignore-file matches', async () => {
    const entries = await collect(root);
    const files = filesOf(entries);
    const expected = [
      'a.md', 'build', 'debug.log', 'docs/guide.md', 'docs/keep.log', 'docs/sub/archive/kept.md', 'docs/sub/important.log',
      'docs/sub/local-only.txt',
      'notes/n.txt', 'o-link-1.txt', 'out/report.txt',
    ];
    // As root, chmod 000 does not stop reading: the locked directory is walked like any other.
    if (isRoot) expected.push('locked/inside.txt');
    expect([...files].sort()).toEqual(expected.sort());

    const a = entries.find((e) => e.kind === 'file' && e.path === path.join(root, 'a.md'));
    expect(a).toMatchObject({ kind: 'file', size: 3 });
    expect(a!.kind === 'file' && a!.mtimeMs).toBeGreaterThan(0);
  });

  it('reports loops, duplicates, broken links and special files as problems without stopping', async () => {
    const problems = problemsOf(await collect(root));
    expect(problems['notes/loop']).toBe(`symlink loop (-> ${root})`);
    expect(problems['self-link']).toBe('symlink loop (links point at each other)');
    expect(problems['broken-link']).toBe('broken symlink');
    expect(problems['notes-link']).toMatch(/^duplicate: symlink to .*notes$/);
    expect(problems['a-link.md']).toMatch(/^duplicate: symlink to .*a\.md$/);
    expect(problems['ext-2']).toBe(`duplicate: already walked as ${path.join(root, 'ext-1')}`);
    expect(problems['ext-1/back']).toBe(`symlink loop (-> ${outside})`);
    // o-link-1.txt (a file of the root) is walked before the ext-1 directory.
    expect(problems['ext-1/o.txt']).toBe(`duplicate: already walked as ${path.join(root, 'o-link-1.txt')}`);
    if (process.platform !== 'win32') expect(problems['pipe']).toBe('not a regular file (FIFO)');
    if (!isRoot) expect(problems['locked']).toBe('unreadable directory (EACCES)');
    // Ignored paths produce no problems either.
    expect(Object.keys(problems).some((p) => p.startsWith('node_modules') || p.startsWith('.git'))).toBe(false);
  });

  it('walks in name order, a directory\'s files before its subdirectories', async () => {
    const files = filesOf(await collect(path.join(root, 'docs'))).map((f) => path.basename(f));
    expect(files).toEqual(['guide.md', 'keep.log', 'important.log', 'local-only.txt', 'kept.md']);
  });

  it('replaces the defaults when given ignorePatterns, and can skip reading ignore files', async () => {
    const files = filesOf(await collect(root, { ignorePatterns: ['.git/', 'locked/'], ignoreFileNames: [] }));
    expect(files).toContain('.hidden.md');
    expect(files).toContain('dist/bundle.js');
    expect(files).toContain('docs/debug.log');
    expect(files).toContain('secret/plans.txt');
    expect(files).not.toContain('.git/config');
  });

  it('reports a missing or non-directory root as a single problem', async () => {
    const missing = await collect(path.join(base, 'missing'));
    expect(missing).toEqual([{ kind: 'problem', path: path.join(base, 'missing'), reason: 'unreadable (ENOENT)' }]);
    const file = await collect(path.join(root, 'a.md'));
    expect(file).toEqual([{ kind: 'problem', path: path.join(root, 'a.md'), reason: 'not a directory' }]);
  });

  it('stops when the consumer stops', async () => {
    let seen = 0;
    for await (const _entry of walkFolder(root)) {
      if (++seen === 2) break;
    }
    expect(seen).toBe(2);
  });

  it('reaches files whose names are not UTF-8 through Buffer paths, showing their bytes as \\xHH', async () => {
    const dir = mkdtempSync(path.join(base, 'names-'));
    const bytesPath = (...names: (string | number[])[]) =>
      Buffer.concat([Buffer.from(dir), ...names.flatMap((n) => [Buffer.from(path.sep), typeof n === 'string' ? Buffer.from(n) : Buffer.from(n)])]);
    mkdirSync(bytesPath([0x64, 0xe9, 0x6a, 0xe0])); // "déjà" in Latin-1
    writeFileSync(bytesPath([0x63, 0x61, 0x66, 0xe9, 0x2e, 0x74, 0x78, 0x74]), 'Latin-1 name'); // "café.txt"
    writeFileSync(bytesPath([0xff, 0xfe, 0x2e, 0x6d, 0x64]), 'two bytes that start no character');
    writeFileSync(bytesPath([0x64, 0xe9, 0x6a, 0xe0], 'inner.txt'), 'inside a Latin-1 directory');
    writeFileSync(path.join(dir, 'plain.txt'), 'plain');
    const entries = await collect(dir);
    expect(entries.filter((e) => e.kind === 'problem')).toEqual([]);
    const files = entries.flatMap((e) => (e.kind === 'file' ? [e] : []));
    expect(files.map((f) => path.relative(dir, f.path))).toEqual(['\\xff\\xfe.md', 'caf\\xe9.txt', 'plain.txt', path.join('d\\xe9j\\xe0', 'inner.txt')]);
    // the Buffer path reads the file; a UTF-8 name needs none
    expect(files.map((f) => (f.fsPath ? readFileSync(f.fsPath, 'utf8') : null))).toEqual([
      'two bytes that start no character',
      'Latin-1 name',
      null,
      'inside a Latin-1 directory',
    ]);
  });
});
