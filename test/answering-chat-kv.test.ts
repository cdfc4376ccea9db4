// A chat's KV belongs to the model that computed it (chat-context.ts): asked on another model, the
// chat starts the context over, so the follow-up equals a fresh question to that model. ChatSessions
// keeps the chats' KV under a byte cap, least recently used first, never releasing a chat in use.
//
// Equal inputs for exact equality: each model first answers the question once, so the passage blocks
// of both compared answers come from the store (float16, db/kv-codec.ts), not one from a fresh prefill.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createChat } from '../db/chats.ts';
import { openDatabase, type Db } from '../db/open.ts';
import { Engine } from '../native-models/engine.ts';
import { ask } from '../electron/answering/ask.ts';
import { ChatSession } from '../electron/answering/chat-context.ts';
import { ChatSessions } from '../electron/answering/chat-sessions.ts';
import { createAnswerContext, type AnswerContext } from '../electron/answering/passage-kv.ts';
import { tinySpec } from './tools/tiny-model-spec.ts';
import { addLibrary } from './helpers/library.ts';
import { ANSWER_DOCS, makeModelDir, removeDir } from './helpers/models.ts';

const Q1 = 'What did the lighthouse keeper write about storms?';
const Q2 = 'What happened to the fishing boats?';
const OPTIONS = { k: 2, maxNewTokens: 6 };

describe('chat KV across models and under a cap', () => {
  let dirs: string[] = [];
  let tmp: string;
  let db: Db;
  let engines: Engine[] = [];
  let a: AnswerContext;
  let b: AnswerContext;

  beforeAll(async () => {
    dirs = await Promise.all([makeModelDir(tinySpec({ seed: 61 })), makeModelDir(tinySpec({ seed: 62 }))]);
    tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'quire-chat-kv-'));
    db = openDatabase(path.join(tmp, 'q.db'));
    addLibrary(db, '/docs', ANSWER_DOCS);
    engines = await Promise.all(dirs.map((d) => Engine.load(d, { provider: 'cpu' })));
    [a, b] = await Promise.all(engines.map((e) => createAnswerContext(db, e)));
    expect(a.fingerprint).not.toBe(b.fingerprint);
  });
  afterAll(async () => {
    for (const e of engines) await e.release();
    db?.close();
    for (const d of dirs) removeDir(d);
    removeDir(tmp);
  });

  it('a follow-up on another model is computed on it, as a fresh question', async () => {
    const chat = new ChatSession();
    await ask(a, Q1, { ...OPTIONS, chat });
    expect(chat.past).toBeDefined();

    await ask(b, Q2, OPTIONS); // stores B's blocks
    const followUp = await ask(b, Q2, { ...OPTIONS, chat });
    const freshChat = new ChatSession();
    const fresh = await ask(b, Q2, { ...OPTIONS, chat: freshChat });
    expect(followUp.tokenIds).toEqual(fresh.tokenIds);
    expect(followUp.topLogits).toEqual(fresh.topLogits);
    expect(followUp.passages.map((p) => p.passageId)).toEqual(fresh.passages.map((p) => p.passageId));
    expect(chat.past!.tokens).toBe(freshChat.past!.tokens);
    expect(chat.turns).toBe(1);

    // not vacuous: on the same model the follow-up builds on the first turn's KV
    const control = new ChatSession();
    await ask(a, Q1, { ...OPTIONS, chat: control });
    const sameModel = await ask(a, Q2, { ...OPTIONS, chat: control });
    expect(sameModel.figures.promptTokens).toBeGreaterThan(followUp.figures.promptTokens);
    expect(control.turns).toBe(2);
  });

  it('keeps the total under the cap, least recently used first, and never releases a chat in use', async () => {
    const chats = new ChatSessions(Number.MAX_SAFE_INTEGER);
    // chats 1..8 of this test, as stored chats (a session records its turns)
    const chatIds = [0, ...Array.from({ length: 8 }, (_, i) => createChat(db, `chat ${i + 1}`).id)];
    const holds = (...ns: number[]) => ns.map((n) => chats.holds(chatIds[n]));
    const answer = async (n: number, question: string) => {
      const { session, done } = chats.take(chatIds[n]);
      await ask(b, question, { ...OPTIONS, chat: session });
      done();
    };
    await answer(1, Q1);
    const one = chats.bytes;
    expect(one).toBeGreaterThan(0);
    chats.setCap(Math.floor(one * 2.5));
    for (let n = 2; n <= 6; n++) {
      await answer(n, n % 2 ? Q1 : Q2);
      expect(chats.bytes).toBeLessThanOrEqual(Math.floor(one * 2.5));
    }
    expect(holds(1, 2, 3, 4)).toEqual([false, false, false, false]);
    expect(holds(5, 6)).toEqual([true, true]);
    await answer(5, Q2); // 5 becomes the most recently used...
    await answer(7, Q1); // ...so 6 goes for 7
    expect(holds(5, 6, 7)).toEqual([true, false, true]);

    // in use: a cap of 0 waits until the answer is done
    const held = chats.take(chatIds[8]);
    await ask(b, Q1, { ...OPTIONS, chat: held.session });
    chats.setCap(0);
    expect(holds(8, 5)).toEqual([true, false]);
    held.done();
    expect(holds(8)).toEqual([false]);
    expect(chats.bytes).toBe(0);
    expect(chats.size).toBe(0);
  });
});
