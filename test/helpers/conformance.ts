// The block-path checks the conformance tests share (export styles, model families, the catalog's
// look-alikes): blocks prefilled alone at 0..L-1, keys rotated to their place, laid end to end,
// then the final block; compared with the float64 reference under the block mask, and, where the
// model takes position_ids, with the same model run on each block at its global positions.
import { afterAll, beforeAll } from 'vitest';
import { Engine } from '../../native-models/engine.ts';
import { EXPORT_STYLES } from '../../native-models/export-style.ts';
import { concatKv, emptyKv, type KvCache } from '../../native-models/kv.ts';
import { rotateKeys } from '../../native-models/rope.ts';
import { blockMask, causalMask, loadReferenceModel, referenceForward } from '../tools/reference.ts';
import type { TinyModelSpec } from '../tools/tiny-model-spec.ts';
import { maxAbsDiff } from './compare.ts';
import { makeModelDir, removeDir } from './models.ts';

export const range = (start: number, n: number) => Array.from({ length: n }, (_, i) => start + i);

export interface GeneratedModel {
  dir: string;
  engine: Engine;
}

/**
 * Generates `spec` and loads it on the CPU before the enclosing describe's tests, releases and
 * removes it after them; call the returned function inside a test.
 */
export function useGeneratedModel(spec: TinyModelSpec): () => GeneratedModel {
  const model: Partial<GeneratedModel> = {};
  beforeAll(async () => {
    model.dir = await makeModelDir(spec);
    model.engine = await Engine.load(model.dir, { provider: 'cpu' });
  });
  afterAll(async () => {
    await model.engine?.release();
    removeDir(model.dir);
  });
  return () => model as GeneratedModel;
}

export interface BlockPathCheck {
  /** Largest |engine - reference| over every logit of the final block's rows. */
  error: number;
  /** Largest |block mask - causal mask| on the last row of the reference: what a wrong mask would cost. */
  maskEffect: number;
  /** Largest |logit| of the reference's last row, the scale float16 errors grow with. */
  maxLogit: number;
  /** The tolerance for `error` (logitTolerance of the model's spec). */
  tolerance: number;
  blockIds: number[][];
  finalIds: number[];
}

/**
 * The logit tolerance against the float64 reference for a model's export style. float32 kernels
 * (and their summation orders) differ from float64 by ~1e-6 on logits of order 1-10: 1e-4 leaves
 * margin yet catches a wrong position, mask or rotation, which moves logits by 1e-2 or more.
 * float16 activations round every intermediate, and the logits themselves, to 11 significant bits
 * (unit roundoff 2^-11 = 4.9e-4): four of those units of the largest logit, 2e-3 x max|logit|;
 * measured 3e-4 to 9e-4 of it on the look-alikes.
 */
export function logitTolerance(spec: TinyModelSpec, maxLogit: number): number {
  return EXPORT_STYLES[spec.exportStyle].activations === 'float16' ? 2e-3 * maxLogit : 1e-4;
}

/** Each block prefilled alone at 0..L-1 (what the engine stores), in prompt order. */
export async function prefillAlone(engine: Engine, blockIds: readonly number[][]): Promise<KvCache[]> {
  const out: KvCache[] = [];
  for (const ids of blockIds) out.push((await engine.runner.forward(ids, range(0, ids.length), emptyKv(engine.runner.kvShape))).present);
  return out;
}

/** Stored blocks rotated to where they sit in the prompt and laid end to end. */
export function placeBlocks(engine: Engine, blocks: readonly KvCache[]): KvCache {
  let start = 0;
  const placed = blocks.map((kv) => {
    const moved = rotateKeys(kv, engine.model.rope, start);
    start += kv.tokens;
    return moved;
  });
  return concatKv(placed, engine.runner.kvShape);
}

/**
 * The block path over `texts` (raw, shuffled into `order`) and a final block, against the float64
 * reference on the generated model in `dir`.
 */
export async function checkBlockPath(engine: Engine, dir: string, texts: readonly string[], question: string, order?: number[]): Promise<BlockPathCheck> {
  const segmented = engine.segment(texts, '', true).blockIds;
  const blockIds = (order ?? segmented.map((_, i) => i)).map((i) => segmented[i]);
  const finalIds = engine.tokenizer.encode(question);
  const past = placeBlocks(engine, await prefillAlone(engine, blockIds));
  const got = await engine.runner.forward(finalIds, range(past.tokens, finalIds.length), past, { allLogits: true });

  const ids = [...blockIds.flat(), ...finalIds];
  const lengths = [...blockIds.map((b) => b.length), finalIds.length];
  const { spec, weights } = loadReferenceModel(dir);
  const rows = range(past.tokens, finalIds.length);
  const expected = referenceForward(spec, weights, ids, range(0, ids.length), blockMask(lengths), rows);
  const error = Math.max(...rows.map((row, i) => maxAbsDiff(got.logits[i], expected.logits[row])));
  const last = ids.length - 1;
  const causal = referenceForward(spec, weights, ids, range(0, ids.length), causalMask(), [last]);
  const maskEffect = maxAbsDiff(causal.logits[last], expected.logits[last]);
  const maxLogit = Math.max(...expected.logits[last].map(Math.abs));
  return { error, maskEffect, maxLogit, tolerance: logitTolerance(spec, maxLogit), blockIds, finalIds };
}

/**
 * For models with position_ids: the final block's logits after re-encoded blocks against those
 * after each block computed by the model itself at its global positions (same kernels, same
 * precision, no re-encoding): the largest difference.
 */
export async function reencodedVersusDirect(
  engine: Engine,
  blockIds: readonly number[][],
  finalIds: readonly number[],
): Promise<{ error: number; maxLogit: number }> {
  const shape = engine.runner.kvShape;
  const direct: KvCache[] = [];
  let start = 0;
  for (const ids of blockIds) {
    direct.push((await engine.runner.forward(ids, range(start, ids.length), emptyKv(shape))).present);
    start += ids.length;
  }
  const run = (past: KvCache) => engine.runner.forward(finalIds, range(start, finalIds.length), past, { allLogits: true });
  const got = await run(placeBlocks(engine, await prefillAlone(engine, blockIds)));
  const expected = await run(concatKv(direct, shape));
  return {
    error: Math.max(...got.logits.map((row, i) => maxAbsDiff(row, expected.logits[i]))),
    maxLogit: Math.max(...expected.logits.flatMap((row) => [...row].map(Math.abs))),
  };
}
