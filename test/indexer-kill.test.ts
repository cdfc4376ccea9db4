// kill -9 the indexer mid-run, twice, then let it finish: the database must end exactly as after an
// uninterrupted run (same documents, hashes, statuses and passages; no duplicates, nothing pending).
import { spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { listDocuments } from '../db/documents.ts';
import { openDatabase, type Db } from '../db/open.ts';
import { listPassages } from '../db/passages.ts';
import { tempDir } from './fixtures/db-temp.ts';

const repo = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const child = path.join(repo, 'test/fixtures/indexer-kill-child.ts');
const FILES = 200;

let corpus: string;
let dbs: { dir: string; cleanup: () => void };

/** Runs the child indexer; kills it with SIGKILL once `killAt` files are done (never, if undefined). */
function runChild(dbFile: string, killAt?: number): Promise<{ killed: boolean; done: number; out: string }> {
  return new Promise((resolve, reject) => {
    const proc = spawn(process.execPath, ['--import', 'tsx', child, dbFile, corpus], { cwd: repo, stdio: ['ignore', 'pipe', 'pipe'] });
    let done = 0;
    let out = '';
    let stderr = '';
    proc.stderr.on('data', (d) => (stderr += d));
    proc.stdout.on('data', (d: Buffer) => {
      out += d.toString();
      const matches = [...out.matchAll(/^done (\d+)$/gm)];
      if (matches.length) done = Number(matches[matches.length - 1][1]);
      if (killAt !== undefined && done >= killAt && !proc.killed) proc.kill('SIGKILL');
    });
    proc.on('error', reject);
    proc.on('exit', (code, signal) => {
      if (signal === 'SIGKILL') resolve({ killed: true, done, out });
      else if (code === 0) resolve({ killed: false, done, out });
      else reject(new Error(`indexer child exited with ${code}: ${stderr}`));
    });
  });
}

function snapshot(db: Db) {
  return listDocuments(db).map((d) => ({
    path: d.path,
    size: d.size,
    hash: d.contentHash,
    status: d.status,
    error: d.error,
    passages: listPassages(db, d.id).map((p) => [p.ordinal, p.title, p.text, p.page, p.charStart, p.charEnd, p.tokenCount]),
  }));
}

function readSnapshot(file: string) {
  const db = openDatabase(file);
  try {
    expect(db.pragma('integrity_check', { simple: true })).toBe('ok');
    expect(db.pragma('foreign_key_check')).toEqual([]);
    // The full-text index agrees with the table (external content: 'integrity-check' compares them).
    db.prepare("INSERT INTO passages_fts(passages_fts) VALUES ('integrity-check')").run();
    return snapshot(db);
  } finally {
    db.close();
  }
}

beforeAll(() => {
  corpus = mkdtempSync(path.join(os.tmpdir(), 'quire-kill-corpus-'));
  for (let i = 0; i < FILES; i++) {
    const dir = path.join(corpus, `part-${String(i % 7)}`);
    mkdirSync(dir, { recursive: true });
    const paragraphs = Array.from({ length: 1 + (i % 4) }, (_, k) => `Paragraph ${k} of note ${i}: the ${['otter', 'heron', 'badger', 'lynx'][k]} number ${i * 7 + k} crossed the river at dawn, twice.`);
    const name = i % 3 === 0 ? `note-${i}.md` : `note-${i}.txt`;
    const body = i % 3 === 0 ? `# Note ${i}\n\n${paragraphs.join('\n\n')}\n` : `${paragraphs.join('\n\n')}\n`;
    writeFileSync(path.join(dir, name), body);
  }
  writeFileSync(path.join(corpus, 'empty.txt'), '');
  dbs = tempDir();
});

afterAll(() => {
  if (corpus) rmSync(corpus, { recursive: true, force: true });
  dbs?.cleanup();
});

describe('kill -9 during indexing', () => {
  it('resumes where it stopped and ends as an uninterrupted run', async () => {
    const reference = path.join(dbs.dir, 'reference.db');
    const clean = await runChild(reference);
    expect(clean.killed).toBe(false);
    expect(clean.done).toBe(FILES + 1);

    const interrupted = path.join(dbs.dir, 'interrupted.db');
    const firstKill = await runChild(interrupted, 40);
    expect(firstKill.killed).toBe(true);
    const secondKill = await runChild(interrupted, 120);
    expect(secondKill.killed).toBe(true);
    const last = await runChild(interrupted);
    expect(last.killed).toBe(false);
    // The last run redid only what the killed runs had not committed.
    const summary = JSON.parse(/^summary (.*)$/m.exec(last.out)![1]) as { indexed: number; unchanged: number };
    expect(summary.unchanged).toBeGreaterThanOrEqual(40);
    expect(summary.indexed).toBeLessThan(FILES);

    const expected = readSnapshot(reference);
    const actual = readSnapshot(interrupted);
    expect(actual.length).toBe(FILES + 1);
    expect(actual.filter((d) => d.status === 'pending')).toEqual([]);
    expect(actual).toEqual(expected);
  });
});
