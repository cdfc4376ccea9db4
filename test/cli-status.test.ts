// `quire status` and the KV budget the command line keeps, as a user runs them (child processes):
// the report before anything exists, then after indexing with a generated model, where coverage per
// folder must agree with what index stored, the app's saved budget and provider must be the CLI's
// defaults (issue 10: the CLI stored 4.1x the app's budget), and a smaller --kv-budget must hold.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openDatabase } from '../db/open.ts';
import { loadModelFolder, modelFingerprint } from '../native-models/model-folder.ts';
import { TextTokenizer } from '../native-models/tokenizer.ts';
import { kvCoverage } from '../electron/answering/kv-coverage.ts';
import { promptFrame } from '../electron/answering/prompt-blocks.ts';
import { kvVariant } from '../electron/answering/quality-modes.ts';
import type { IndexCommandSummary } from '../electron/cli/index.ts';
import type { StatusReport } from '../electron/cli/status.ts';
import { tinySpec } from './tools/tiny-model-spec.ts';
import { runQuire } from './helpers/cli.ts';
import { makeModelDir, removeDir, SAMPLE_TEXTS } from './helpers/models.ts';
import { lookUpPassageBlocks, storedPerFolder } from './helpers/coverage-oracle.ts';

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'quire-cli-status-'));
const home = path.join(tmp, 'home');
const env = { ...process.env, QUIRE_HOME: home };
let modelDir: string;

const quire = (args: string[]) => runQuire(args, { env, cwd: tmp });

async function json<T>(args: string[]): Promise<T> {
  const r = await quire([...args, '--json']);
  expect(r.code, r.stderr).toBe(0);
  return JSON.parse(r.stdout) as T;
}

function folderOf(texts: readonly string[], name: string): string {
  const dir = path.join(tmp, name);
  fs.mkdirSync(dir);
  texts.forEach((t, i) => fs.writeFileSync(path.join(dir, `note${i}.md`), `# Note ${i}\n\n${t}\n`));
  return dir;
}

beforeAll(async () => {
  modelDir = await makeModelDir(tinySpec({ seed: 3, kvDtype: 'float16' }));
});
afterAll(() => {
  removeDir(modelDir);
  fs.rmSync(tmp, { recursive: true, force: true });
});

