// The question path end to end on a generated model (float16 KV, as real exports) and a small corpus
// inserted with the db functions: reuse, reference logits, corrupt KV, cancellation, concurrency,
// follow-ups, background prefill, no-passage answers, retrieval and citations.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { listMessages, createChat } from '../db/chats.ts';
import { upsertDocument } from '../db/documents.ts';
import { addFolder } from '../db/folders.ts';
import { openDatabase, type Db } from '../db/open.ts';
import { replacePassages } from '../db/passages.ts';
import { Engine } from '../native-models/engine.ts';
import { positionRange } from '../native-models/prefill.ts';
import { blockMask, causalMask, loadReferenceModel, referenceForward } from './tools/reference.ts';
import { tinySpec } from './tools/tiny-model-spec.ts';
import { ask } from '../electron/answering/ask.ts';
import { ChatSession } from '../electron/answering/chat-context.ts';
import { citationsFor, citedNumbers, NO_PASSAGES_ANSWER } from '../electron/answering/citations.ts';
import { createAnswerContext, PrefillQueue, prefillPassages, type AnswerContext } from '../electron/answering/passage-kv.ts';
import { finalBlockText, passageBlockText } from '../electron/answering/prompt-blocks.ts';
import { retrieve } from '../electron/answering/retrieve.ts';
import { ANSWER_DOCS, makeModelDir, removeDir } from './helpers/models.ts';

const DOCS: Record<string, string[]> = {
  ...ANSWER_DOCS,
  'search.md': Array.from({ length: 6 }, (_, i) => `Binary search part ${i}: halving the sorted interval each step finds a key in twenty probes.`),
};

