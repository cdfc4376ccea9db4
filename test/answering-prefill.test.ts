// Background prefill on a generated model and a small library written with the db functions: what a
// question predicts (its next-ranked passages, then its passages' neighbours by ordinal), the
// queue's lanes (predicted first, then recent documents, chatted folders, the rest), the library
// plan within the budget's room, and exact coverage from the recorded block keys, checked against
// every block tokenized, hashed and looked up afresh.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { upsertDocument } from '../db/documents.ts';
import { addFolder } from '../db/folders.ts';
import { tokenHash } from '../db/hash.ts';
import { kvBlobBytes } from '../db/kv-codec.ts';
import type { Db } from '../db/open.ts';
import { folderBlockCoverage, prunePassageKeys } from '../db/passage-keys.ts';
import { listPassages, replacePassages } from '../db/passages.ts';
import { Engine } from '../native-models/engine.ts';
import { ask } from '../electron/answering/ask.ts';
import { carryBlockKeys, createAnswerContext, prefillPassages, type AnswerContext } from '../electron/answering/passage-kv.ts';
import { libraryPrefillPlan, predictedPassages, prefillItemsFor, type PlanModel } from '../electron/answering/prefill-plan.ts';
import { PrefillQueue, type PrefillSettled } from '../electron/answering/prefill-queue.ts';
import { passageBlockText } from '../electron/answering/prompt-blocks.ts';
import { kvVariant } from '../electron/answering/quality-modes.ts';
import { retrieve } from '../electron/answering/retrieve.ts';
import { tinySpec } from './tools/tiny-model-spec.ts';
import { tempDb, type TempDb } from './fixtures/db-temp.ts';
import { makeModelDir, removeDir } from './helpers/models.ts';
import { lookUpPassageBlocks, storedPerFolder } from './helpers/coverage-oracle.ts';

const DAY = 24 * 60 * 60 * 1000;
const NOW = Date.now();

/** Five passages a document (one topic each), each naming its topic and its own place. */
const passagesOf = (topic: string, edit = '') =>
  Array.from({ length: 5 }, (_, i) => `The ${topic} notes, part ${i}: ${topic} ${i % 2 ? 'evening' : 'morning'} records and ${topic} maps${edit}.`);

let model: string;
let t: TempDb;
let db: Db;
let engine: Engine;
let ctx: AnswerContext;
let notes: number;
let archive: number;

function addDoc(folderId: number, root: string, topic: string, mtimeMs: number, edit = ''): void {
  const doc = upsertDocument(db, { folderId, path: `${root}/${topic}.md`, size: 1, mtimeMs, title: topic, status: 'indexed' });
  let at = 0;
  replacePassages(
    db,
    doc.id,
    passagesOf(topic, edit).map((text) => ({ title: topic, text, charStart: at, charEnd: (at += text.length) })),
  );
}

const idsOf = (topic: string) => db.prepare(`SELECT p.id FROM passages p JOIN documents d ON d.id = p.document_id WHERE d.title = ? ORDER BY p.ordinal`).pluck().all(topic) as number[];
const planModel = (): PlanModel => ({
  fingerprint: ctx.fingerprint,
  variant: kvVariant(ctx.defaultQuality, ctx.frame.instructionIds),
  codec: ctx.store.defaultCodec,
  kvShape: engine.runner.kvShape,
});

/** The oracle (test/helpers/coverage-oracle.ts) for this model and its default quality mode. */
const lookUp = () => lookUpPassageBlocks(db, engine.tokenizer, ctx.fingerprint, kvVariant(ctx.defaultQuality, ctx.frame.instructionIds));
const storedByLookup = () => storedPerFolder(lookUp());
const storedByLookupIds = () => new Set(lookUp().filter((l) => l.stored).map((l) => l.passageId));

beforeAll(async () => {
  model = await makeModelDir(tinySpec({ seed: 41, kvDtype: 'float16' }));
  t = tempDb();
  db = t.db;
  notes = addFolder(db, '/notes').id;
  archive = addFolder(db, '/archive').id;
  // notes: old documents but one modified yesterday; archive: old documents
  addDoc(notes, '/notes', 'lighthouse', NOW - 40 * DAY);
  addDoc(notes, '/notes', 'orchard', NOW - DAY);
  addDoc(notes, '/notes', 'glacier', NOW - 30 * DAY);
  addDoc(archive, '/archive', 'violin', NOW - 50 * DAY);
  addDoc(archive, '/archive', 'comet', NOW - 20 * DAY);
  addDoc(archive, '/archive', 'harbour', NOW - 60 * DAY);
  engine = await Engine.load(model, { provider: 'cpu' });
  ctx = await createAnswerContext(db, engine);
}, 60_000);
afterAll(async () => {
  await engine?.release();
  t?.cleanup();
  removeDir(model);
});

