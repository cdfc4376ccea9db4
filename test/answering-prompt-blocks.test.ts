// Where the answer instruction sits (prompt-blocks.ts, decided with bench:fidelity): before the
// passages, in the instruction block, for ordinary models (shared-prefix); in the final block, as the
// paper has it, for block fine-tuned models (isolated); an answer context follows its quality mode.
// The user's system prompt replaces the system turn wherever the answer instruction sits, and
// withSystemPrompt keeps the context's placement (the shared-prefix KV variant changes with it).
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openDatabase, type Db } from '../db/open.ts';
import { Engine } from '../native-models/engine.ts';
import { loadModelFolder } from '../native-models/model-folder.ts';
import { TextTokenizer } from '../native-models/tokenizer.ts';
import { createAnswerContext, withSystemPrompt } from '../electron/answering/passage-kv.ts';
import { ANSWER_INSTRUCTION, answerInstructionFor, DOCUMENTS_INTRO, finalBlockText, promptFrame, SYSTEM_INSTRUCTION } from '../electron/answering/prompt-blocks.ts';
import { kvVariant } from '../electron/answering/quality-modes.ts';
import { tinySpec } from './tools/tiny-model-spec.ts';
import { makeModelDir, removeDir } from './helpers/models.ts';

describe('where the answer instruction sits', () => {
  let dir: string;
  let fineTunedDir: string;
  let db: Db;
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'quire-prompt-blocks-'));

  beforeAll(async () => {
    dir = await makeModelDir(tinySpec({ seed: 8 }));
    // the same model declaring itself block fine-tuned (config.json's block_attention)
    fineTunedDir = path.join(tmp, 'block-ft');
    fs.cpSync(dir, fineTunedDir, { recursive: true });
    const config = JSON.parse(fs.readFileSync(path.join(fineTunedDir, 'config.json'), 'utf8')) as Record<string, unknown>;
    fs.writeFileSync(path.join(fineTunedDir, 'config.json'), JSON.stringify({ ...config, block_attention: true }));
    db = openDatabase(path.join(tmp, 'q.db'));
  });
  afterAll(() => {
    db?.close();
    removeDir(dir);
    fs.rmSync(tmp, { recursive: true, force: true });
  });

  const light = (d: string) => {
    const model = loadModelFolder(d);
    return { model, tokenizer: new TextTokenizer(model) };
  };
  const text = (engine: ReturnType<typeof light>, ids: number[]) => engine.tokenizer.decode(ids);

  it('ordinary model: closes the instruction block, before the documents intro; the final block is the question alone', () => {
    const engine = light(dir);
    const frame = promptFrame(engine);
    expect(frame.answerInstruction).toBe('instruction');
    const instruction = text(engine, frame.instructionIds);
    expect(instruction).toContain(`${ANSWER_INSTRUCTION}${DOCUMENTS_INTRO}`);
    expect(instruction.endsWith(DOCUMENTS_INTRO)).toBe(true);
    const final = finalBlockText('Why is the sea salty?', frame);
    expect(final.startsWith('Question: Why is the sea salty?\n')).toBe(true);
    expect(final).not.toContain(ANSWER_INSTRUCTION.trim());
  });

  it('block fine-tuned model: in the final block, as the method brief segments the prompt', () => {
    const engine = light(fineTunedDir);
    expect(engine.model.blockFineTuned).toBe(true);
    const frame = promptFrame(engine);
    expect(frame.answerInstruction).toBe('final');
    expect(text(engine, frame.instructionIds)).not.toContain(ANSWER_INSTRUCTION.trim());
    expect(finalBlockText('Why?', frame).startsWith(`${ANSWER_INSTRUCTION}Question: Why?\n`)).toBe(true);
  });

  it('an answer context follows its quality mode; an explicit placement wins', async () => {
    expect(answerInstructionFor('shared-prefix')).toBe('instruction');
    expect(answerInstructionFor('isolated')).toBe('final');
    const engine = await Engine.load(dir, { provider: 'cpu' });
    try {
      const ctx = async (options: Parameters<typeof createAnswerContext>[2]) => (await createAnswerContext(db, engine, { fingerprint: 'test', ...options })).frame;
      expect((await ctx({})).answerInstruction).toBe('instruction');
      expect((await ctx({ quality: 'isolated' })).answerInstruction).toBe('final');
      const explicit = await ctx({ quality: 'isolated', answerInstruction: 'instruction' });
      expect(explicit.answerInstruction).toBe('instruction');
      expect(explicit.instructionIds).toEqual(promptFrame(engine, 'instruction').instructionIds);
    } finally {
      await engine.release();
    }
  });

  it("a system prompt replaces the system turn wherever the answer instruction sits; blank is Quire's own", () => {
    const engine = light(dir);
    const system = 'You answer like a ship captain, briefly.';
    for (const where of ['instruction', 'final'] as const) {
      const frame = promptFrame(engine, where, system);
      expect([frame.system, frame.answerInstruction]).toEqual([system, where]);
      const instruction = text(engine, frame.instructionIds);
      expect(instruction).toContain(system);
      expect(instruction).not.toContain(SYSTEM_INSTRUCTION);
      expect(instruction.includes(ANSWER_INSTRUCTION.trim())).toBe(where === 'instruction');
      expect(instruction.endsWith(DOCUMENTS_INTRO)).toBe(true);
      expect(finalBlockText('Why?', frame).startsWith(ANSWER_INSTRUCTION)).toBe(where === 'final');
    }
    const blank = promptFrame(engine, 'instruction', '  ');
    expect(blank.system).toBe(SYSTEM_INSTRUCTION);
    expect(blank.instructionIds).toEqual(promptFrame(engine, 'instruction').instructionIds);
  });

  it("withSystemPrompt keeps the context's answer instruction; the shared-prefix KV variant follows the new instruction block", async () => {
    const system = 'You answer like a ship captain, briefly.';
    const engine = await Engine.load(dir, { provider: 'cpu' });
    try {
      for (const quality of ['shared-prefix', 'isolated'] as const) {
        const ctx = await createAnswerContext(db, engine, { fingerprint: 'test', quality });
        const next = await withSystemPrompt(ctx, system);
        expect(next.frame.answerInstruction).toBe(ctx.frame.answerInstruction);
        expect(next.frame.instructionIds).toEqual(promptFrame(engine, ctx.frame.answerInstruction, system).instructionIds);
        expect(next.instructionKv.tokens).toBe(next.frame.instructionIds.length);
        expect(await withSystemPrompt(next, system)).toBe(next); // the same system turn: nothing recomputed
      }
      const shared = await createAnswerContext(db, engine, { fingerprint: 'test' });
      const captain = await withSystemPrompt(shared, system);
      expect(kvVariant('shared-prefix', captain.frame.instructionIds)).not.toBe(kvVariant('shared-prefix', shared.frame.instructionIds));
    } finally {
      await engine.release();
    }
  });
});
