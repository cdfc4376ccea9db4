// The fidelity harness (electron/answering/fidelity.ts) on a generated model: the full row is its
// own exact zero check, isolated moves the distributions (by what the float64 reference's block and
// causal masks say), boundary recompute over whole blocks brings every mode back to full attention,
// the store's codecs are really applied, and prompt files are read with errors that name the line.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { KV_CODECS } from '../db/kv-codec.ts';
import { Engine } from '../native-models/engine.ts';
import { positionRange } from '../native-models/prefill.ts';
import {
  FIDELITY_CODECS,
  fidelityConfigs,
  klDivergence,
  measureFidelity,
  promptFidelity,
  type FidelityConfig,
  type FidelityPrompt,
} from '../electron/answering/fidelity.ts';
import { parsePromptLines, PromptFileError, readPromptFile, tokenizeTextPrompt } from '../electron/answering/fidelity-prompts.ts';
import { STORY_PROMPTS } from '../electron/answering/fidelity-stories.ts';
import { chatFrame } from '../native-models/chat-template.ts';
import { SYSTEM_INSTRUCTION } from '../electron/answering/prompt-blocks.ts';
import { blockMask, causalMask, loadReferenceModel, referenceForward } from './tools/reference.ts';
import { tinySpec } from './tools/tiny-model-spec.ts';
import { makeModelDir, removeDir, SAMPLE_TEXTS } from './helpers/models.ts';

const STORY_MODEL = path.resolve('../shared/fixtures/stories260k-llama2c');
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'quire-fidelity-'));

/** KL(p || q) of two logit rows, float64 throughout: the test's own, independent of the harness's. */
function referenceKl(p: ArrayLike<number>, q: ArrayLike<number>): number {
  const logSoftmax = (x: ArrayLike<number>) => {
    const max = Math.max(...Array.from(x));
    const lse = max + Math.log(Array.from(x).reduce((s, v) => s + Math.exp(v - max), 0));
    return Array.from(x, (v) => v - lse);
  };
  const lp = logSoftmax(p);
  const lq = logSoftmax(q);
  return lp.reduce((s, v, i) => s + Math.exp(v) * (v - lq[i]), 0);
}

