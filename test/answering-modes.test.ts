// Quality modes against the float64 reference forward, each with its own oracle
// (electron/answering/quality-modes.ts explains what each mode computes):
// - isolated: one forward pass with the block mask at global positions;
// - shared-prefix: the first passage (which sits right after the prefix) exactly as the
//   shared-prefix mask at global positions; every passage as the per-block oracle (reference over
//   [prefix, block] at 0..P+L-1, the block's keys rotated by s_i - P), and the final block's logits
//   from that oracle past equal ours;
// - boundary recompute: k = 0 is the base mode, k >= every block's length is full causal attention.
// Every case assembles through Engine.assemble (native-models/assemble.ts), the one assembly of the
// question path; one case also decodes through Engine.answer, the one decode setup.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { PromptBlock } from '../native-models/assemble.ts';
import { Engine } from '../native-models/engine.ts';
import type { KvCache } from '../native-models/kv.ts';
import { positionRange } from '../native-models/prefill.ts';
import { blockMask, causalMask, loadReferenceModel, referenceForward, sharedPrefixMask } from './tools/reference.ts';
import { rotateKeys } from '../native-models/rope.ts';
import { tinySpec } from './tools/tiny-model-spec.ts';
import { finalBlockText, passageBlockText, promptFrame } from '../electron/answering/prompt-blocks.ts';
import { computePassageBlock, type QualityMode } from '../electron/answering/quality-modes.ts';
import { prefillBlock } from '../native-models/prefill.ts';
import { maxAbsDiff, maxAbsDiffAll } from './helpers/compare.ts';
import { makeModelDir, removeDir, SAMPLE_TEXTS } from './helpers/models.ts';

const TOL = 1e-4;

/** Tokens [start, end) of a [kvHeads, n, headDim] layer tensor, as float32. */
function rows(data: ArrayLike<number>, kvHeads: number, n: number, headDim: number, start: number, end: number): Float32Array {
  const out = new Float32Array(kvHeads * (end - start) * headDim);
  for (let h = 0; h < kvHeads; h++) {
    for (let t = start; t < end; t++) {
      for (let d = 0; d < headDim; d++) out[(h * (end - start) + (t - start)) * headDim + d] = data[(h * n + t) * headDim + d];
    }
  }
  return out;
}

