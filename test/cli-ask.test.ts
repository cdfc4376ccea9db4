// `quire ask` as a user runs it: index a folder, ask with a generated model, read the JSON the
// issue names; and a question nothing in the library covers is answered honestly, without a model.
import { execFile } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { AskCommandJson } from '../electron/cli/ask.ts';
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

  it('prints the answer, citations, sources and figures as JSON; asking again reuses every block', async () => {
    const args = ['ask', 'What did the lighthouse keeper write about?', '--db', db, '--model', modelDir, '--max-new-tokens', '4', '--json'];
    const first = JSON.parse(await quire(args)) as AskCommandJson;
    for (const key of ['answer', 'citations', 'sources', 'ttftMs', 'reusedBlocks', 'computedBlocks', 'provider', 'mode']) expect(first).toHaveProperty(key);
    expect(first.mode).toBe('block');
    expect(first.computedBlocks).toBeGreaterThan(0);
    // every passage the model was given, numbered as it saw them, each with where it came from
    expect(first.sources.map((s) => s.n)).toEqual(first.sources.map((_, i) => i + 1));
    expect(first.sources).toHaveLength(first.reusedBlocks + first.computedBlocks);
    for (const source of first.sources) {
      expect(Object.keys(source).sort()).toEqual(['charEnd', 'charStart', 'kv', 'n', 'page', 'passageId', 'path', 'title'].sort());
      expect(path.dirname(source.path)).toBe(path.join(tmp, 'docs'));
      const text = fs.readFileSync(source.path, 'utf8');
      expect(source.charEnd).toBeGreaterThan(source.charStart);
      expect(source.charEnd).toBeLessThanOrEqual(text.length);
      expect(source.title).toMatch(/^Note \d$/);
      expect(source.page).toBeNull();
    }
    expect(first.sources[0].path).toMatch(/note0\.md$/); // the lighthouse passage ranks first
    expect(first.sources.filter((s) => s.kv === 'computed')).toHaveLength(first.computedBlocks);
    for (const c of first.citations) expect(first.sources[c.n - 1].passageId).toBe(c.passageId);
    const second = JSON.parse(await quire(args)) as AskCommandJson;
    expect(second.computedBlocks).toBe(0);
    expect(second.reusedBlocks).toBe(first.computedBlocks + first.reusedBlocks);
    expect(second.answer).toBe(first.answer);
    expect(second.sources).toEqual(first.sources.map((s) => ({ ...s, kv: 'reused' })));
    // one passage stored by now, one new: each source says which it was, whatever the ranking order
    const mixed = JSON.parse(
      await quire(['ask', 'lighthouse photosynthesis', '--db', db, '--model', modelDir, '--max-new-tokens', '2', '--json']),
    ) as AskCommandJson;
    const kvOf = (file: string) => mixed.sources.find((x) => path.basename(x.path) === file)?.kv;
    expect(first.sources.map((x) => path.basename(x.path))).not.toContain('note1.md');
    expect(kvOf('note0.md')).toBe('reused');
    expect(kvOf('note1.md')).toBe('computed');
    expect(mixed).toMatchObject({ reusedBlocks: 1, computedBlocks: 1 });
  });

  it('full mode: every source computed', async () => {
    const out = JSON.parse(await quire(['ask', 'lighthouse keeper', '--db', db, '--model', modelDir, '--max-new-tokens', '2', '--mode', 'full', '--json'])) as AskCommandJson;
    expect(out.sources.length).toBeGreaterThan(0);
    expect(out.sources.every((s) => s.kv === 'computed')).toBe(true);
  });

  it('fits a small model: the figures say how many passages were left out; a question longer than the context is refused', async () => {
    const small = await makeModelDir(tinySpec({ seed: 5, maxPositionEmbeddings: 512 }));
    try {
      const question = 'What do the lighthouse keeper, photosynthesis, the Moon landing and binary search have in common?';
      const out = JSON.parse(await quire(['ask', question, '--db', db, '--model', small, '--max-new-tokens', '4', '--json'])) as AskCommandJson;
      expect(out.ranModel).toBe(true);
      expect(out.figures!.passagesDropped).toBeGreaterThan(0);
      expect(out.figures!.passagesUsed).toBe(out.sources.length);
      expect(out.figures!.passagesUsed + out.figures!.passagesDropped).toBe(4); // one passage per note matched
      const long = `lighthouse ${'why is the sea the colour it is at dusk and why do storms come '.repeat(40)}`;
      await expect(quire(['ask', long, '--db', db, '--model', small])).rejects.toMatchObject({
        code: 1,
        stderr: expect.stringMatching(/^quire ask: This question is too long for the model: .* Shorten it by about \d+ tokens\.\n$/),
      });
    } finally {
      removeDir(small);
    }
  });

  it('answers that nothing covers the question without loading a model', async () => {
    // the model path does not exist: the command must not need it
    const out = JSON.parse(await quire(['ask', 'zeppelin quaternion', '--db', db, '--model', path.join(tmp, 'no-model'), '--json']));
    expect(out).toMatchObject({ citations: [], sources: [], computedBlocks: 0, ranModel: false });
    expect(out.answer).toMatch(/documents|passage/i);
  });
});
