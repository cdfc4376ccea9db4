// Prefetch while typing (prepared-question.ts) on a generated model (float16 KV, stored as float16:
// bit-exact) over a small corpus: a prepared question answers exactly as the same question asked
// without it (same past: identical tokens and logits), the block-mask reference included; a
// question whose plan differs (other passages, another quality, a chat that moved on) is not
// prefetched and answers as if no prepare had been made; a prepare gives way to questions and an
// aborted one never breaks the question after it.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createChat } from '../db/chats.ts';
import { KvStore } from '../db/kv-store.ts';
import { openDatabase, type Db } from '../db/open.ts';
import { Engine } from '../native-models/engine.ts';
import { positionRange } from '../native-models/prefill.ts';
import { ask, type AskOptions, type AskResult } from '../electron/answering/ask.ts';
import { ChatSession } from '../electron/answering/chat-context.ts';
import { createAnswerContext, type AnswerContext } from '../electron/answering/passage-kv.ts';
import { PreparedQuestion, PreparedQuestions } from '../electron/answering/prepared-question.ts';
import { finalBlockText, passageBlockText } from '../electron/answering/prompt-blocks.ts';
import { blockMask, loadReferenceModel, referenceForward } from './tools/reference.ts';
import { tinySpec } from './tools/tiny-model-spec.ts';
import { addLibrary } from './helpers/library.ts';
import { ANSWER_DOCS, makeModelDir, removeDir } from './helpers/models.ts';

const DOCS: Record<string, string[]> = {
  ...ANSWER_DOCS,
  'search.md': ['Binary search halves the sorted interval each step and finds a key in twenty probes.'],
};
const SEA = 'What did the lighthouse keeper write about storms and the sea?';
const MOON = 'Who walked on the Moon in 1969?';