describe('what a question predicts', () => {
  it('ranks k+1..k+m of the same retrieval first, then the used passages\' neighbours by ordinal, nearest first', () => {
    const question = 'lighthouse maps and glacier records';
    const used = retrieve(db, question, { k: 2 }).map((p) => p.passageId);
    const deeper = retrieve(db, question, { k: 4 }).map((p) => p.passageId);
    expect(deeper.slice(0, 2)).toEqual(used); // the same ranking, deeper
    // the neighbours by hand: each used passage's ordinal - 1 and + 1 in its document, in the used order
    const neighbours = used.flatMap((id) => {
      const docId = db.prepare('SELECT document_id FROM passages WHERE id = ?').pluck().get(id) as number;
      const doc = listPassages(db, docId);
      const at = doc.findIndex((p) => p.id === id);
      return [doc[at - 1], doc[at + 1]].filter((p) => p !== undefined).map((p) => p.id);
    });
    const expected = [...new Set([...deeper.slice(2), ...neighbours])].filter((id) => !used.includes(id));
    expect(predictedPassages(db, question, used, { k: 2 })).toEqual(expected);
    expect(expected.length).toBeGreaterThanOrEqual(3); // not vacuous
    // no next-ranked, wider neighbours
    const wide = predictedPassages(db, question, used.slice(0, 1), { k: 1, nextRanked: 0, neighbours: 2 });
    const first = listPassages(db, db.prepare('SELECT document_id FROM passages WHERE id = ?').pluck().get(used[0]) as number);
    const at = first.findIndex((p) => p.id === used[0]);
    const byDistance = first
      .map((p, i) => ({ id: p.id, d: Math.abs(i - at) }))
      .filter((x) => x.d > 0 && x.d <= 2)
      .sort((a, b) => a.d - b.d)
      .map((x) => x.id);
    expect(wide).toEqual(byDistance);
  });
});

describe('the prefill queue', () => {
  it('serves the question lane first (newest question in front), then recent, chatted, library; moves passages up, caps predictions', async () => {
    const q = new PrefillQueue(ctx, { questionCap: 3 });
    const settled: PrefillSettled[] = [];
    q.onSettled((s) => settled.push(s));
    q.pause();
    const [a, b, c, d, e] = idsOf('harbour');
    const [f, g, h, i] = idsOf('violin');
    q.add([a, b, c, d], 'library');
    q.add([e], 'recent');
    q.add([f, g], 'question');
    q.add([h, b], 'question'); // b moves up from the library lane; the newest question goes first; g is over the cap
    expect(settled).toEqual([expect.objectContaining({ passageId: g, reason: 'question', outcome: 'removed' })]);
    q.add([c], 'chatted');
    q.add([h], 'library'); // already in an earlier lane: stays there
    const order = () => [...q.waiting()].map((x) => [x.passageId, x.reason]);
    expect(order()).toEqual([[h, 'question'], [b, 'question'], [f, 'question'], [e, 'recent'], [c, 'chatted'], [a, 'library'], [d, 'library']]);
    q.add([i], 'question'); // over the cap: the oldest prediction leaves
    expect(order().slice(0, 3)).toEqual([[i, 'question'], [h, 'question'], [b, 'question']]);
    expect(settled.slice(1)).toEqual([expect.objectContaining({ passageId: f, outcome: 'removed' })]);
    expect(q.remove([d, 999_999])).toBe(1);
    const expectedOrder = [i, h, b, e, c, a];
    await prefillPassages(ctx, [c]); // already stored when its turn comes
    settled.length = 0;
    q.resume();
    await q.idle();
    expect(settled.map((s) => s.passageId)).toEqual(expectedOrder);
    expect(settled.map((s) => s.outcome)).toEqual(['prefilled', 'prefilled', 'prefilled', 'prefilled', 'present', 'prefilled']);
    expect(settled.every((s) => s.outcome !== 'prefilled' || (s.stored && s.ms > 0))).toBe(true);
    expect(q.pending).toBe(0);
    expect(q.errors).toEqual([]);
  });
});

