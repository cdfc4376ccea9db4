// A question fitted to a small model's context (prompt-fit.ts), on a generated model whose
// max_position_embeddings is 512: its instruction block and final block already take about half of
// it, so a few passages overflow. Checked: the kept passages are the highest ranked whole ones, as
// many as fit (one more would not), and the figures say how many were left out; a passage too long
// to fit alone is shortened (also CJK text with characters outside the BMP, which a cut must not
// split); a question that does not fit alone is refused with a plain message; a follow-up whose chat
// history no longer fits starts the context over and answers exactly as a first question over the
// same passages; an answer that runs to the end of the context leaves the chat to start over; and
// through the engine service, a refused or failed ask leaves no chat row behind.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { listChats } from '../db/chats.ts';
import { openDatabase, type Db } from '../db/open.ts';
import { Engine } from '../native-models/engine.ts';
import { PromptTooLongError } from '../native-models/errors.ts';
import { ask } from '../electron/answering/ask.ts';
import { ChatSession, FOLLOW_UP_INTRO } from '../electron/answering/chat-context.ts';
import { createAnswerContext, prefillPassages, type AnswerContext } from '../electron/answering/passage-kv.ts';
import { finalBlockText, passageBlockText } from '../electron/answering/prompt-blocks.ts';
import { answerReserve, QuestionTooLongError } from '../electron/answering/prompt-fit.ts';
import { retrieve } from '../electron/answering/retrieve.ts';
import type { AnswerView, EventName, EventPayloads, FolderView } from '../electron/contract/types.ts';
import { QuireRequestError } from '../electron/contract/types.ts';
import { EngineService } from '../electron/engine-host/service.ts';
import { addLibrary } from './helpers/library.ts';
import { ANSWER_DOCS, makeModelDir, removeDir } from './helpers/models.ts';
import { untilProgress } from './helpers/progress.ts';
import { tinySpec } from './tools/tiny-model-spec.ts';

const MAX_POSITIONS = 512;

const LONG_TEXT = Array.from({ length: 12 }, (_, i) => `Sentence ${i} of the long harbour chronicle tells of tides, nets, gulls and the lamp.`).join(' ');
// CJK, every other character outside the BMP (a surrogate pair in UTF-16: a cut by code units
// lands inside one about half the time)
const CJK_TEXT = '灯塔看守人每天晚上都写关于风暴的事。'.repeat(10).replace(/(.)/gu, '$1𠮷');

const DOCS: Record<string, string[]> = {
  ...ANSWER_DOCS,
  'search.md': Array.from({ length: 6 }, (_, i) => `Binary search part ${i}: halving the sorted interval each step finds a key in twenty probes.`),
  'chronicle.md': [LONG_TEXT],
  'cjk.md': [CJK_TEXT],
};