describe('quality modes equal the reference forward for their masks', () => {
  let dir: string;
  let engine: Engine;
  let instructionIds: number[];
  let passageIds: number[][];
  let finalIds: number[];
  let instructionKv: KvCache;
  let ref: ReturnType<typeof loadReferenceModel>;

  beforeAll(async () => {
    dir = await makeModelDir(tinySpec({ seed: 21 }));
    engine = await Engine.load(dir, { provider: 'cpu' });
    const frame = promptFrame(engine);
    instructionIds = frame.instructionIds;
    passageIds = SAMPLE_TEXTS.slice(0, 3).map((text, i) => engine.tokenizer.encode(passageBlockText({ title: `Doc ${i}`, text })));
    finalIds = engine.tokenizer.encode(finalBlockText('Which text mentions the sea?', frame));
    instructionKv = await prefillBlock(engine.runner, instructionIds);
    ref = loadReferenceModel(dir);
  });
  afterAll(async () => {
    await engine?.release();
    removeDir(dir);
  });

  const allIds = () => [...instructionIds, ...passageIds.flat(), ...finalIds];
  const lengths = () => [instructionIds.length, ...passageIds.map((x) => x.length), finalIds.length];

  async function ours(mode: QualityMode, boundary: number): Promise<{ logits: Float32Array[]; past: KvCache }> {
    const blocks = [];
    for (const ids of passageIds) blocks.push({ kv: await computePassageBlock(engine, mode, instructionKv, ids), ids });
    const { past } = await engine.assemble([{ kv: instructionKv }, ...blocks], { boundaryTokens: boundary });
    const out = await engine.runner.forward(finalIds, positionRange(past.tokens, finalIds.length), past, { allLogits: true });
    return { logits: out.logits, past };
  }

  const memo = new Map<string, Float64Array[]>();
  function refFinal(mask: ReturnType<typeof causalMask>, name: 'block' | 'causal'): Float64Array[] {
    if (memo.has(name)) return memo.get(name)!;
    const ids = allIds();
    const finalRows = positionRange(ids.length - finalIds.length, finalIds.length);
    const r = referenceForward(ref.spec, ref.weights, ids, positionRange(0, ids.length), mask, finalRows);
    memo.set(name, finalRows.map((row) => r.logits[row]));
    return memo.get(name)!;
  }

  const err = (a: Float32Array[], b: Float64Array[]) => maxAbsDiffAll(a, b);

  it('isolated = block mask; boundary recompute k = 0 is the same', async () => {
    const expected = refFinal(blockMask(lengths()), 'block');
    expect(err((await ours('isolated', 0)).logits, expected)).toBeLessThanOrEqual(TOL);
    // not vacuous: causal attention differs
    expect(err((await ours('isolated', 0)).logits, refFinal(causalMask(), 'causal'))).toBeGreaterThan(100 * TOL);
  });

  it('boundary recompute with k >= block length = full causal attention, from either base', async () => {
    const expected = refFinal(causalMask(), 'causal');
    expect(err((await ours('isolated', 10_000)).logits, expected)).toBeLessThanOrEqual(TOL);
    expect(err((await ours('shared-prefix', 10_000)).logits, expected)).toBeLessThanOrEqual(TOL);
    // an intermediate k lies in between: neither the base nor full attention
    const partial = (await ours('isolated', 2)).logits;
    expect(err(partial, expected)).toBeGreaterThan(10 * TOL);
    expect(err(partial, refFinal(blockMask(lengths()), 'block'))).toBeGreaterThan(10 * TOL);
  });

  it('Engine.answer (assembly + decode, as ask runs it) with boundary recompute over whole blocks = causal reference', async () => {
    const blocks: PromptBlock[] = [{ kv: instructionKv }];
    for (const ids of passageIds) blocks.push({ kv: await computePassageBlock(engine, 'shared-prefix', instructionKv, ids), ids });
    const answered = await engine.answer(blocks, finalIds, { boundaryTokens: 10_000, maxNewTokens: 3 });
    const expected = refFinal(causalMask(), 'causal');
    const last = expected[expected.length - 1];
    expect(answered.promptTokens).toBe(allIds().length);
    expect(answered.topLogits).toHaveLength(10);
    for (const [id, value] of answered.topLogits) expect(Math.abs(value - last[id])).toBeLessThanOrEqual(TOL);
    expect(answered.tokenIds[0]).toBe(last.indexOf(Math.max(...last)));
    // without recompute the same blocks give the shared-prefix answer, not the causal one
    const base = await engine.answer(blocks, finalIds, { maxNewTokens: 1 });
    expect(Math.max(...base.topLogits.map(([id, value]) => Math.abs(value - last[id])))).toBeGreaterThan(10 * TOL);
  });

  it('shared-prefix: first passage exactly as the shared-prefix mask; every passage as its per-block oracle', async () => {
    const { spec, weights } = ref;
    const P = instructionIds.length;
    const { past, logits } = await ours('shared-prefix', 0);
    const { kvHeads, headDim } = engine.runner.kvShape;
    const N = past.tokens;

    // exact mask at global positions for passage 1 (starts at P)
    const ids = allIds();
    const masked = referenceForward(spec, weights, ids, positionRange(0, ids.length), sharedPrefixMask(P, lengths().slice(1)), []);
    const L1 = passageIds[0].length;
    for (let l = 0; l < spec.layers; l++) {
      expect(maxAbsDiff(rows(past.keys[l], kvHeads, N, headDim, P, P + L1), rows(masked.keys[l], kvHeads, ids.length, headDim, P, P + L1))).toBeLessThanOrEqual(TOL);
      expect(maxAbsDiff(rows(past.values[l], kvHeads, N, headDim, P, P + L1), rows(masked.values[l], kvHeads, ids.length, headDim, P, P + L1))).toBeLessThanOrEqual(TOL);
    }

    // per-block oracle for every passage: [prefix, block] causal at 0..P+L-1, keys rotated by s_i - P
    const oracle: KvCache = { ...engine.runner.kvShape, dtype: 'float32', tokens: N, keys: [], values: [] };
    const oracleKeys = Array.from({ length: spec.layers }, (_, l) => rows(past.keys[l], kvHeads, N, headDim, 0, N));
    const oracleValues = Array.from({ length: spec.layers }, (_, l) => rows(past.values[l], kvHeads, N, headDim, 0, N));
    let s = P;
    for (const block of passageIds) {
      const L = block.length;
      const r = referenceForward(spec, weights, [...instructionIds, ...block], positionRange(0, P + L), causalMask(), []);
      const blockKv: KvCache = {
        ...engine.runner.kvShape,
        dtype: 'float32',
        tokens: L,
        keys: r.keys.map((k) => rows(k, kvHeads, P + L, headDim, P, P + L)),
        values: r.values.map((v) => rows(v, kvHeads, P + L, headDim, P, P + L)),
      };
      const moved = rotateKeys(blockKv, engine.model.rope, s - P);
      for (let l = 0; l < spec.layers; l++) {
        expect(maxAbsDiff(rows(past.keys[l], kvHeads, N, headDim, s, s + L), moved.keys[l])).toBeLessThanOrEqual(TOL);
        expect(maxAbsDiff(rows(past.values[l], kvHeads, N, headDim, s, s + L), moved.values[l])).toBeLessThanOrEqual(TOL);
        for (let h = 0; h < kvHeads; h++) {
          oracleKeys[l].set(moved.keys[l].subarray(h * L * headDim, (h + 1) * L * headDim), (h * N + s) * headDim);
          oracleValues[l].set(moved.values[l].subarray(h * L * headDim, (h + 1) * L * headDim), (h * N + s) * headDim);
        }
      }
      s += L;
    }
    // the final block against the oracle past gives our logits
    oracle.keys = oracleKeys;
    oracle.values = oracleValues;
    const fromOracle = await engine.runner.forward(finalIds, positionRange(N, finalIds.length), oracle, { allLogits: true });
    expect(maxAbsDiffAll(logits, fromOracle.logits)).toBeLessThanOrEqual(TOL);
    // and the mode is not the isolated one
    expect(err(logits, refFinal(blockMask(lengths()), 'block'))).toBeGreaterThan(10 * TOL);
  });
});