describe('prepared questions (prefetch while typing)', () => {
  let dir: string;
  let tmp: string;
  let db: Db;
  let engine: Engine;
  let ctx: AnswerContext;

  beforeAll(async () => {
    dir = await makeModelDir(tinySpec({ seed: 37, kvDtype: 'float16' }));
    tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'quire-prepared-'));
    db = openDatabase(path.join(tmp, 'q.db'));
    addLibrary(db, '/docs', DOCS);
    engine = await Engine.load(dir, { provider: 'cpu' });
    // float16 storage of float16 KV: a loaded block is the computed one, so answers compare exactly
    ctx = await createAnswerContext(db, engine, { store: new KvStore(db, { codec: 'float16' }) });
  });
  afterAll(async () => {
    await engine?.release();
    db?.close();
    removeDir(dir);
    removeDir(tmp);
  });

  const same = (a: AskResult, b: AskResult) => {
    expect(a.passages.map((p) => p.passageId)).toEqual(b.passages.map((p) => p.passageId));
    expect(a.figures.promptTokens).toBe(b.figures.promptTokens);
    expect(a.tokenIds).toEqual(b.tokenIds);
    expect(a.topLogits).toEqual(b.topLogits);
  };

  it('answers exactly as unprepared, running only the final block (blocks computed by the prepare, then with boundary recompute)', async () => {
    const options: AskOptions = { k: 3, maxNewTokens: 6, quality: 'isolated' };
    const prepared = PreparedQuestion.start(ctx, SEA, options)!;
    const made = await prepared.ready;
    expect(made).toBeDefined();
    expect(made!.computed).toBeGreaterThan(1); // nothing was stored: the prepare computed the blocks
    const fast = await ask(ctx, SEA, { ...options, prepared });
    expect(fast.figures).toMatchObject({ prefetched: true, loadMs: 0, computeMs: 0, computedBlocks: made!.computed, reusedBlocks: 0 });
    expect(fast.passageKvReused).toEqual(fast.passages.map(() => false));
    const plain = await ask(ctx, SEA, options);
    expect(plain.figures).toMatchObject({ prefetched: false, computedBlocks: 0, reusedBlocks: fast.passages.length });
    same(fast, plain);

    // the block-mask reference at global positions (float16 KV: 2e-3 as the fixture tests)
    const finalIds = engine.tokenizer.encode(finalBlockText(SEA, ctx.frame));
    const blockIds = fast.passages.map((p) => engine.tokenizer.encode(passageBlockText(p)));
    const ids = [...ctx.frame.instructionIds, ...blockIds.flat(), ...finalIds];
    const { spec, weights } = loadReferenceModel(dir);
    const last = ids.length - 1;
    const lengths = [ctx.frame.instructionIds.length, ...blockIds.map((b) => b.length), finalIds.length];
    const ref = referenceForward(spec, weights, ids, positionRange(0, ids.length), blockMask(lengths), [last]).logits[last];
    for (const [id, v] of fast.topLogits) expect(Math.abs(v - ref[id])).toBeLessThanOrEqual(2e-3);

    // boundary recompute happens in the prepare too (the prepared past is one block: nothing left to recompute)
    const boundary: AskOptions = { ...options, boundaryTokens: 4 };
    const preparedB = PreparedQuestion.start(ctx, SEA, boundary)!;
    expect(await preparedB.ready).toBeDefined();
    const fastB = await ask(ctx, SEA, { ...boundary, prepared: preparedB });
    expect(fastB.figures).toMatchObject({ prefetched: true, boundaryTokens: 4 });
    const plainB = await ask(ctx, SEA, boundary);
    same(fastB, plainB);
    // not vacuous: recompute changes the answer's logits
    expect(fastB.topLogits).not.toEqual(fast.topLogits);
  });

  it('another plan is not prefetched and answers as if nothing had been prepared: other passages, another quality', async () => {
    const options: AskOptions = { k: 2, maxNewTokens: 5 };
    const alone = await ask(ctx, MOON, options);
    const forSea = PreparedQuestion.start(ctx, SEA, options)!;
    expect(await forSea.ready).toBeDefined();
    const moon = await ask(ctx, MOON, { ...options, prepared: forSea });
    expect(moon.figures.prefetched).toBe(false);
    same(moon, alone);

    const isolated = PreparedQuestion.start(ctx, MOON, { ...options, quality: 'isolated' })!;
    expect(await isolated.ready).toBeDefined();
    const other = await ask(ctx, MOON, { ...options, prepared: isolated });
    expect(other.figures.prefetched).toBe(false);
    expect(other.figures.quality).toBe(ctx.defaultQuality);
    same(other, alone);

    // nothing to prepare: full mode, a plain chat, a question that finds nothing
    expect(PreparedQuestion.start(ctx, MOON, { ...options, mode: 'full' })).toBeUndefined();
    expect(PreparedQuestion.start(ctx, MOON, { ...options, plainChat: {} })).toBeUndefined();
    expect(PreparedQuestion.start(ctx, 'zyxwv qwertz', options)).toBeUndefined();
  });

  it('a follow-up is prepared on the chat without changing it; another turn in between invalidates it', async () => {
    const options: AskOptions = { k: 1, maxNewTokens: 4 };
    const chat = new ChatSession(createChat(db, 'prepared').id);
    await ask(ctx, MOON, { ...options, chat });
    const before = { past: chat.past, turns: chat.turns, passages: [...chat.passages] };
    const mark = chat.mark();
    const prepared = PreparedQuestion.start(ctx, SEA, { ...options, chat })!;
    expect(await prepared.ready).toBeDefined();
    expect({ past: chat.past, turns: chat.turns, passages: chat.passages }).toEqual(before);
    expect(chat.past).toBe(before.past);
    const fast = await ask(ctx, SEA, { ...options, chat, prepared });
    expect(fast.figures.prefetched).toBe(true);
    expect(fast.passages.map((p) => p.path)).toEqual(['/docs/moon.md', '/docs/sea.md']);
    expect(chat.turns).toBe(2);
    // the same turn again from the same chat state, unprepared: the same answer
    chat.rewind(mark);
    const plain = await ask(ctx, SEA, { ...options, chat });
    expect(plain.figures.prefetched).toBe(false);
    same(fast, plain);

    // prepared, then the chat takes another turn first: its past is not the one prepared on
    chat.rewind(mark);
    const stale = PreparedQuestion.start(ctx, SEA, { ...options, chat })!;
    expect(await stale.ready).toBeDefined();
    await ask(ctx, 'binary search probes', { ...options, chat });
    const after = await ask(ctx, SEA, { ...options, chat, prepared: stale });
    expect(after.figures.prefetched).toBe(false);
    expect(chat.turns).toBe(3);
  });

  it('gives way to questions: a queued prepare is dropped by a question, a running one stops; the question answers as usual', async () => {
    const options: AskOptions = { k: 2, maxNewTokens: 4 };
    const alone = await ask(ctx, SEA, options);
    // the engine busy with a question: the prepare waits, and a question queued meanwhile drops it
    let release: () => void = () => undefined;
    const busy = ctx.queue.run(() => new Promise<void>((r) => (release = r)));
    const waiting = PreparedQuestion.start(ctx, SEA, options)!;
    const asked = ask(ctx, SEA, { ...options, prepared: waiting });
    release();
    await busy;
    expect(await waiting.ready).toBeUndefined();
    const r = await asked;
    expect(r.figures.prefetched).toBe(false);
    same(r, alone);

    // a prepare that started, stopped by a question queued on the engine: the matching question
    // then takes the ordinary path
    const running = PreparedQuestion.start(ctx, SEA, options)!;
    const other = ctx.queue.run(async () => 'other question');
    expect(await running.ready).toBeUndefined();
    expect(await other).toBe('other question');
    const r2 = await ask(ctx, SEA, { ...options, prepared: running });
    expect(r2.figures.prefetched).toBe(false);
    same(r2, alone);
    expect(ctx.queue.busy || ctx.queue.pending > 0).toBe(false);
  });

  it('holds one prepare: a new one replaces the old, a question elsewhere drops it', async () => {
    const options: AskOptions = { k: 2, maxNewTokens: 2 };
    const held = new PreparedQuestions();
    const first = held.prepare('chat 1', ctx, SEA, options)!;
    const second = held.prepare('chat 1', ctx, MOON, options)!;
    expect(await first.ready).toBeUndefined(); // replaced: stopped at its next step
    expect(await second.ready).toBeDefined();
    expect(held.take('new all')).toBeUndefined(); // asked elsewhere: dropped
    expect(held.take('chat 1')).toBeUndefined();
    held.prepare('chat 2', ctx, MOON, options);
    const taken = held.take('chat 2')!;
    expect(taken).toBeDefined();
    const r = await ask(ctx, MOON, { ...options, prepared: taken });
    expect(r.figures.prefetched).toBe(true);
  });
});