const LONE_SURROGATE = /[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/;

describe('ask fits the prompt to the model', () => {
  let dir: string;
  let tmp: string;
  let db: Db;
  let engine: Engine;
  let ctx: AnswerContext;

  const blockTokens = (p: { title: string | null; text: string }) => engine.tokenizer.encode(passageBlockText(p)).length;
  const fixedTokens = (q: string) => ctx.frame.instructionIds.length + engine.tokenizer.encode(finalBlockText(q, ctx.frame)).length;

  beforeAll(async () => {
    dir = await makeModelDir(tinySpec({ seed: 61, maxPositionEmbeddings: MAX_POSITIONS }));
    tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'quire-fit-'));
    db = openDatabase(path.join(tmp, 'q.db'));
    addLibrary(db, '/docs', DOCS);
    engine = await Engine.load(dir, { provider: 'cpu' });
    expect(engine.model.maxPositions).toBe(MAX_POSITIONS);
    ctx = await createAnswerContext(db, engine, { quality: 'isolated', fingerprint: 'fit-test' });
    // every passage's block stored first, so every answer below reads the same (stored) blocks
    const ids = (db.prepare('SELECT id FROM passages').all() as { id: number }[]).map((r) => r.id);
    await prefillPassages(ctx, ids, { mode: 'isolated' });
  });
  afterAll(async () => {
    await engine?.release();
    db?.close();
    removeDir(dir);
    removeDir(tmp);
  });

  it('keeps the highest ranked passages that fit whole, and says how many were left out', async () => {
    const q = 'How does binary search halve the sorted interval?';
    const found = retrieve(db, q, { k: 6, perDocument: 6 });
    expect(found).toHaveLength(6);
    const r = await ask(ctx, q, { k: 6, perDocument: 6, maxNewTokens: 8 });
    const reserve = answerReserve(MAX_POSITIONS, 8);
    const room = MAX_POSITIONS - reserve - fixedTokens(q);
    // the expected count from the tokenizer: the longest rank-order prefix within the room
    let expected = 0;
    for (let used = 0; expected < found.length && used + blockTokens(found[expected]) <= room; expected++) used += blockTokens(found[expected]);
    expect(expected).toBeGreaterThan(0);
    expect(expected).toBeLessThan(found.length); // not vacuous: 6 passages overflow
    expect(r.passages.map((p) => p.passageId)).toEqual(found.slice(0, expected).map((p) => p.passageId));
    expect(r.figures).toMatchObject({ passagesUsed: expected, passagesDropped: found.length - expected, passagesShortened: 0, contextRestarted: false });
    expect(r.ranModel).toBe(true);
    expect(r.tokenIds.length).toBeGreaterThan(0);
    expect(r.figures.promptTokens + reserve).toBeLessThanOrEqual(MAX_POSITIONS);
    // one more passage would not have fitted
    expect(r.figures.promptTokens + blockTokens(found[expected]) + reserve).toBeGreaterThan(MAX_POSITIONS);
    // full mode counts the same tokens (one causal pass over them) and keeps the same passages
    const full = await ask(ctx, q, { k: 6, perDocument: 6, maxNewTokens: 8, mode: 'full' });
    expect(full.passages.map((p) => p.passageId)).toEqual(r.passages.map((p) => p.passageId));
    expect(full.figures.promptTokens).toBe(r.figures.promptTokens);
  });

  it('keeps room for the answer: min(maxNewTokens or 256, a quarter of the context)', async () => {
    expect(answerReserve(4096)).toBe(256);
    expect(answerReserve(512)).toBe(128);
    expect(answerReserve(512, 16)).toBe(16);
    expect(answerReserve(512, 1000)).toBe(128);
    const q = 'How does binary search halve the sorted interval?';
    const roomy = await ask(ctx, q, { k: 6, perDocument: 6, maxNewTokens: 8 });
    const defaults = await ask(ctx, q, { k: 6, perDocument: 6 });
    expect(defaults.figures.passagesUsed).toBeLessThan(roomy.figures.passagesUsed);
    expect(defaults.figures.promptTokens + 128).toBeLessThanOrEqual(MAX_POSITIONS);
    expect(defaults.tokenIds.length).toBeGreaterThan(0);
  });

  it('shortens the top passage when not even it fits whole, at a word, with its character range', async () => {
    const q = 'What does the long harbour chronicle tell?';
    const [chronicle] = retrieve(db, q, { k: 1 });
    expect(chronicle.text).toBe(LONG_TEXT);
    const reserve = answerReserve(MAX_POSITIONS, 8);
    const room = MAX_POSITIONS - reserve - fixedTokens(q);
    expect(blockTokens(chronicle)).toBeGreaterThan(room); // not vacuous
    const r = await ask(ctx, q, { k: 1, maxNewTokens: 8 });
    expect(r.figures).toMatchObject({ passagesUsed: 1, passagesDropped: 0, passagesShortened: 1 });
    const [cut] = r.passages;
    expect(cut.passageId).toBe(chronicle.passageId);
    expect(LONG_TEXT.startsWith(cut.text)).toBe(true);
    expect(LONG_TEXT[cut.text.length]).toBe(' '); // cut at a word
    expect(cut.charEnd).toBe(cut.charStart + cut.text.length);
    expect(blockTokens(cut)).toBeLessThanOrEqual(room);
    expect(blockTokens(cut)).toBeGreaterThan(room * 0.7); // most of the room is used
    expect(r.ranModel).toBe(true);
    expect(r.figures.promptTokens).toBe(fixedTokens(q) + blockTokens(cut));
  });

  it('counts CJK with the model tokenizer and never cuts inside a surrogate pair', async () => {
    const [cjk] = retrieve(db, '灯𠮷塔𠮷看𠮷守𠮷人', { k: 1 });
    expect(cjk.text).toBe(CJK_TEXT);
    const q = 'What did the lighthouse keeper write?';
    const reserve = answerReserve(MAX_POSITIONS, 8);
    const room = MAX_POSITIONS - reserve - fixedTokens(q);
    expect(blockTokens(cjk)).toBeGreaterThan(room);
    // the byte-level tokenizer spends several tokens per CJK character: a character count would overflow
    expect(blockTokens(cjk)).toBeGreaterThan(CJK_TEXT.length);
    const r = await ask(ctx, q, { passages: [cjk], maxNewTokens: 8 });
    expect(r.figures).toMatchObject({ passagesUsed: 1, passagesShortened: 1 });
    const [cut] = r.passages;
    expect(CJK_TEXT.startsWith(cut.text)).toBe(true);
    expect(cut.text).not.toMatch(LONE_SURROGATE);
    expect(blockTokens(cut)).toBeLessThanOrEqual(room);
    expect(r.figures.promptTokens + reserve).toBeLessThanOrEqual(MAX_POSITIONS);
    // cuts at many lengths (a longer question each time leaves less room): each one well-formed
    const lengths = new Set<number>();
    for (let i = 0; i < 8; i++) {
      const shortened = await ask(ctx, `What did the keeper write${' about storms'.repeat(i)}?`, { passages: [cjk], maxNewTokens: 1 });
      expect(shortened.figures.passagesShortened).toBe(1);
      expect(shortened.passages[0].text).not.toMatch(LONE_SURROGATE);
      lengths.add(shortened.passages[0].text.length);
    }
    expect(lengths.size).toBeGreaterThan(4);
  });

  it('refuses a question that does not fit alone, with a plain message', async () => {
    const long = `${'Why is the sea the colour it is at dusk, and why do storms come? '.repeat(40)}`;
    expect(fixedTokens(long)).toBeGreaterThan(MAX_POSITIONS);
    const refused = ask(ctx, long, { maxNewTokens: 8 });
    await expect(refused).rejects.toThrow(QuestionTooLongError);
    await expect(refused).rejects.toBeInstanceOf(PromptTooLongError); // refused as the engine's own length check is
    await expect(refused).rejects.toThrow(/^This question is too long for the model: .* Shorten it by about \d+ tokens\.$/);
    // a question that fits the context but not with the answer's room: refused too
    let almost = 'storms';
    while (fixedTokens(almost) + 128 <= MAX_POSITIONS) almost += ' storms';
    expect(fixedTokens(almost)).toBeLessThanOrEqual(MAX_POSITIONS);
    await expect(ask(ctx, almost)).rejects.toThrow(QuestionTooLongError);
    // with a smaller answer asked for, the same question fits and is answered
    expect((await ask(ctx, almost, { maxNewTokens: 8 })).ranModel).toBe(true);
  });

  it('a follow-up whose history no longer fits starts the context over and still answers', async () => {
    const chat = new ChatSession();
    const q1 = 'What did the lighthouse keeper write about storms?';
    const first = await ask(ctx, q1, { k: 2, maxNewTokens: 80, chat });
    expect(first.figures.contextRestarted).toBe(false);
    expect(chat.turns).toBe(1);
    const q2 = 'What happened to the fishing boats before the storm?';
    const found = retrieve(db, q2, { k: 2 });
    const fresh = found.filter((p) => !first.passages.some((f) => f.passageId === p.passageId));
    const intro = fresh.length > 0 ? engine.tokenizer.encode(FOLLOW_UP_INTRO).length : 0;
    const needed = chat.past!.tokens + intro + engine.tokenizer.encode(finalBlockText(q2, ctx.frame)).length + 80;
    expect(needed).toBeGreaterThan(MAX_POSITIONS); // not vacuous: the history does not fit

    const follow = await ask(ctx, q2, { k: 2, maxNewTokens: 80, chat });
    expect(follow.figures.contextRestarted).toBe(true);
    expect(follow.ranModel).toBe(true);
    expect(follow.tokenIds.length).toBeGreaterThan(0);
    expect(follow.figures.promptTokens + 80).toBeLessThanOrEqual(MAX_POSITIONS);
    // the follow-up's own retrieval first, then the chat's earlier passages, newest first
    const candidates = [...found, ...[...first.passages].reverse().filter((p) => !found.some((f) => f.passageId === p.passageId))];
    expect(follow.passages.map((p) => p.passageId)).toEqual(candidates.slice(0, follow.passages.length).map((p) => p.passageId));
    expect(follow.figures.passagesUsed + follow.figures.passagesDropped).toBe(candidates.length);
    // exactly a first question over those passages
    const alone = await ask(ctx, q2, { passages: follow.passages, maxNewTokens: 80, chat: new ChatSession() });
    expect(follow.tokenIds).toEqual(alone.tokenIds);
    expect(follow.topLogits).toEqual(alone.topLogits);
    // and the chat goes on from its new context
    expect(chat.turns).toBe(1);
    expect(chat.passages.map((p) => p.passageId)).toEqual(follow.passages.map((p) => p.passageId));
  });

  it('an answer that runs to the end of the context leaves the chat to start over, and the next question answers', async () => {
    const chat = new ChatSession();
    const first = await ask(ctx, 'What did the lighthouse keeper write about storms?', { k: 1, maxNewTokens: MAX_POSITIONS, chat });
    expect(first.stopReason).toBe('max-tokens');
    expect(first.figures.promptTokens + first.tokenIds.length).toBe(MAX_POSITIONS);
    expect(chat.past).toBeUndefined();
    expect(chat.turns).toBe(0);
    const next = await ask(ctx, 'What happened to the fishing boats?', { k: 1, maxNewTokens: 8, chat });
    expect(next.ranModel).toBe(true);
    expect(chat.turns).toBe(1);
  });
});

