// `quire ask` as a user runs it: index a folder, ask with a generated model, read the JSON the
// issue names; and a question nothing in the library covers is answered honestly, without a model.
import { execFile } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { tinySpec } from './tools/tiny-model-spec.ts';
import { makeModelDir, removeDir, SAMPLE_TEXTS } from './helpers/models.ts';

const run = promisify(execFile);
const CLI = path.resolve('bin/quire.js');
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'quire-cli-ask-'));
const env = { ...process.env, QUIRE_HOME: path.join(tmp, 'home') };
const db = path.join(tmp, 'quire.db');
let modelDir: string;

async function quire(args: string[]): Promise<string> {
  return (await run(process.execPath, [CLI, ...args], { env })).stdout;
}

describe('quire ask', () => {
  beforeAll(async () => {
    modelDir = await makeModelDir(tinySpec({ seed: 5, kvDtype: 'float16' }));
    const docs = path.join(tmp, 'docs');
    fs.mkdirSync(docs);
    SAMPLE_TEXTS.forEach((text, i) => fs.writeFileSync(path.join(docs, `note${i}.md`), `# Note ${i}\n\n${text}\n`));
    await quire(['index', docs, '--db', db, '--json']);
  });
  afterAll(() => {
    removeDir(modelDir);
    fs.rmSync(tmp, { recursive: true, force: true });
  });

  it('prints the answer, citations and figures as JSON; asking again reuses every block', async () => {
    const args = ['ask', 'What did the lighthouse keeper write about?', '--db', db, '--model', modelDir, '--max-new-tokens', '4', '--json'];
    const first = JSON.parse(await quire(args)) as Record<string, unknown>;
    for (const key of ['answer', 'citations', 'ttftMs', 'reusedBlocks', 'computedBlocks', 'provider', 'mode']) expect(first).toHaveProperty(key);
    expect(first.mode).toBe('block');
    expect(first.computedBlocks as number).toBeGreaterThan(0);
    const second = JSON.parse(await quire(args)) as Record<string, unknown>;
    expect(second.computedBlocks).toBe(0);
    expect(second.reusedBlocks).toBe((first.computedBlocks as number) + (first.reusedBlocks as number));
    expect(second.answer).toBe(first.answer);
  });

  it('answers that nothing covers the question without loading a model', async () => {
    // the model path does not exist: the command must not need it
    const out = JSON.parse(await quire(['ask', 'zeppelin quaternion', '--db', db, '--model', path.join(tmp, 'no-model'), '--json']));
    expect(out).toMatchObject({ citations: [], computedBlocks: 0, ranModel: false });
    expect(out.answer).toMatch(/documents|passage/i);
  });
});
