// The KV economy through the engine service, as the app runs it: prefill starts when a model is
// chosen, coverage per folder (kv.stats) is exact and says why it is not 100%, a lower budget set
// in Settings evicts at once (issue 10: 158% of a 16 MiB budget stayed stored), after a question
// its predicted passages (next-ranked, then neighbours) are prefilled before anything else, and a
// custom system prompt (a new instruction block, so new shared-prefix KV) is prefilled and counted.
// The generated model has wide KV (8 layers x 8 KV heads x 64: 16 KiB a token in float16) so that a
// few dozen passages outgrow the smallest budget the app takes (16 MiB).
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DEFAULT_KV_CODEC, storedKvTotals } from '../db/kv-store.ts';
import { listPassages } from '../db/passages.ts';
import { promptFrame } from '../electron/answering/prompt-blocks.ts';
import { defaultQualityMode, kvVariant } from '../electron/answering/quality-modes.ts';
import { retrieve } from '../electron/answering/retrieve.ts';
import type { PrefillSettled } from '../electron/answering/prefill-queue.ts';
import type { EventName, EventPayloads, FolderKvCoverageView, FolderView } from '../electron/contract/types.ts';
import { EngineService } from '../electron/engine-host/service.ts';
import { modelFingerprint, loadModelFolder } from '../native-models/model-folder.ts';
import { TextTokenizer } from '../native-models/tokenizer.ts';
import { tinySpec } from './tools/tiny-model-spec.ts';
import { makeModelDir, removeDir } from './helpers/models.ts';
import { untilProgress } from './helpers/progress.ts';
import { lookUpPassageBlocks } from './helpers/coverage-oracle.ts';

const MiB = 1024 ** 2;
const TOPICS = ['lighthouse', 'orchard', 'glacier', 'violin', 'comet', 'harbour', 'meadow', 'quarry'];
const PARAGRAPHS = 5;

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'quire-host-kv-'));
const home = path.join(tmp, 'home');
const docs = path.join(tmp, 'docs');
let modelDir: string;
let service: EngineService;
let previousHome: string | undefined;
const progress: FolderView[] = [];

async function coverage(): Promise<FolderKvCoverageView> {
  const stats = await service.handle('kv.stats', { folderId: 1 });
  expect(stats.folders).toHaveLength(1);
  return stats.folders[0];
}

async function until<T>(read: () => Promise<T>, done: (v: T) => boolean, ms = 60_000): Promise<T> {
  const started = Date.now();
  for (;;) {
    const v = await read();
    if (done(v)) return v;
    if (Date.now() - started > ms) throw new Error(`not reached within ${ms} ms: ${JSON.stringify(v)}`);
    await new Promise((r) => setTimeout(r, 25));
  }
}

/** The oracle: passages whose block, tokenized and hashed here, is stored for the model (after the instruction block of `systemPrompt`). */
async function storedByLookup(systemPrompt?: string): Promise<number> {
  const model = loadModelFolder(modelDir);
  const light = { model, tokenizer: new TextTokenizer(model) };
  const fingerprint = await modelFingerprint(model);
  const variant = kvVariant(defaultQualityMode(light), promptFrame(light, undefined, systemPrompt).instructionIds);
  return lookUpPassageBlocks(service.db, light.tokenizer, fingerprint, variant).filter((l) => l.stored).length;
}

beforeAll(async () => {
  modelDir = await makeModelDir(tinySpec({ seed: 61, kvDtype: 'float16', hiddenSize: 128, layers: 8, heads: 8, kvHeads: 8, headDim: 64 }));
  fs.mkdirSync(docs);
  for (const topic of TOPICS) {
    const paragraphs = Array.from(
      { length: PARAGRAPHS },
      (_, i) => `The ${topic} record ${i} tells of ${topic} work in the ${i % 2 ? 'evening' : 'morning'}, of tools, of weather and of the people who kept the ${topic} going through the year.`,
    );
    fs.writeFileSync(path.join(docs, `${topic}.md`), paragraphs.join('\n\n'));
  }
  previousHome = process.env.QUIRE_HOME;
  process.env.QUIRE_HOME = home; // no model chosen yet; the choice is written here, never to the user's home
  fs.mkdirSync(home);
  fs.writeFileSync(path.join(home, 'app-settings.json'), JSON.stringify({ provider: 'cpu', kvBudgetBytes: 256 * MiB, passageTokens: 48, k: 2 }));
  service = await EngineService.start({
    dbPath: path.join(tmp, 'quire.db'),
    dataDir: home,
    host: 'serve',
    emit: <E extends EventName>(name: E, payload: EventPayloads[E]) => {
      if (name === 'folder.progress') progress.push(payload as FolderView);
    },
  });
}, 120_000);
afterAll(async () => {
  await service?.close();
  process.env.QUIRE_HOME = previousHome;
  removeDir(modelDir);
  fs.rmSync(tmp, { recursive: true, force: true });
});