describe('quire status', () => {
  it('before anything exists: exit 0, says there is no database, no model, and no engine here', async () => {
    const r = await json<StatusReport>(['status']);
    expect(r.dataDir).toBe(home);
    expect(r.database).toMatchObject({ exists: false, path: path.join(home, 'quire.db'), problem: expect.stringMatching(/quire index/) });
    expect(r.model.problem).toMatch(/not downloaded/);
    expect(r.kv).toMatchObject({ budgetBytes: 2 * 1024 ** 3, budgetFrom: 'default', storedBytes: 0 });
    expect(r.folders).toEqual([]);
    expect(r.background).toEqual({ known: false, note: expect.stringMatching(/^no engine running in this process/) });
    const text = await quire(['status']);
    expect(text.code).toBe(0);
    expect(text.stdout).toMatch(/^background +no engine running in this process/m);
    expect(fs.existsSync(path.join(home, 'quire.db'))).toBe(false); // status created nothing
  });

  it("index keeps the app's budget and provider by default; status reports coverage that matches what was stored", async () => {
    fs.mkdirSync(home, { recursive: true });
    const appBudget = 16 * 1024 ** 2; // the smallest the app's Settings take
    fs.writeFileSync(path.join(home, 'app-settings.json'), JSON.stringify({ kvBudgetBytes: appBudget, provider: 'cpu' }));
    expect((await quire(['models', 'use', modelDir])).code).toBe(0);
    // a folder whose name would recolour and clear the terminal
    const docs = folderOf(SAMPLE_TEXTS, 'notes\x1b[31m\x1b[2J');
    const indexed = await json<IndexCommandSummary>(['index', docs, '--model', modelDir]);
    expect(indexed).toMatchObject({ provider: 'cpu', kvBudgetBytes: appBudget, kvBlocks: SAMPLE_TEXTS.length, kvSkippedForBudget: 0 });
    expect(indexed.kvCoverage).toEqual([{ folderId: 1, root: docs, passages: SAMPLE_TEXTS.length, stored: SAMPLE_TEXTS.length, limitedBy: null }]);

    const s = await json<StatusReport>(['status']);
    expect(s.provider).toBe('cpu');
    expect(s.kv).toMatchObject({ budgetBytes: appBudget, budgetFrom: 'app-settings', storedBlocks: SAMPLE_TEXTS.length });
    expect(s.kv.storedBytes).toBe(indexed.kvStoredBytes);
    expect(s.kv.modelBytes).toBe(s.kv.storedBytes);
    expect(s.model).toMatchObject({ dir: modelDir, problem: null, fingerprint: expect.stringMatching(/^[0-9a-f]{64}$/) });
    expect(s.quality).toBe('shared-prefix');
    expect(s.database).toMatchObject({ exists: true, schemaVersion: expect.any(Number), problem: null });
    expect(s.database.bytes).toBeGreaterThan(0);
    expect(s.folders).toEqual([
      {
        id: 1, path: docs, files: SAMPLE_TEXTS.length, indexed: SAMPLE_TEXTS.length, failed: 0, skipped: 0, pending: 0,
        passages: SAMPLE_TEXTS.length, coverage: 1, kvStoredPassages: SAMPLE_TEXTS.length, kvLimitedBy: null,
      },
    ]);
    expect(s.coverageProblem).toBeNull();

    const text = (await quire(['status'])).stdout;
    expect(text).not.toContain('\x1b');
    expect(text).toContain('notes\\x1b[31m\\x1b[2J: 4 files, 4 passages, KV stored for 100% (4/4, shared-prefix)');
    expect(text).toMatch(/^KV budget +16 MiB \(the app's setting\)/m);
  });

  it('--kv-budget below what is stored: evicts down to it, stops prefilling once full, and coverage shows it', async () => {
    const before = await json<StatusReport>(['status']);
    const budget = Math.floor(before.kv.storedBytes * 0.6);
    const more = folderOf(SAMPLE_TEXTS.map((t) => `${t} Again, in other words.`), 'more');
    const r = await quire(['index', more, '--model', modelDir, '--kv-budget', `${budget}B`, '--provider', 'cpu', '--json']);
    expect(r.code, r.stderr).toBe(0);
    const indexed = JSON.parse(r.stdout) as IndexCommandSummary;
    expect(indexed.kvBudgetBytes).toBe(budget);
    expect(indexed.kvStoredBytes!).toBeLessThanOrEqual(budget);
    expect(indexed.kvSkippedForBudget).toBeGreaterThan(0);
    expect(indexed.kvBlocks + indexed.kvSkippedForBudget).toBe(SAMPLE_TEXTS.length);
    expect(indexed.kvCoverage).toEqual([{ folderId: 2, root: more, passages: SAMPLE_TEXTS.length, stored: indexed.kvBlocks, limitedBy: 'budget' }]);

    const s = await json<StatusReport>(['status']);
    expect(s.kv.storedBytes).toBe(indexed.kvStoredBytes);
    const stored = s.folders.reduce((n, f) => n + f.kvStoredPassages!, 0);
    expect(stored).toBe(s.kv.storedBlocks);
    const second = s.folders.find((f) => f.path === more)!;
    expect(second.coverage!).toBeLessThan(1);
    expect(second.kvStoredPassages).toBe(indexed.kvBlocks);

    const text = await quire(['index', more, '--model', modelDir, '--kv-budget', `${budget}B`]);
    expect(text.stdout).toMatch(/stored KV: .* of a .* budget/);
  });

  it('coverage is exact: it agrees with every passage block tokenized, hashed and looked up afresh', async () => {
    const db = openDatabase(path.join(home, 'quire.db'), { readonly: true });
    try {
      const model = loadModelFolder(modelDir);
      const light = { model, tokenizer: new TextTokenizer(model) };
      const fingerprint = await modelFingerprint(model);
      const frame = promptFrame(light);
      const expected = storedPerFolder(lookUpPassageBlocks(db, light.tokenizer, fingerprint, kvVariant('shared-prefix', frame.instructionIds)));
      const exact = kvCoverage(db, { fingerprint, frame }, 'shared-prefix');
      expect(exact.map((c) => c.stored)).toEqual(exact.map((c) => expected.get(c.folderId)));
      expect(exact[1].stored).toBeLessThan(exact[1].passages); // the second folder's run stopped at its --kv-budget
      const s = await json<StatusReport>(['status']);
      expect(s.folders.map((f) => f.kvStoredPassages)).toEqual(exact.map((c) => c.stored));
      // against the app's budget (16 MiB, far from full), the rest is for the app's background prefill
      expect(s.folders.map((f) => f.kvLimitedBy)).toEqual(exact.map((c) => (c.stored < c.passages ? 'not-prefilled' : null)));
      expect(kvCoverage(db, { fingerprint, frame }, 'shared-prefix', { folderId: exact[1].folderId })).toEqual([exact[1]]);
      // another mode's keys are not this mode's coverage
      expect(kvCoverage(db, { fingerprint, frame }, 'isolated').map((c) => c.stored)).toEqual([0, 0]);
      // nor another instruction block's: with the app's own system prompt, what quire index stored
      // (after the default one) answers nothing there
      const settingsFile = path.join(home, 'app-settings.json');
      const saved = fs.readFileSync(settingsFile, 'utf8');
      fs.writeFileSync(settingsFile, JSON.stringify({ ...JSON.parse(saved), systemPrompt: 'You answer in rhyme.' }));
      try {
        const custom = await json<StatusReport>(['status']);
        expect(custom.folders.map((f) => f.kvStoredPassages)).toEqual([0, 0]);
        const customFrame = promptFrame(light, undefined, 'You answer in rhyme.');
        expect(kvCoverage(db, { fingerprint, frame: customFrame }, 'shared-prefix').map((c) => c.stored)).toEqual([0, 0]);
      } finally {
        fs.writeFileSync(settingsFile, saved);
      }
    } finally {
      db.close();
    }
  });
});
