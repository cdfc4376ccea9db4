// A follow-up question in a chat against the float64 reference forward. The chat keeps its KV in
// memory (chat-context.ts) and a follow-up computes only what is new, so the follow-up prompt is
//   [instruction | first-turn passages... | first final block + first answer + turn separator +
//    follow-up intro | new passages... | follow-up final block]
// and the one-pass oracle is referenceForward over those tokens at global positions 0..N-1 with the
// mask that layout implies: the instruction block and every passage block attend to themselves only;
// the first final block, the answer, the separator and the intro attend to everything before them
// (they were computed against the chat's past); the follow-up's final block attends to everything.
//
// Tolerance: float32 KV model and 'isolated' mode (exact for blocks), and every passage block of the
// chat is computed within the question that uses it (fresh database), so no block goes through the
// KvStore's float16 codec: the only differences are float32 rounding in the ONNX path and float32 key
// rotation, hence 1e-4 as in answering-modes.test.ts.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { upsertDocument } from '../db/documents.ts';
import { addFolder } from '../db/folders.ts';
import { openDatabase, type Db } from '../db/open.ts';
import { replacePassages } from '../db/passages.ts';
import { Engine } from '../native-models/engine.ts';
import { sliceKv } from '../native-models/kv.ts';
import { positionRange } from '../native-models/prefill.ts';
import { causalMask, loadReferenceModel, referenceForward, type AttendsFn } from './tools/reference.ts';
import { tinySpec } from './tools/tiny-model-spec.ts';
import { ask } from '../electron/answering/ask.ts';
import { ChatSession, FOLLOW_UP_INTRO, turnSeparator } from '../electron/answering/chat-context.ts';
import { createAnswerContext, type AnswerContext } from '../electron/answering/passage-kv.ts';
import { finalBlockText, passageBlockText, SYSTEM_INSTRUCTION } from '../electron/answering/prompt-blocks.ts';
import { retrieve } from '../electron/answering/retrieve.ts';
import { maxAbsDiff } from './helpers/compare.ts';
import { ANSWER_DOCS, makeModelDir, removeDir } from './helpers/models.ts';

const TOL = 1e-4;

const DOCS = ANSWER_DOCS;

/** Segments laid end to end; a `global` segment's tokens attend to every earlier token, others to their own segment only (causally). */
function segmentMask(segments: { length: number; global: boolean }[]): { attends: AttendsFn; total: number } {
  const start: number[] = [];
  const isGlobal: boolean[] = [];
  let at = 0;
  for (const s of segments) {
    expect(s.length).toBeGreaterThan(0);
    for (let i = 0; i < s.length; i++) {
      start.push(at);
      isGlobal.push(s.global);
    }
    at += s.length;
  }
  return { attends: (q, k) => k <= q && (isGlobal[q] || k >= start[q]), total: at };
}

