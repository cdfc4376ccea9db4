// `quire fidelity` as a user runs it: the JSON the issue names on the real story model (its built-in
// stories), the library's own questions on a generated model with a chat template, a prompt file,
// and the errors for bad input.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { FidelityReport } from '../electron/answering/fidelity.ts';
import { STORY_PROMPTS } from '../electron/answering/fidelity-stories.ts';
import { runQuire } from './helpers/cli.ts';
import { makeModelDir, removeDir, SAMPLE_TEXTS } from './helpers/models.ts';
import { tinySpec } from './tools/tiny-model-spec.ts';

const STORY_MODEL = path.resolve('../shared/fixtures/stories260k-llama2c');
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'quire-cli-fidelity-'));
const env = { QUIRE_HOME: path.join(tmp, 'home') };
const quire = (args: string[]) => runQuire(args, { env });
const db = path.join(tmp, 'quire.db');
let modelDir: string;

function checkShape(report: FidelityReport): void {
  expect(Object.keys(report).sort()).toEqual(['model', 'prompts', 'rows']);
  for (const row of report.rows) {
    expect(Object.keys(row).sort()).toEqual(['boundaryTokens', 'codec', 'klMean', 'mode', 'top1']);
    expect(row.klMean).toBeGreaterThanOrEqual(0);
    expect(row.top1).toBeGreaterThanOrEqual(0);
    expect(row.top1).toBeLessThanOrEqual(1);
  }
  expect(report.rows.find((r) => r.mode === 'full')).toEqual({ mode: 'full', boundaryTokens: 0, codec: 'none', klMean: 0, top1: 1 });
}

describe('quire fidelity', () => {
  beforeAll(async () => {
    modelDir = await makeModelDir(tinySpec({ seed: 12 }));
    const docs = path.join(tmp, 'docs');
    fs.mkdirSync(docs);
    SAMPLE_TEXTS.forEach((text, i) => fs.writeFileSync(path.join(docs, `note${i}.md`), `# Note ${i}\n\n${text}\n`));
    const indexed = await quire(['index', docs, '--db', db, '--json']);
    expect(indexed.code, indexed.stderr).toBe(0);
  });
  afterAll(() => {
    removeDir(modelDir);
    fs.rmSync(tmp, { recursive: true, force: true });
  });

  it('--json on the story model: its built-in stories, one row per mode x boundary x codec, full = 0 / 1', async () => {
    const r = await quire(['fidelity', '--model', STORY_MODEL, '--provider', 'cpu', '--modes', 'full,isolated', '--boundary', '0,8', '--codecs', 'float16', '--json']);
    expect(r.code, r.stderr).toBe(0);
    const report = JSON.parse(r.stdout) as FidelityReport;
    checkShape(report);
    expect(report.model).toBe(STORY_MODEL);
    expect(report.prompts).toBe(STORY_PROMPTS.length);
    expect(report.rows.map((x) => `${x.mode}/${x.boundaryTokens}/${x.codec}`)).toEqual(['full/0/none', 'isolated/0/float16', 'isolated/8/float16']);
    const [, isolated, recomputed] = report.rows;
    expect(isolated.klMean).toBeGreaterThan(0);
    expect(recomputed.klMean).toBeLessThan(isolated.klMean); // boundary recompute brings it closer
  });

  it("a model with a chat template measures questions made from the library (--db); text output is a table", async () => {
    const r = await quire(['fidelity', '--model', modelDir, '--db', db, '--provider', 'cpu', '--modes', 'full,shared-prefix', '--codecs', 'none', '--json']);
    expect(r.code, r.stderr).toBe(0);
    const report = JSON.parse(r.stdout) as FidelityReport;
    checkShape(report);
    expect(report.prompts).toBeGreaterThanOrEqual(1);
    expect(report.rows.find((x) => x.mode === 'shared-prefix')!.klMean).toBeGreaterThan(0);
    const text = await quire(['fidelity', '--model', modelDir, '--db', db, '--provider', 'cpu', '--modes', 'full', '--codecs', 'none']);
    expect(text.code, text.stderr).toBe(0);
    expect(text.stdout).toMatch(/^mode +boundary +codec +klMean \(nats\) +top1$/m);
    expect(text.stdout).toMatch(/^full +0 +none +0 +100\.0%$/m);
    expect(text.stderr).toMatch(/questions from the library/);
  });

  it('--prompts FILE: measured as given; a bad line is an error naming the file and line', async () => {
    const file = path.join(tmp, 'prompts.jsonl');
    fs.writeFileSync(file, `${JSON.stringify({ blocks: ['Read these.', SAMPLE_TEXTS[0], SAMPLE_TEXTS[1]], question: 'What did the keeper write?' })}\n`);
    const r = await quire(['fidelity', '--model', modelDir, '--prompts', file, '--provider', 'cpu', '--modes', 'full,isolated', '--codecs', 'none', '--json']);
    expect(r.code, r.stderr).toBe(0);
    expect((JSON.parse(r.stdout) as FidelityReport).prompts).toBe(1);
    const bad = path.join(tmp, 'bad.jsonl');
    fs.writeFileSync(bad, '{"blocks": ["a"], "question": "q"}\n{"blocks": ["a"], "question": \n');
    const failed = await quire(['fidelity', '--model', modelDir, '--prompts', bad, '--provider', 'cpu']);
    expect(failed.code).toBe(1);
    expect(failed.stderr).toMatch(/^quire fidelity: .*bad\.jsonl:2: not JSON/);
    expect(failed.stdout).toBe('');
  });

  it('usage errors (exit 2) for a mode or codec not in the table; a clear error without prompts or a library', async () => {
    const badMode = await quire(['fidelity', '--model', modelDir, '--modes', 'full,fast']);
    expect(badMode.code).toBe(2);
    expect(badMode.stderr).toContain('--modes: must be one of full, shared-prefix, isolated (got "fast")');
    const badCodec = await quire(['fidelity', '--model', modelDir, '--codecs', 'float16,']);
    expect(badCodec.code).toBe(2);
    expect(badCodec.stderr).toContain('--codecs: "float16," is not a comma-separated list');
    const badK = await quire(['fidelity', '--model', modelDir, '--boundary', '4,-1']);
    expect(badK.code).toBe(2);
    expect(badK.stderr).toContain('--boundary: "-1" is not an integer >= 0');
    const noLibrary = await quire(['fidelity', '--model', modelDir, '--db', path.join(tmp, 'none.db'), '--provider', 'cpu']);
    expect(noLibrary.code).toBe(1);
    expect(noLibrary.stderr).toMatch(/no database at .*none\.db: index a folder first \(quire index\), pass --db PATH, or give --prompts FILE\.jsonl/);
  });
});