describe('the engine service leaves no empty chat', () => {
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'quire-fit-host-'));
  const home = path.join(tmp, 'home');
  const docs = path.join(tmp, 'docs');
  const dbPath = path.join(tmp, 'quire.db');
  let model: string;
  let service: EngineService;
  let previousHome: string | undefined;
  const progress: FolderView[] = [];
  let nextRequest = 1;
  const askIn = (question: string, chatId?: number): Promise<AnswerView> =>
    service.handle('ask', { requestId: `f${nextRequest++}`, question, ...(chatId !== undefined ? { chatId } : {}) });
  const chatIds = async () => (await service.handle('chats.list', {})).map((c) => c.id).sort((a, b) => a - b);

  beforeAll(async () => {
    model = await makeModelDir(tinySpec({ seed: 62, maxPositionEmbeddings: MAX_POSITIONS }));
    fs.mkdirSync(docs);
    for (const [name, texts] of Object.entries(ANSWER_DOCS)) fs.writeFileSync(path.join(docs, name), texts.join('\n\n'));
    previousHome = process.env.QUIRE_HOME;
    process.env.QUIRE_HOME = home;
    fs.mkdirSync(home);
    fs.writeFileSync(path.join(home, 'app-settings.json'), JSON.stringify({ provider: 'cpu', eagerPrefill: false }));
    service = await EngineService.start({
      dbPath,
      dataDir: home,
      modelDir: model,
      host: 'serve',
      emit: <E extends EventName>(name: E, payload: EventPayloads[E]) => {
        if (name === 'folder.progress') progress.push(payload as FolderView);
      },
    });
    await service.handle('folders.add', { path: docs });
    await untilProgress(progress, (v) => v.state === 'done');
  }, 120_000);
  afterAll(async () => {
    await service?.close();
    process.env.QUIRE_HOME = previousHome;
    removeDir(model);
    fs.rmSync(tmp, { recursive: true, force: true });
  });

  it('answers an overflowing question with fewer passages, and says so in the figures', async () => {
    const r = await askIn('What did the lighthouse keeper, the fishing boats, photosynthesis and the Moon landing have in common?');
    expect(r.sources.length).toBeGreaterThan(0);
    expect(r.figures.passagesDropped).toBeGreaterThan(0);
    expect(r.figures.passagesUsed).toBe(r.sources.length);
    expect(r.messageId).not.toBeNull();
    // a stored answer does not carry the fit (not stored): null, not a wrong number
    const stored = await service.handle('chats.messages', { chatId: r.chatId });
    expect(stored[1].figures).toMatchObject({ passagesUsed: null, passagesDropped: null });
  });

  it('refuses a question longer than the context as invalid arguments, with no chat row', async () => {
    const before = await chatIds();
    const long = 'Why is the sea the colour it is at dusk, and why do storms come? '.repeat(40);
    const refused = askIn(long);
    await expect(refused).rejects.toBeInstanceOf(QuireRequestError);
    await expect(refused).rejects.toMatchObject({ code: 'invalid-arguments', message: expect.stringMatching(/^This question is too long for the model/) });
    expect(await chatIds()).toEqual(before);
    // a refused follow-up keeps its chat and its transcript
    const chat = await askIn('What did the lighthouse keeper write?');
    await expect(askIn(long, chat.chatId)).rejects.toMatchObject({ code: 'invalid-arguments' });
    expect(await chatIds()).toContain(chat.chatId);
    expect(await service.handle('chats.messages', { chatId: chat.chatId })).toHaveLength(2);
  });

  it('deletes the chat it opened when the answer fails to be stored', async () => {
    const before = await chatIds();
    // a real write failure: another connection makes every new message row fail (SQLite trigger)
    const other = openDatabase(dbPath);
    other.exec("CREATE TRIGGER fail_messages BEFORE INSERT ON messages BEGIN SELECT RAISE(ABORT, 'simulated write failure'); END");
    try {
      await expect(askIn('What did the lighthouse keeper write?')).rejects.toThrow(/simulated write failure/);
      expect(await chatIds()).toEqual(before);
      expect(listChats(other).map((c) => c.id).sort((a, b) => a - b)).toEqual(before);
    } finally {
      other.exec('DROP TRIGGER fail_messages');
      other.close();
    }
    const after = await askIn('What did the lighthouse keeper write?');
    expect(await chatIds()).toEqual([...before, after.chatId].sort((a, b) => a - b));
  });
});