describe('follow-up in a chat equals the reference forward over the chat layout', () => {
  let dir: string;
  let tmp: string;
  let db: Db;
  let engine: Engine;
  let ctx: AnswerContext;

  beforeAll(async () => {
    dir = await makeModelDir(tinySpec({ seed: 41 }));
    tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'quire-followup-'));
    db = openDatabase(path.join(tmp, 'q.db'));
    const folder = addFolder(db, '/docs');
    for (const [name, texts] of Object.entries(DOCS)) {
      const doc = upsertDocument(db, { folderId: folder.id, path: `/docs/${name}`, size: 1, mtimeMs: 1, title: name, status: 'indexed' });
      let at = 0;
      replacePassages(
        db,
        doc.id,
        texts.map((text) => ({ title: name, text, charStart: at, charEnd: (at += text.length) })),
      );
    }
    engine = await Engine.load(dir, { provider: 'cpu' });
    ctx = await createAnswerContext(db, engine, { quality: 'isolated', fingerprint: 'followup-test' });
  });
  afterAll(async () => {
    await engine?.release();
    db?.close();
    removeDir(dir);
    removeDir(tmp);
  });

  it('isolated mode: follow-up first-token logits and prompt KV match the one-pass oracle', async () => {
    expect(engine.runner.kvShape.dtype).toBe('float32');
    const q1 = 'What did the lighthouse keeper write about storms?';
    const q2 = 'What happened to the fishing boats, and what does photosynthesis make in the leaf?';
    const k = 2;
    const chat = new ChatSession();
    const one = await ask(ctx, q1, { k, maxNewTokens: 5, quality: 'isolated', chat });
    expect(one.ranModel).toBe(true);
    expect(one.figures.computedBlocks).toBe(one.passages.length);

    // the follow-up retrieves a passage already in the chat and at least one new one
    const found = retrieve(db, q2, { k });
    const known = new Set(one.passages.map((p) => p.passageId));
    const fresh = found.filter((p) => !known.has(p.passageId));
    expect(fresh.length).toBeGreaterThanOrEqual(1);
    expect(fresh.length).toBeLessThan(found.length);

    const two = await ask(ctx, q2, { k, maxNewTokens: 3, quality: 'isolated', chat });
    expect(two.passages.map((p) => p.passageId)).toEqual([...one.passages, ...fresh].map((p) => p.passageId));
    // the new passages were computed in this question (so never float16-rounded by the store)
    expect(two.figures).toMatchObject({ computedBlocks: fresh.length, reusedBlocks: 0, quality: 'isolated', mode: 'block' });

    // the follow-up prompt as the chat laid it out
    const enc = (text: string) => engine.tokenizer.encode(text);
    const instruction = ctx.frame.instructionIds;
    const firstPassages = one.passages.map((p) => enc(passageBlockText(p)));
    const chatTail = [
      ...enc(finalBlockText(q1, ctx.frame)),
      ...one.tokenIds,
      ...enc(turnSeparator(engine.model, SYSTEM_INSTRUCTION)),
      ...enc(FOLLOW_UP_INTRO),
    ];
    const newPassages = fresh.map((p) => enc(passageBlockText(p)));
    const final2 = enc(finalBlockText(q2, ctx.frame));
    const ids = [...instruction, ...firstPassages.flat(), ...chatTail, ...newPassages.flat(), ...final2];
    expect(two.figures.promptTokens).toBe(ids.length);

    const { attends, total } = segmentMask([
      { length: instruction.length, global: false },
      ...firstPassages.map((x) => ({ length: x.length, global: false })),
      { length: chatTail.length, global: true },
      ...newPassages.map((x) => ({ length: x.length, global: false })),
      { length: final2.length, global: true },
    ]);
    expect(total).toBe(ids.length);

    const { spec, weights } = loadReferenceModel(dir);
    const N = ids.length;
    const last = N - 1;
    const ref = referenceForward(spec, weights, ids, positionRange(0, N), attends, [last]);
    const row = ref.logits[last];

    // 1. the AskResult's top logits
    let topErr = 0;
    for (const [id, v] of two.topLogits) topErr = Math.max(topErr, Math.abs(v - row[id]));
    const refMax = Math.max(...row);
    expect(topErr).toBeLessThanOrEqual(TOL);
    expect(Math.abs(two.topLogits[0][1] - refMax)).toBeLessThanOrEqual(TOL);

    // 2. the full row: the chat's KV through the prompt, the last prompt token fed again
    expect(chat.past!.tokens).toBeGreaterThanOrEqual(N);
    const prefix = sliceKv(chat.past!, 0, last);
    const again = await engine.runner.forward([ids[last]], [last], prefix);
    const rowErr = maxAbsDiff(again.logits[0], row);
    expect(rowErr).toBeLessThanOrEqual(TOL);

    // 3. the chat's KV of every prompt token equals the oracle's keys and values
    const { kvHeads, headDim } = engine.runner.kvShape;
    const M = chat.past!.tokens;
    let kvErr = 0;
    for (let l = 0; l < spec.layers; l++) {
      for (const [ours, theirs] of [
        [chat.past!.keys[l], ref.keys[l]],
        [chat.past!.values[l], ref.values[l]],
      ] as const) {
        for (let h = 0; h < kvHeads; h++) {
          const a = ours.subarray(h * M * headDim, (h * M + N) * headDim);
          const b = theirs.subarray(h * N * headDim, (h + 1) * N * headDim);
          kvErr = Math.max(kvErr, maxAbsDiff(a, b));
        }
      }
    }
    expect(kvErr).toBeLessThanOrEqual(TOL);

    // not vacuous: causal attention over the same tokens gives clearly different logits
    const causal = referenceForward(spec, weights, ids, positionRange(0, N), causalMask(), [last]).logits[last];
    const causalErr = maxAbsDiff(again.logits[0], causal);
    expect(causalErr).toBeGreaterThan(100 * TOL);
    // and the new passage blocks' isolation matters: letting only them attend to the chat's past differs too
    const leaky = segmentMask([
      { length: instruction.length, global: false },
      ...firstPassages.map((x) => ({ length: x.length, global: false })),
      { length: chatTail.length, global: true },
      ...newPassages.map((x) => ({ length: x.length, global: true })),
      { length: final2.length, global: true },
    ]).attends;
    const leakyErr = maxAbsDiff(again.logits[0], referenceForward(spec, weights, ids, positionRange(0, N), leaky, [last]).logits[last]);
    expect(leakyErr).toBeGreaterThan(100 * TOL);

    console.log(
      `follow-up: N=${N} (past ${one.figures.promptTokens} + ${one.tokenIds.length} answer), fresh=${fresh.length}; ` +
        `max err top=${topErr.toExponential(2)} row=${rowErr.toExponential(2)} kv=${kvErr.toExponential(2)}; causal diff=${causalErr.toFixed(3)} leaky-new-blocks diff=${leakyErr.toFixed(3)}`,
    );
  });
});