describe('the library plan', () => {
  it('plans passages not stored, recent documents first, then chatted folders, then the rest, within the room', () => {
    const m = planModel();
    const blockOf = (ids: number[]) => prefillItemsFor(db, m, ids).reduce((s, x) => s + x.bytes, 0);
    const plan = libraryPrefillPlan(db, m, { roomBytes: 1e12, chattedFolders: new Set([archive]), now: NOW });
    const lanes = Object.fromEntries(plan.lanes.map((l) => [l.reason, l.items.map((x) => x.passageId)]));
    const stored = storedByLookupIds();
    const unstored = (topic: string) => idsOf(topic).filter((id) => !stored.has(id));
    expect(stored.size).toBeGreaterThan(0); // the queue's test stored some: they are not planned
    expect(lanes.recent).toEqual(unstored('orchard'));
    // archive is chatted: newest document first (comet, violin, harbour), in document order within each
    expect(lanes.chatted).toEqual([...unstored('comet'), ...unstored('violin'), ...unstored('harbour')]);
    expect(lanes.library).toEqual([...unstored('glacier'), ...unstored('lighthouse')]);
    expect(plan.leftOut).toBe(0);
    // a room for exactly the recent lane and two more passages
    const room = blockOf(lanes.recent) + blockOf(lanes.chatted.slice(0, 2));
    const tight = libraryPrefillPlan(db, m, { roomBytes: room, chattedFolders: new Set([archive]), now: NOW });
    expect(tight.lanes.flatMap((l) => l.items.map((x) => x.passageId))).toEqual([...lanes.recent, ...lanes.chatted.slice(0, 2)]);
    const total = lanes.recent.length + lanes.chatted.length + lanes.library.length;
    expect(tight.leftOut).toBe(total - lanes.recent.length - 2);
    expect(tight.leftOutByFolder.get(notes)).toBe(lanes.library.length);
    // a block's planned bytes are what the codec stores for its tokens
    const [item] = prefillItemsFor(db, m, [idsOf('orchard')[0]]);
    const tokens = db.prepare('SELECT token_count FROM passages WHERE id = ?').pluck().get(item.passageId) as number | null;
    expect(item.bytes).toBeGreaterThan(kvBlobBytes(m.codec, { ...m.kvShape, tokens: 1 }));
    if (tokens) expect(item.bytes).toBe(kvBlobBytes(m.codec, { ...m.kvShape, tokens }));
  });
});

describe('coverage from the recorded block keys', () => {
  const coverage = () => new Map(folderBlockCoverage(db, { fingerprint: ctx.fingerprint, variant: kvVariant(ctx.defaultQuality, ctx.frame.instructionIds) }).map((c) => [c.folderId, c.stored]));

  it('is exact after prefill, questions, eviction and re-indexing', async () => {
    expect(coverage()).toEqual(storedByLookup());
    await prefillPassages(ctx, idsOf('glacier'));
    await ask(ctx, 'comet records', { k: 2, maxNewTokens: 1 }); // a question stores the blocks it computes
    expect(coverage()).toEqual(storedByLookup());
    expect(coverage().get(notes)).toBeGreaterThanOrEqual(5);
    // a block evicted (deleted) is no longer counted
    const [first] = idsOf('glacier');
    const text = db.prepare('SELECT text FROM passages WHERE id = ?').pluck().get(first) as string;
    const ids = engine.tokenizer.encode(passageBlockText({ title: 'glacier', text }));
    const before = coverage().get(notes)!;
    expect(ctx.store.delete({ modelFingerprint: ctx.fingerprint, tokenHash: tokenHash(ids), variant: kvVariant(ctx.defaultQuality, ctx.frame.instructionIds) })).toBe(true);
    expect(coverage().get(notes)).toBe(before - 1);
    expect(coverage()).toEqual(storedByLookup());
    // re-indexed with the same text: new passages, whose keys are carried over from the old ones by text
    addDoc(notes, '/notes', 'glacier', NOW);
    expect(carryBlockKeys(db)).toEqual({ carried: 5, pruned: 5 });
    expect(coverage()).toEqual(storedByLookup());
    expect(coverage().get(notes)).toBe(before - 1);
    // re-indexed with new text: nothing of it is stored; the old keys are pruned
    addDoc(notes, '/notes', 'glacier', NOW, ', revised');
    expect(carryBlockKeys(db)).toEqual({ carried: 0, pruned: 5 });
    expect(coverage()).toEqual(storedByLookup());
    expect(coverage().get(notes)).toBe(before - 5);
    expect(prunePassageKeys(db)).toBe(0);
    // the folder filter gives one folder's figures
    expect(folderBlockCoverage(db, { fingerprint: ctx.fingerprint, variant: kvVariant(ctx.defaultQuality, ctx.frame.instructionIds) }, archive)).toEqual([
      { folderId: archive, passages: 15, stored: coverage().get(archive) },
    ]);
    // another model's keys count nothing here
    expect(folderBlockCoverage(db, { fingerprint: 'other', variant: '' }).map((c) => c.stored)).toEqual([0, 0]);
    expect(folderBlockCoverage(db, null).map((c) => c.passages)).toEqual([15, 15]);
  });
});
