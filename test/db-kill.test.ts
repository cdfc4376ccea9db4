// A writer killed with SIGKILL mid-transaction must leave a consistent database: SQLite's WAL
// rolls the unfinished transaction back, and no entry is half there.
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import Database from 'better-sqlite3';
import { fileURLToPath } from 'node:url';
import { afterEach, describe, expect, it } from 'vitest';
import { KvStore } from '../db/kv-store.ts';
import { tokenHash } from '../db/hash.ts';
import { checksumOf } from '../db/checksum.ts';
import { encodeKv } from '../db/kv-codec.ts';
import { kvFileFor } from '../db/kv-file.ts';
import { KV_FILE_MIGRATION, migrate } from '../db/migrations.ts';
import { openDatabase } from '../db/open.ts';
import { randomKv } from './fixtures/db-random-kv.ts';
import { tempDir } from './fixtures/db-temp.ts';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const writer = path.join(root, 'test/fixtures/db-kv-writer.ts');
const migrator = path.join(root, 'test/fixtures/db-kv-migrate-child.ts');
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
    const store = new KvStore(db, { codec: 'float16' });
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

// KV_FILE_MIGRATION moves the KV blocks into their own file: copied there in one commit, dropped from the
// library in the next. Killed anywhere, the next open must finish it with every block readable.
describe('kill -9 during the move of KV blocks to their own file (KV_FILE_MIGRATION)', () => {
  const BLOCKS = 48;
  const shape = { dtype: 'float16' as const, layers: 4, kvHeads: 2, headDim: 32, tokens: 64 }; // 64 KiB each
  const key = (i: number) => ({ modelFingerprint: 'm', tokenHash: tokenHash([i]) });

  /** A library from just before the move, with BLOCKS KV blocks in it, as an older Quire left it. */
  function oldLibrary(file: string): void {
    const raw = new Database(file);
    raw.pragma('journal_mode = WAL');
    migrate(raw, KV_FILE_MIGRATION - 1);
    const insert = raw.prepare(
      `INSERT INTO kv_blocks(model_fingerprint, token_hash, codec, dtype, layers, kv_heads, head_dim, tokens, bytes, checksum,
         created_at, last_used_at, hits) VALUES ('m', ?, 'float16', 'float16', 4, 2, 32, 64, ?, ?, 1, 2, 0) RETURNING id`,
    );
    raw.transaction(() => {
      for (let i = 0; i < BLOCKS; i++) {
        const blob = encodeKv(randomKv(shape, i));
        const id = insert.pluck().get(key(i).tokenHash, blob.byteLength, checksumOf(blob));
        raw.prepare('INSERT INTO kv_blobs(block_id, data) VALUES (?, ?)').run(id, blob);
      }
    })();
    raw.close();
  }

  /** Runs the migrating child, SIGKILLs it when `shouldKill` says so (or lets it finish); returns what it printed. */
  function migrateAndKill(file: string, pauseMs: number, shouldKill: (line: string) => boolean, delayMs = 0): Promise<string[]> {
    return new Promise((resolve, reject) => {
      const child = spawn(process.execPath, ['--import', 'tsx', migrator, file, String(pauseMs)], { cwd: root, stdio: ['ignore', 'pipe', 'pipe'] });
      const lines: string[] = [];
      let buffered = '';
      let stderr = '';
      child.stderr.on('data', (d) => (stderr += d));
      child.stdout.on('data', (d: Buffer) => {
        buffered += d.toString();
        const parts = buffered.split('\n');
        buffered = parts.pop()!;
        for (const line of parts) {
          lines.push(line);
          if (shouldKill(line)) setTimeout(() => child.kill('SIGKILL'), delayMs);
        }
      });
      child.on('error', reject);
      child.on('exit', (code, signal) => (signal === 'SIGKILL' || code === 0 ? resolve(lines) : reject(new Error(`child failed (${code}): ${stderr}`))));
    });
  }

  function checkMigrated(file: string): void {
    const db = openDatabase(file);
    try {
      expect(db.pragma('integrity_check', { simple: true })).toBe('ok');
      expect(db.pragma('kv.integrity_check', { simple: true })).toBe('ok');
      expect(db.pragma('kv.foreign_key_check')).toEqual([]);
      expect(db.prepare(`SELECT COUNT(*) FROM main.sqlite_schema WHERE name LIKE 'kv_%'`).pluck().get()).toBe(0);
      const store = new KvStore(db);
      for (let i = 0; i < BLOCKS; i++) expect(store.get(key(i)).status).toBe('hit');
      expect(store.stats()).toMatchObject({ entries: BLOCKS, corrupt: 0 });
    } finally {
      db.close();
    }
  }

  it('finishes the move at the next open when killed between its two commits', async () => {
    const t = tempDir();
    cleanup = t.cleanup;
    const file = path.join(t.dir, 'quire.db');
    oldLibrary(file);
    const lines = await migrateAndKill(file, 2000, (line) => line === `committed ${KV_FILE_MIGRATION} before`);
    expect(lines).toContain(`committed ${KV_FILE_MIGRATION} before`);
    expect(lines).not.toContain(`committed ${KV_FILE_MIGRATION}`);
    // Killed there, the blocks are in both files and the library is still at the version before.
    const raw = new Database(file, { readonly: true });
    expect(raw.pragma('user_version', { simple: true })).toBe(KV_FILE_MIGRATION - 1);
    expect(raw.prepare('SELECT COUNT(*) FROM kv_blocks').pluck().get()).toBe(BLOCKS);
    raw.close();
    checkMigrated(file);
  });

  it('loses no block when killed at arbitrary moments of the move', async () => {
    const t = tempDir();
    cleanup = t.cleanup;
    const pristine = path.join(t.dir, 'old.db');
    oldLibrary(pristine);
    for (const delayMs of [0, 2, 8, 20, 50]) {
      const file = path.join(t.dir, `quire-${delayMs}.db`);
      fs.copyFileSync(pristine, file);
      // Here the kills landed during the copy (0-20 ms) and between the two commits (50 ms).
      await migrateAndKill(file, 0, (line) => line === 'opening', delayMs);
      checkMigrated(file);
      expect(fs.existsSync(kvFileFor(file))).toBe(true);
    }
  });
});
