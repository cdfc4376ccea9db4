// Chats through the engine service on generated models: ask returns the id of the message it stored;
// a chat's KV is released when the chat is deleted or the model changes, and a follow-up after a
// model switch is computed on the new model (it starts the context over: chat-context.ts), so it
// answers exactly as a fresh question to the new model; many chats stay under the byte cap, and a
// chat the cap released still answers, recomputing; a question prepared while typed (ask.prepare)
// is used only where it was prepared and until a setting changes.
//
// Equal answers need equal inputs: passage blocks are stored as float16 (db/kv-codec.ts) while a
// block computed within a question is used at float32, so each comparison first asks once to store
// the blocks, then compares answers that both read them from the store.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { AnswerView, EventName, EventPayloads, FolderView } from '../electron/contract/types.ts';
import { EngineService } from '../electron/engine-host/service.ts';
import { tinySpec } from './tools/tiny-model-spec.ts';
import { ANSWER_DOCS, makeModelDir, removeDir } from './helpers/models.ts';
import { untilProgress } from './helpers/progress.ts';

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'quire-host-chats-'));
const home = path.join(tmp, 'home');
const docs = path.join(tmp, 'docs');
let modelA: string;
let modelB: string;
let service: EngineService;
let previousHome: string | undefined;
const progress: FolderView[] = [];
let nextRequest = 1;

const Q1 = 'What did the lighthouse keeper write about storms?';
const Q2 = 'What happened to the fishing boats?';

async function askIn(chatId: number | undefined, question: string): Promise<AnswerView> {
  return service.handle('ask', { requestId: `r${nextRequest++}`, question, ...(chatId !== undefined ? { chatId } : {}) });
}

beforeAll(async () => {
  [modelA, modelB] = await Promise.all([makeModelDir(tinySpec({ seed: 51 })), makeModelDir(tinySpec({ seed: 52 }))]);
  fs.mkdirSync(docs);
  for (const [name, texts] of Object.entries(ANSWER_DOCS)) fs.writeFileSync(path.join(docs, name), texts.join('\n\n'));
  previousHome = process.env.QUIRE_HOME;
  process.env.QUIRE_HOME = home; // the model choice is written here, never to the user's home
  fs.mkdirSync(home);
  fs.writeFileSync(path.join(home, 'app-settings.json'), JSON.stringify({ provider: 'cpu', eagerPrefill: false }));
  service = await EngineService.start({
    dbPath: path.join(tmp, 'quire.db'),
    dataDir: home,
    modelDir: modelA,
    host: 'serve',
    emit: <E extends EventName>(name: E, payload: EventPayloads[E]) => {
      if (name === 'folder.progress') progress.push(payload as FolderView);
    },
  });
  expect(service.models.status()).toMatchObject({ ready: true, dir: modelA, provider: 'cpu' });
  await service.handle('folders.add', { path: docs });
  await untilProgress(progress, (v) => v.state === 'done');
}, 120_000);
afterAll(async () => {
  await service?.close();
  process.env.QUIRE_HOME = previousHome;
  removeDir(modelA);
  removeDir(modelB);
  fs.rmSync(tmp, { recursive: true, force: true });
});

