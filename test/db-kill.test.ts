// A writer killed with SIGKILL mid-transaction must leave a consistent database: SQLite's WAL
// rolls the unfinished transaction back, and no entry is half there.
import { spawn } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterEach, describe, expect, it } from 'vitest';
import { KvStore } from '../db/kv-store.ts';
import { tokenHash } from '../db/hash.ts';
import { openDatabase } from '../db/open.ts';
import { tempDir } from './fixtures/db-temp.ts';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const writer = path.join(root, 'test/fixtures/db-kv-writer.ts');
const BATCH = 4; // as in db-kv-writer.ts

/** Runs the writer until `shouldKill` says so, SIGKILLs it, and returns the last committed count. */
function runAndKill(file: string, pauseMs: number, shouldKill: (line: string, committed: number) => boolean): Promise<number> {
  return new Promise((resolve, reject) => {
    // node itself (not npx) so that the pid we kill is the process that writes.
    const child = spawn(process.execPath, ['--import', 'tsx', writer, file, String(pauseMs)], { cwd: root, stdio: ['ignore', 'pipe', 'pipe'] });
    let committed = 0;
    let buffered = '';
    let stderr = '';
    child.stderr.on('data', (d) => (stderr += d));
    child.stdout.on('data', (d: Buffer) => {
      buffered += d.toString();
      const lines = buffered.split('\n');
      buffered = lines.pop()!;
      for (const line of lines) {
        const m = /^committed (\d+)$/.exec(line);
        if (m) committed = Number(m[1]);
        if (!child.killed && shouldKill(line, committed)) child.kill('SIGKILL');
      }
    });
    child.on('error', reject);
    child.on('exit', (code, signal) => {
      if (signal === 'SIGKILL') resolve(committed);
      else reject(new Error(`writer exited by itself (code ${code}): ${stderr}`));
    });
  });
}

function checkConsistent(file: string, committed: number): void {
  const db = openDatabase(file);
  try {
    expect(db.pragma('integrity_check', { simple: true })).toBe('ok');
    expect(db.pragma('foreign_key_check')).toEqual([]);
    const blocks = db.prepare('SELECT COUNT(*) FROM kv_blocks').pluck().get() as number;
    const blobs = db.prepare('SELECT COUNT(*) FROM kv_blobs').pluck().get() as number;
    expect(blobs).toBe(blocks);
    // Whole transactions only: every committed batch is there, the killed one is not there at all.
    expect(blocks % BATCH).toBe(0);
    expect(blocks).toBeGreaterThanOrEqual(committed);
    expect(blocks).toBeLessThanOrEqual(committed + BATCH);
    const store = new KvStore(db);
    for (let i = 0; i < blocks; i++) {
      expect(store.get({ modelFingerprint: 'kill-test', tokenHash: tokenHash([i]) }).status).toBe('hit');
    }
    expect(store.stats()).toMatchObject({ corrupt: 0, hits: blocks });
  } finally {
    db.close();
  }
}

let cleanup: (() => void) | undefined;
afterEach(() => cleanup?.());

describe('kill -9 during KV writes', () => {
  it('leaves a consistent database when killed mid-transaction', async () => {
    const t = tempDir();
    cleanup = t.cleanup;
    const file = path.join(t.dir, 'quire.db');
    const committed = await runAndKill(file, 50, (line, c) => line.startsWith('mid') && c >= 3 * BATCH);
    expect(committed).toBeGreaterThanOrEqual(3 * BATCH);
    checkConsistent(file, committed);
  });

  it('leaves a consistent database when killed at an arbitrary moment, twice on the same file', async () => {
    const t = tempDir();
    cleanup = t.cleanup;
    const file = path.join(t.dir, 'quire.db');
    // No pause: the kill lands wherever the writer is (encoding, inserting, committing, checkpointing).
    let committed = await runAndKill(file, 0, (_, c) => c >= 40 * BATCH);
    checkConsistent(file, committed);
    committed = await runAndKill(file, 0, (_, c) => c >= 60 * BATCH); // restarts from 0: same keys, replaced
    checkConsistent(file, Math.max(committed, 40 * BATCH));
  });
});