describe('the KV economy through the engine service', () => {
  it('without a model nothing is stored (no-model); choosing one starts prefill, and coverage is exact', async () => {
    await service.handle('folders.add', { path: docs });
    const indexed = await untilProgress(progress, (v) => v.state === 'done');
    expect(indexed.passages).toBe(TOPICS.length * PARAGRAPHS);
    expect(await coverage()).toEqual({ folderId: 1, passages: indexed.passages, stored: 0, limitedBy: 'no-model', etaMs: null });

    await service.handle('models.useFolder', { path: modelDir });
    const seen: FolderKvCoverageView[] = [];
    const full = await until(
      async () => {
        const c = await coverage();
        seen.push(c);
        return c;
      },
      (c) => c.stored === c.passages,
    );
    expect(full).toEqual({ folderId: 1, passages: indexed.passages, stored: indexed.passages, limitedBy: null, etaMs: null });
    // on the way, whenever it was incomplete, it said prefill was running
    expect(seen.filter((c) => c.limitedBy !== 'prefilling' && c.stored < c.passages)).toEqual([]);
    expect(await storedByLookup()).toBe(indexed.passages);
    const stats = await service.handle('kv.stats', {});
    expect(stats).toMatchObject({ entries: indexed.passages, budgetBytes: 256 * MiB, codec: DEFAULT_KV_CODEC, prefill: { queued: 0 } });
    expect(stats.prefill.msPerBlock).toBeGreaterThan(0);
  });

  it('a lower budget set in Settings evicts at once; coverage says the budget is why, exactly', async () => {
    const before = storedKvTotals(service.db);
    expect(before.bytes).toBeGreaterThan(16 * MiB); // not vacuous: the library outgrows the new budget
    await service.handle('settings.set', { kvBudgetBytes: 16 * MiB });
    // as soon as the setting is saved, without waiting for anything else
    expect(storedKvTotals(service.db).bytes).toBeLessThanOrEqual(16 * MiB);
    const stats = await service.handle('kv.stats', {});
    expect(stats.bytes).toBeLessThanOrEqual(stats.budgetBytes);
    expect(stats.budgetBytes).toBe(16 * MiB);
    const c = stats.folders[0];
    expect(c.stored).toBeLessThan(c.passages);
    expect(c).toMatchObject({ stored: await storedByLookup(), limitedBy: 'budget', etaMs: null });
  });

  it('after a question, its next-ranked passages and neighbours are prefilled before anything else', async () => {
    const queue = service.kv.prefillQueue!;
    queue.pause();
    // room for the whole library again: the library's passages are planned behind the questions'
    await service.handle('settings.set', { kvBudgetBytes: 256 * MiB });
    expect(queue.pending).toBeGreaterThan(0);
    const question = 'glacier weather in the evening';
    const answer = await service.handle('ask', { requestId: 'q1', question });
    const used = answer.sources.map((s) => s.passageId!);
    expect(used).toHaveLength(2);
    // expected by hand: ranks 3..4 of the same retrieval, then each used passage's neighbours by ordinal
    const deeper = retrieve(service.db, question, { k: 4 }).map((p) => p.passageId);
    expect(deeper.slice(0, 2)).toEqual(used);
    const neighbours = used.flatMap((id) => {
      const doc = service.db.prepare('SELECT document_id FROM passages WHERE id = ?').pluck().get(id) as number;
      const all = listPassages(service.db, doc);
      const at = all.findIndex((p) => p.id === id);
      return [all[at - 1], all[at + 1]].flatMap((p) => (p ? [p.id] : []));
    });
    const predicted = [...new Set([...deeper.slice(2), ...neighbours])].filter((id) => !used.includes(id));
    const waiting = [...queue.waiting()];
    expect(waiting.slice(0, predicted.length).map((w) => [w.passageId, w.reason])).toEqual(predicted.map((id) => [id, 'question']));
    expect(waiting.slice(predicted.length).every((w) => w.reason !== 'question')).toBe(true);
    expect(waiting.length).toBeGreaterThan(predicted.length); // not vacuous: library passages wait behind them

    const order: PrefillSettled[] = [];
    const off = queue.onSettled((s) => order.push(s));
    queue.resume();
    await until(async () => queue.pending, (n) => n === 0);
    await queue.idle();
    off();
    expect(order.slice(0, predicted.length).map((s) => s.passageId)).toEqual(predicted);
    expect((await coverage()).stored).toBe(await storedByLookup());
  });

  it("a system prompt of the user's own: prefill starts over for its instruction block, and coverage counts that block's KV", async () => {
    const passages = (await coverage()).passages;
    expect(await storedByLookup()).toBe(passages); // the default instruction block's blocks, all stored
    const from = progress.length;
    const systemPrompt = 'You answer in rhyme, and only from the documents.';
    await service.handle('settings.set', { systemPrompt });
    // the Library shows the prefill the new instruction block started (a prefill-only run, no re-index)
    await untilProgress(progress, (v) => progress.indexOf(v) >= from && v.state === 'prefilling');
    const full = await until(coverage, (c) => c.stored === c.passages);
    expect(full.limitedBy).toBeNull();
    expect(await storedByLookup(systemPrompt)).toBe(passages);
    expect(storedKvTotals(service.db).entries).toBe(2 * passages); // the default block's KV is still there (room to spare), and not counted twice
    expect(progress.slice(from).some((v) => v.state === 'parsing' || v.state === 'scanning')).toBe(false);
  });
});