describe('engine service chats', () => {
  it('returns the id of the message it stored, and releases the KV of a deleted chat', async () => {
    const first = await askIn(undefined, Q1);
    expect(first.cancelled).toBe(false);
    const messages = await service.handle('chats.messages', { chatId: first.chatId });
    expect(messages.map((m) => m.role)).toEqual(['user', 'assistant']);
    expect(first.messageId).toBe(messages[1].id);
    const follow = await askIn(first.chatId, Q2);
    const after = await service.handle('chats.messages', { chatId: first.chatId });
    expect(follow.messageId).toBe(after[3].id);
    expect(after[3].content).toBe(follow.answer);

    expect(service.answers.chats.holds(first.chatId)).toBe(true);
    expect(await service.handle('chats.delete', { chatId: first.chatId })).toEqual({ deleted: true });
    expect(service.answers.chats.holds(first.chatId)).toBe(false);
    expect(service.answers.chats.bytes).toBe(0);
  });

  it('computes a follow-up after a model switch on the new model, as a fresh question to it', async () => {
    const chat = await askIn(undefined, Q1);
    expect(service.answers.chats.holds(chat.chatId)).toBe(true);
    await askIn(undefined, Q2); // stores model A's blocks for Q2
    const freshOnA = await askIn(undefined, Q2);

    const status = await service.handle('models.useFolder', { path: modelB });
    expect(status).toMatchObject({ ready: true, dir: modelB });
    expect(service.answers.chats.holds(chat.chatId)).toBe(false);
    expect(service.answers.chats.bytes).toBe(0);

    await askIn(undefined, Q2); // stores model B's blocks for Q2
    const followUp = await askIn(chat.chatId, Q2);
    const freshOnB = await askIn(undefined, Q2);
    expect(followUp.answer).toBe(freshOnB.answer);
    expect(followUp.sources).toEqual(freshOnB.sources);
    expect(followUp.figures).toMatchObject({ reusedBlocks: freshOnB.figures.reusedBlocks, computedBlocks: 0 });
    // not vacuous: the two models answer differently
    expect(freshOnB.answer).not.toBe(freshOnA.answer);
    // the chat holds the new model's KV again, and its transcript kept every turn
    expect(service.answers.chats.holds(chat.chatId)).toBe(true);
    expect((await service.handle('chats.messages', { chatId: chat.chatId })).length).toBe(4);
  });

  it('ask.prepare: a question prepared where it is asked runs on the prepared context; elsewhere, or after a settings change, it does not', async () => {
    await askIn(undefined, Q1); // blocks stored (answers compare on stored blocks: see the file comment)
    await askIn(undefined, Q2);
    expect(await service.handle('ask.prepare', { question: Q1 })).toEqual({ prepared: true });
    const first = await askIn(undefined, Q1);
    expect(first.figures.prefetched).toBe(true);
    const plain = await askIn(undefined, Q1);
    expect(plain.figures.prefetched).toBe(false);
    expect(first.answer).toBe(plain.answer);
    expect(first.sources).toEqual(plain.sources);

    // a follow-up prepared in its chat; the stored answer does not say (null), the live one does
    const moon = 'Who walked on the Moon in 1969?'; // passages not in the chat yet
    expect(await service.handle('ask.prepare', { question: moon, chatId: first.chatId })).toEqual({ prepared: true });
    const follow = await askIn(first.chatId, moon);
    expect(follow.figures.prefetched).toBe(true);
    expect((await service.handle('chats.messages', { chatId: first.chatId })).at(-1)!.figures!.prefetched).toBeNull();

    // prepared for a new chat over one folder, asked in a new chat over every folder: not used
    const [folder] = await service.handle('folders.list', {});
    expect(await service.handle('ask.prepare', { question: Q1, folderId: folder.id })).toEqual({ prepared: true });
    expect((await askIn(undefined, Q1)).figures.prefetched).toBe(false);

    // a settings change drops what was prepared with the old settings
    expect(await service.handle('ask.prepare', { question: Q1 })).toEqual({ prepared: true });
    const { maxAnswerTokens } = await service.handle('settings.get', {});
    await service.handle('settings.set', { maxAnswerTokens: maxAnswerTokens + 1 });
    expect((await askIn(undefined, Q1)).figures.prefetched).toBe(false);
    await service.handle('settings.set', { maxAnswerTokens });

    // a newer prepare replaces an older one
    expect(await service.handle('ask.prepare', { question: moon })).toEqual({ prepared: true });
    expect(await service.handle('ask.prepare', { question: Q1 })).toEqual({ prepared: true });
    expect((await askIn(undefined, moon)).figures.prefetched).toBe(false);
    // what is prepared is the passages' context: an edited question that finds the same passages uses it
    expect(await service.handle('ask.prepare', { question: Q1 })).toEqual({ prepared: true });
    const edited = await askIn(undefined, Q2);
    expect(edited.sources).toEqual(plain.sources);
    expect(edited.figures.prefetched).toBe(true);

    // nothing to prepare: nothing found, a chat that does not exist
    expect(await service.handle('ask.prepare', { question: 'zyxwv qwertz' })).toEqual({ prepared: false });
    expect(await service.handle('ask.prepare', { question: Q1, chatId: 99_999 })).toEqual({ prepared: false });
  });

  it('keeps many chats under the byte cap; a released chat still answers, recomputing', async () => {
    const chats = service.answers.chats;
    chats.releaseAll();
    const first = await askIn(undefined, Q1);
    const oneChat = chats.bytes;
    expect(oneChat).toBeGreaterThan(0);
    const cap = Math.floor(oneChat * 2.5);
    await service.handle('settings.set', { chatKvBytes: cap });
    const ids = [first.chatId];
    for (let i = 0; i < 5; i++) {
      ids.push((await askIn(undefined, i % 2 ? Q1 : Q2)).chatId);
      expect(chats.bytes).toBeLessThanOrEqual(cap);
    }
    const held = ids.filter((id) => chats.holds(id));
    expect(held.length).toBeGreaterThanOrEqual(1);
    expect(held.length).toBeLessThan(ids.length);
    // least recently used first: the oldest chat went, the newest stayed
    expect(chats.holds(ids[0])).toBe(false);
    expect(chats.holds(ids.at(-1)!)).toBe(true);

    await askIn(undefined, Q2); // blocks stored
    const again = await askIn(ids[0], Q2);
    const fresh = await askIn(undefined, Q2);
    expect(again.cancelled).toBe(false);
    expect(again.answer).toBe(fresh.answer);
    expect(chats.bytes).toBeLessThanOrEqual(cap);
    expect(chats.holds(ids[0])).toBe(true);
  });
});