describe('fidelity harness on a generated model', () => {
  let dir: string;
  let engine: Engine;
  let prompts: FidelityPrompt[];

  beforeAll(async () => {
    dir = await makeModelDir(tinySpec({ seed: 33 }));
    engine = await Engine.load(dir, { provider: 'cpu' });
    prompts = [
      tokenizeTextPrompt(engine, { blocks: ['Read these notes.', SAMPLE_TEXTS[0], SAMPLE_TEXTS[1]], question: 'What did the keeper write about?' }),
      tokenizeTextPrompt(engine, { blocks: ['Read these notes.', SAMPLE_TEXTS[2], SAMPLE_TEXTS[3], SAMPLE_TEXTS[0]], question: 'When did people walk on the Moon?' }),
    ];
  });
  afterAll(async () => {
    await engine?.release();
    removeDir(dir);
    fs.rmSync(tmp, { recursive: true, force: true });
  });

  it('full is exactly 0 nats and top1 1; isolated and shared-prefix move the distributions; K >= every block brings them back', async () => {
    const longest = Math.max(...prompts.flatMap((p) => p.blockIds.map((b) => b.length)));
    const configs = fidelityConfigs(['full', 'isolated', 'shared-prefix'], [0, longest], ['none']);
    const rows = await measureFidelity(engine, prompts, configs);
    const row = (mode: string, k: number) => rows.find((r) => r.mode === mode && r.boundaryTokens === k)!;
    expect(row('full', 0)).toEqual({ mode: 'full', boundaryTokens: 0, codec: 'none', klMean: 0, top1: 1 });
    for (const mode of ['isolated', 'shared-prefix']) {
      expect(row(mode, 0).klMean, mode).toBeGreaterThan(1e-4);
      // equal to full attention by construction: every passage block recomputed against all before it
      expect(row(mode, longest).klMean, mode).toBeLessThan(1e-9);
      expect(row(mode, longest).top1, mode).toBe(1);
    }
  });

  it("isolated's KL is the float64 reference's KL between the causal and the block mask, at every final-block position", async () => {
    const ref = loadReferenceModel(dir);
    const p = prompts[0];
    const ids = [...p.blockIds.flat(), ...p.finalIds];
    const rows = positionRange(ids.length - p.finalIds.length, p.finalIds.length);
    const lengths = [...p.blockIds.map((b) => b.length), p.finalIds.length];
    const causal = referenceForward(ref.spec, ref.weights, ids, positionRange(0, ids.length), causalMask(), rows);
    const block = referenceForward(ref.spec, ref.weights, ids, positionRange(0, ids.length), blockMask(lengths), rows);
    const expected = rows.map((r) => referenceKl(causal.logits[r], block.logits[r]));
    const [isolated] = await promptFidelity(engine, p, [{ mode: 'isolated', boundaryTokens: 0, codec: 'none' }]);
    expect(isolated.kl).toHaveLength(p.finalIds.length);
    // float32 logits within 1e-4 of the reference move a KL of this size by far less than 1e-4
    for (let i = 0; i < expected.length; i++) expect(Math.abs(isolated.kl[i] - expected[i]), `position ${i}`).toBeLessThan(1e-4 + 1e-3 * expected[i]);
    expect(Math.max(...expected)).toBeGreaterThan(1e-3); // not vacuous
  });

  it("every store codec is measured (from db/kv-codec.ts's registry) and each really round-trips the passages' KV", async () => {
    expect(FIDELITY_CODECS).toEqual(['none', ...KV_CODECS]);
    expect(FIDELITY_CODECS).toEqual(['none', 'float16', 'int8', 'int4']); // the retired int8-channel/int8-token are not
    const configs: FidelityConfig[] = FIDELITY_CODECS.map((codec) => ({ mode: 'shared-prefix', boundaryTokens: 0, codec }));
    const scores = await promptFidelity(engine, prompts[1], configs);
    const means = scores.map((s) => s.kl.reduce((a, b) => a + b, 0));
    for (let i = 1; i < means.length; i++) expect(means[i], FIDELITY_CODECS[i]).not.toBe(means[0]);
    // within what the codecs' error bounds allow: the same order of magnitude as the mode's own KL
    for (const m of means) {
      expect(m / means[0]).toBeGreaterThan(0.5);
      expect(m / means[0]).toBeLessThan(2);
    }
  });

  it('fidelityConfigs: every mode x boundary x codec, full once', () => {
    expect(fidelityConfigs(['isolated', 'full', 'full'], [0, 8], ['float16', 'int4'])).toEqual([
      { mode: 'isolated', boundaryTokens: 0, codec: 'float16' },
      { mode: 'isolated', boundaryTokens: 0, codec: 'int4' },
      { mode: 'isolated', boundaryTokens: 8, codec: 'float16' },
      { mode: 'isolated', boundaryTokens: 8, codec: 'int4' },
      { mode: 'full', boundaryTokens: 0, codec: 'none' },
    ]);
  });

  it('klDivergence: 0 for equal distributions, the textbook value otherwise', () => {
    const log = (xs: number[]) => Float64Array.from(xs, Math.log);
    expect(klDivergence(log([0.25, 0.75]), log([0.25, 0.75]))).toBe(0);
    expect(klDivergence(log([0.5, 0.5]), log([0.9, 0.1]))).toBeCloseTo(0.5 * Math.log(0.5 / 0.9) + 0.5 * Math.log(0.5 / 0.1), 12);
  });

  it('text prompts are framed as a question is: the template around blocks[0] and the question', () => {
    const frame = chatFrame(engine.model, SYSTEM_INSTRUCTION)!;
    const p = tokenizeTextPrompt(engine, { blocks: ['Intro.', 'A passage.'], question: 'Why?' });
    expect(p.blockIds[0]).toEqual(engine.tokenizer.encode(`${frame.before}Intro.`));
    expect(p.blockIds[1]).toEqual(engine.tokenizer.encode('A passage.'));
    expect(p.finalIds).toEqual(engine.tokenizer.encode(`Why?${frame.after}`));
  });

  it('prompt files: one prompt a line, blank lines skipped; a bad line is refused with its line number', () => {
    const good = '{"blocks": ["Intro.", "A passage."], "question": "Why?"}\n\n{"blocks": ["Intro only."], "question": "What?"}\n';
    expect(parsePromptLines(good, 'p.jsonl')).toEqual([
      { line: 1, prompt: { blocks: ['Intro.', 'A passage.'], question: 'Why?' } },
      { line: 3, prompt: { blocks: ['Intro only.'], question: 'What?' } },
    ]);
    const bad: [string, RegExp][] = [
      ['{"blocks": ["a"], "question": "q"}\n{"blocks": ["a"], "question": "q"', /^p\.jsonl:2: not JSON/],
      ['["a", "b"]', /^p\.jsonl:1: expected an object \{"blocks": \[text, \.\.\.\], "question": text\}/],
      ['{"question": "q"}', /^p\.jsonl:1: "blocks" must be a non-empty array of texts/],
      ['{"blocks": [], "question": "q"}', /^p\.jsonl:1: "blocks" must be a non-empty array/],
      ['{"blocks": ["a", 3], "question": "q"}', /^p\.jsonl:1: blocks\[1\] must be a non-empty text/],
      ['{"blocks": ["a", "  "], "question": "q"}', /^p\.jsonl:1: blocks\[1\] must be a non-empty text/],
      ['{"blocks": ["a"]}', /^p\.jsonl:1: "question" must be a non-empty text/],
      ['{"blocks": ["a"], "question": "q", "block": ["b"]}', /^p\.jsonl:1: unknown key "block"/],
      ['\n  \n', /^p\.jsonl: no prompts/],
    ];
    for (const [text, message] of bad) expect(() => parsePromptLines(text, 'p.jsonl'), text).toThrow(message);
    expect(() => parsePromptLines('x', 'p.jsonl')).toThrow(PromptFileError);
  });

  it('readPromptFile: a missing file and a prompt longer than the model are clear errors', () => {
    expect(() => readPromptFile(engine, path.join(tmp, 'none.jsonl'))).toThrow(/^cannot read .*none\.jsonl: ENOENT/);
    const file = path.join(tmp, 'long.jsonl');
    const long = 'word '.repeat(engine.model.maxPositions);
    fs.writeFileSync(file, `{"blocks": ["a"], "question": "q"}\n{"blocks": ["a", ${JSON.stringify(long)}], "question": "q"}\n`);
    expect(() => readPromptFile(engine, file)).toThrow(new RegExp(`long\\.jsonl:2: \\d+ tokens do not fit the model's ${engine.model.maxPositions} positions`));
  });

  it('measureFidelity refuses an empty prompt list and names a bad prompt before running any', async () => {
    const configs = fidelityConfigs(['full'], [0], ['none']);
    await expect(measureFidelity(engine, [], configs)).rejects.toThrow('no prompts to measure');
    await expect(measureFidelity(engine, [prompts[0], { blockIds: [[1, 2]], finalIds: [] }], configs)).rejects.toThrow(/^prompt 2: the prompt has an empty final block/);
  });
});

describe('the built-in stories on stories260K (a real trained model without a chat template)', () => {
  it('are raw texts with BOS on the first block only, and fit its 512 positions', async () => {
    const engine = await Engine.load(STORY_MODEL, { provider: 'cpu' });
    try {
      const bos = engine.tokenizer.bosTokenId!;
      for (const p of STORY_PROMPTS.map((t) => tokenizeTextPrompt(engine, t))) {
        expect(p.blockIds[0][0]).toBe(bos);
        expect([...p.blockIds.slice(1).flat(), ...p.finalIds]).not.toContain(bos);
        expect(p.blockIds.flat().length + p.finalIds.length).toBeLessThanOrEqual(engine.model.maxPositions);
        expect(p.blockIds.length).toBeGreaterThanOrEqual(4); // instruction + 3 passages
      }
    } finally {
      await engine.release();
    }
  });
});