describe('ask: end to end', () => {
  let dir: string;
  let tmp: string;
  let db: Db;
  let engine: Engine;
  let ctx: AnswerContext;
  let otherFolder: number;

  beforeAll(async () => {
    dir = await makeModelDir(tinySpec({ seed: 31, kvDtype: 'float16' }));
    tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'quire-ask-'));
    db = openDatabase(path.join(tmp, 'q.db'));
    const folder = addFolder(db, '/docs');
    otherFolder = addFolder(db, '/other').id;
    for (const [name, texts] of Object.entries(DOCS)) {
      const doc = upsertDocument(db, { folderId: folder.id, path: `/docs/${name}`, size: 1, mtimeMs: 1, title: name, status: 'indexed' });
      let at = 0;
      replacePassages(
        db,
        doc.id,
        texts.map((text) => ({ title: name, text, charStart: at, charEnd: (at += text.length) })),
      );
    }
    const other = upsertDocument(db, { folderId: otherFolder, path: '/other/storm.txt', size: 1, mtimeMs: 1, title: 'storm', status: 'indexed' });
    replacePassages(db, other.id, [{ title: 'storm', text: 'A storm in another folder.', charStart: 0, charEnd: 26 }]);
    engine = await Engine.load(dir, { provider: 'cpu' });
    ctx = await createAnswerContext(db, engine);
  });
  afterAll(async () => {
    await engine?.release();
    db?.close();
    removeDir(dir);
    removeDir(tmp);
  });

  it('retrieval: the search ranking (phrases required), per-document cap, folder filter, score order', () => {
    expect(retrieve(db, 'What is the "harbour lights" about storms?').map((h) => h.text)).toEqual([DOCS['sea.md'][1]]);
    // one passage per document while other documents have hits; then search.md's other passages
    const hits = retrieve(db, 'how does binary search work in a storm', { k: 10 });
    expect(hits.slice(0, 3).map((h) => h.path).sort()).toEqual(['/docs/sea.md', '/docs/search.md', '/other/storm.txt']);
    expect(hits.slice(3).map((h) => h.path).sort()).toEqual(['/docs/sea.md', ...Array(5).fill('/docs/search.md')]);
    expect(hits.slice(3).map((h) => h.score)).toEqual([...hits.slice(3).map((h) => h.score)].sort((a, b) => b - a));
    expect(retrieve(db, 'how does binary search work', { k: 10, perDocument: 2 })).toHaveLength(6);
    const byScore = retrieve(db, 'binary search', { k: 10 });
    expect(byScore.map((h) => h.score)).toEqual([...byScore.map((h) => h.score)].sort((a, b) => b - a));
    expect(retrieve(db, 'storm', { folderId: otherFolder }).map((h) => h.path)).toEqual(['/other/storm.txt']);
    const sea = retrieve(db, 'storms at sea', { k: 3 });
    expect(sea[0].path).toBe('/docs/sea.md');
    expect(sea[0].charEnd).toBeGreaterThan(sea[0].charStart);
  });

  it('citations: [n] markers map to existing passages only', () => {
    expect(citedNumbers('see [2], [1, 3] and [2-3] but not [x]')).toEqual([2, 1, 3]);
    const passages = retrieve(db, 'storms sea', { k: 2 });
    const cites = citationsFor('It stormed [1][7].', passages);
    expect(cites).toHaveLength(1);
    expect(cites[0]).toMatchObject({ n: 1, passageId: passages[0].passageId, path: passages[0].path });
  });

  it('no passage found: says so without running the model', async () => {
    const r = await ask(ctx, 'zyxwv qwertz');
    expect(r).toMatchObject({ answer: NO_PASSAGES_ANSWER, citations: [], ranModel: false });
  });

  it('second question over the same passages reuses every block; isolated block logits equal the reference', async () => {
    const q = 'What did the lighthouse keeper write about storms and the sea?';
    const first = await ask(ctx, q, { k: 3, maxNewTokens: 6, quality: 'isolated' });
    expect(first.figures.computedBlocks).toBe(first.passages.length);
    expect(first.passages.length).toBeGreaterThan(1);
    const second = await ask(ctx, q, { k: 3, maxNewTokens: 6, quality: 'isolated' });
    expect(second.figures).toMatchObject({ computedBlocks: 0, reusedBlocks: first.passages.length, mode: 'block', provider: 'cpu' });
    expect(second.tokenIds).toEqual(first.tokenIds);
    expect(second.topLogits).toEqual(first.topLogits);

    // one forward pass with the block mask at global positions (float16 KV: 2e-3 as the fixture tests)
    const ids = [
      ...ctx.frame.instructionIds,
      ...second.passages.flatMap((p) => engine.tokenizer.encode(passageBlockText(p))),
      ...engine.tokenizer.encode(finalBlockText(q, ctx.frame)),
    ];
    const finalLen = engine.tokenizer.encode(finalBlockText(q, ctx.frame)).length;
    const lengths = [ctx.frame.instructionIds.length, ...second.passages.map((p) => engine.tokenizer.encode(passageBlockText(p)).length), finalLen];
    const { spec, weights } = loadReferenceModel(dir);
    const last = ids.length - 1;
    const ref = referenceForward(spec, weights, ids, positionRange(0, ids.length), blockMask(lengths), [last]).logits[last];
    for (const [id, v] of second.topLogits) expect(Math.abs(v - ref[id])).toBeLessThanOrEqual(2e-3);
  });

  it('a corrupted KV entry is recomputed and the answer is unchanged (default shared-prefix mode)', async () => {
    const q = 'photosynthesis light water sugar';
    const first = await ask(ctx, q, { k: 3, maxNewTokens: 6 });
    expect(first.figures.quality).toBe('shared-prefix');
    const blob = db.prepare('SELECT block_id, data FROM kv_blobs ORDER BY block_id DESC LIMIT 1').get() as { block_id: number; data: Buffer };
    blob.data[blob.data.length - 3] ^= 0x55;
    db.prepare('UPDATE kv_blobs SET data = ? WHERE block_id = ?').run(blob.data, blob.block_id);
    const again = await ask(ctx, q, { k: 3, maxNewTokens: 6 });
    expect(again.figures).toMatchObject({ corruptBlocks: 1, computedBlocks: 1, reusedBlocks: first.passages.length - 1 });
    expect(again.answer).toBe(first.answer);
    expect(again.topLogits).toEqual(first.topLogits);
    const third = await ask(ctx, q, { k: 3, maxNewTokens: 6 });
    expect(third.figures.computedBlocks).toBe(0);
  });

  it('cancellation mid-stream rejects at once and frees the engine; a queued question leaves the queue', async () => {
    const controller = new AbortController();
    let pieces = 0;
    const running = ask(ctx, 'binary search sorted interval', {
      maxNewTokens: 200,
      stopStrings: [],
      sampling: { temperature: 1, seed: 3 },
      signal: controller.signal,
      onText: () => {
        if (++pieces === 2) controller.abort();
      },
    });
    const queuedController = new AbortController();
    const queued = ask(ctx, 'moon pictures', { maxNewTokens: 4, signal: queuedController.signal });
    queuedController.abort();
    await expect(queued).rejects.toMatchObject({ name: 'AbortError' });
    await expect(running).rejects.toMatchObject({ name: 'AbortError' });
    expect(pieces).toBe(2);
    expect(ctx.queue.busy || ctx.queue.pending > 0).toBe(false);
    const after = await ask(ctx, 'moon pictures', { maxNewTokens: 3 });
    expect(after.ranModel).toBe(true);
  });

  it('two concurrent questions both complete, each as if asked alone', async () => {
    const a = 'moon pictures 1969';
    const b = 'harbour lights fishing boats';
    const alone = [await ask(ctx, a, { maxNewTokens: 5 }), await ask(ctx, b, { maxNewTokens: 5 })];
    const both = await Promise.all([ask(ctx, a, { maxNewTokens: 5 }), ask(ctx, b, { maxNewTokens: 5 })]);
    expect(both.map((r) => r.tokenIds)).toEqual(alone.map((r) => r.tokenIds));
    expect(both.map((r) => r.topLogits)).toEqual(alone.map((r) => r.topLogits));
  });

  it('follow-ups keep the chat in context, number new passages on, and are recorded', async () => {
    const chat = new ChatSession(createChat(db, 'test').id);
    const one = await ask(ctx, 'moon 1969', { k: 1, maxNewTokens: 4, chat });
    expect(one.passages).toHaveLength(1);
    const pastAfterOne = chat.past!.tokens;
    const two = await ask(ctx, 'photosynthesis leaf', { k: 1, maxNewTokens: 4, chat });
    expect(two.passages.map((p) => p.path)).toEqual(['/docs/moon.md', '/docs/plants.md']);
    expect(two.figures.promptTokens).toBeGreaterThan(pastAfterOne);
    expect(chat.turns).toBe(2);
    const messages = listMessages(db, chat.chatId!);
    expect(messages.map((m) => m.role)).toEqual(['user', 'assistant', 'user', 'assistant']);
    expect(messages[3].figures.blocksComputed).toBe(two.figures.computedBlocks);
    // one tokens-per-second figure: the stored one is the live one (null below two tokens)
    expect(messages[3].figures.tokensPerSecond).toBe(two.figures.tokensPerSecond);
    expect(two.figures.tokensPerSecond === null).toBe(two.tokenIds.length < 2);
  });

  it('full mode answers over the same prompt without stored blocks', async () => {
    const r = await ask(ctx, 'moon pictures', { k: 2, maxNewTokens: 3, mode: 'full' });
    expect(r.figures).toMatchObject({ mode: 'full', reusedBlocks: 0 });
    expect(r.ranModel).toBe(true);
  });

  it('block mode with boundary recompute over whole blocks equals full mode and the causal reference', async () => {
    const q = 'harbour lights fishing boats storm';
    const passages = retrieve(db, q, { k: 3 });
    expect(passages.length).toBeGreaterThan(1);
    const full = await ask(ctx, q, { passages, maxNewTokens: 1, mode: 'full' });
    const recomputed = await ask(ctx, q, { passages, maxNewTokens: 1, quality: 'isolated', boundaryTokens: 10_000 });
    expect(recomputed.figures).toMatchObject({ mode: 'block', boundaryTokens: 10_000, promptTokens: full.figures.promptTokens });
    const ids = [
      ...ctx.frame.instructionIds,
      ...passages.flatMap((p) => engine.tokenizer.encode(passageBlockText(p))),
      ...engine.tokenizer.encode(finalBlockText(q, ctx.frame)),
    ];
    const { spec, weights } = loadReferenceModel(dir);
    const last = ids.length - 1;
    const ref = referenceForward(spec, weights, ids, positionRange(0, ids.length), causalMask(), [last]).logits[last];
    // float16 KV: 2e-3 as the fixture tests
    for (const r of [full, recomputed]) for (const [id, v] of r.topLogits) expect(Math.abs(v - ref[id])).toBeLessThanOrEqual(2e-3);
    // not vacuous: the block mask (no recompute) answers differently
    const blocked = await ask(ctx, q, { passages, maxNewTokens: 1, quality: 'isolated' });
    expect(Math.max(...blocked.topLogits.map(([id, v]) => Math.abs(v - ref[id])))).toBeGreaterThan(1e-2);
  });

  it('background prefill stores blocks so the first question computes none; the queue pauses and resumes', async () => {
    const ids = (db.prepare('SELECT id FROM passages').pluck().all() as number[]).slice();
    const sp = await prefillPassages(ctx, ids.slice(0, 2), { mode: 'isolated' });
    expect(sp.computed + sp.skipped).toBe(2);
    const queue = new PrefillQueue(ctx);
    queue.pause();
    queue.add(ids);
    await queue.idle();
    expect(queue.pending).toBe(ids.length);
    queue.resume();
    await queue.idle();
    expect(queue.pending).toBe(0);
    expect(queue.errors).toEqual([]);
    const r = await ask(ctx, 'binary search interval probes', { k: 4, maxNewTokens: 2 });
    expect(r.figures.computedBlocks).toBe(0);
  });
});
