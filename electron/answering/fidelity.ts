// How far block attention moves a model's next-token distributions from full causal attention over
// the same tokens (`quire fidelity`, `npm run bench:fidelity`): for each prompt, at every position of
// the final block, KL(softmax(full) || softmax(config)) in nats and whether the most likely token
// agrees, for each quality mode, boundary recompute and KV codec.
//
// It measures the question path's own code, not a copy of it: the instruction block is prefilled as
// createAnswerContext does, passage blocks are computed by quality-modes.ts' computePassageBlock,
// stored KV goes through the store's codec round trip (db/kv-store.ts storedKvRoundTrip), and the
// past is assembled by Engine.assemble (native-models/assemble.ts, with boundary recompute). The one
// addition is reading the logits at every position of the final block (ModelRunner.forward with
// allLogits), where Engine.answer's decode keeps only the last one.
//
// The reference, full causal attention, is the same two steps with the blocks' tokens prefilled as
// one causal block. The `full` row computes it a second time through the same code and compares:
// 0 nats and top1 = 1 on a deterministic provider, the harness's own zero check.
import { DEFAULT_KV_CODEC, storedKvRoundTrip } from '../../db/kv-store.ts';
import type { KvCodec } from '../../db/kv-codec.ts';
import type { PromptBlock } from '../../native-models/assemble.ts';
import type { Engine } from '../../native-models/engine.ts';
import type { KvCache } from '../../native-models/kv.ts';
import { positionRange, prefillBlock } from '../../native-models/prefill.ts';
import type { FidelityCodec, FidelityMode } from './fidelity-names.ts';
import type { QualityMode } from './quality-mode-names.ts';
import { computePassageBlock } from './quality-modes.ts';

export { FIDELITY_CODECS, FIDELITY_MODES, type FidelityCodec, type FidelityMode } from './fidelity-names.ts';
export { DEFAULT_KV_CODEC };

export interface FidelityConfig {
  mode: FidelityMode;
  /** EPIC boundary recompute of the first K tokens of every passage block (0: none). */
  boundaryTokens: number;
  codec: FidelityCodec;
}

/** One prompt as token ids: blockIds[0] is the instruction block, blockIds[1..] passages. */
export interface FidelityPrompt {
  blockIds: number[][];
  finalIds: number[];
}

/** Per position of a prompt's final block, for one config. */
export interface PositionScores {
  /** KL(full || config) in nats. */
  kl: Float64Array;
  /** 1 where the config's most likely token is full attention's. */
  agree: Uint8Array;
}

export interface FidelityRow extends FidelityConfig {
  /** Mean over prompts of the mean over the final block's positions. */
  klMean: number;
  /** Mean over prompts of the share of positions whose argmax agrees with full attention. */
  top1: number;
}

export interface FidelityReport {
  model: string;
  prompts: number;
  rows: FidelityRow[];
}

/**
 * The configs to measure: every mode x boundary x codec, except `full`, which stores nothing and
 * recomputes nothing, so it appears once (boundary 0, codec none) wherever it is listed.
 */
export function fidelityConfigs(modes: readonly FidelityMode[], boundaries: readonly number[], codecs: readonly FidelityCodec[]): FidelityConfig[] {
  const out: FidelityConfig[] = [];
  for (const mode of modes) {
    if (mode === 'full') {
      if (!out.some((c) => c.mode === 'full')) out.push({ mode, boundaryTokens: 0, codec: 'none' });
      continue;
    }
    for (const boundaryTokens of boundaries) for (const codec of codecs) out.push({ mode, boundaryTokens, codec });
  }
  return out;
}

/** log softmax in float64 (the logits are float32; KL differences of 1e-7 nats matter here). */
function logSoftmax(logits: ArrayLike<number>): Float64Array {
  let max = -Infinity;
  for (let i = 0; i < logits.length; i++) if (logits[i] > max) max = logits[i];
  let sum = 0;
  for (let i = 0; i < logits.length; i++) sum += Math.exp(logits[i] - max);
  const shift = max + Math.log(sum);
  const out = new Float64Array(logits.length);
  for (let i = 0; i < logits.length; i++) out[i] = logits[i] - shift;
  return out;
}

function argmax(x: ArrayLike<number>): number {
  let best = 0;
  for (let i = 1; i < x.length; i++) if (x[i] > x[best]) best = i;
  return best;
}

/** KL(p || q) in nats from log probabilities; exactly 0 when they are equal. */
export function klDivergence(logP: Float64Array, logQ: Float64Array): number {
  if (logP.length !== logQ.length) throw new Error(`klDivergence: ${logP.length} vs ${logQ.length} entries`);
  let kl = 0;
  for (let i = 0; i < logP.length; i++) {
    const d = logP[i] - logQ[i];
    if (d !== 0) kl += Math.exp(logP[i]) * d;
  }
  return Math.max(0, kl); // rounding can leave -1e-17 where the distributions are equal up to noise
}

/** The final block's logits at every position, after `past`. */
async function finalLogits(engine: Engine, blocks: readonly PromptBlock[], finalIds: readonly number[], boundaryTokens: number, signal?: AbortSignal): Promise<Float32Array[]> {
  const { past } = await engine.assemble(blocks, { boundaryTokens, signal });
  signal?.throwIfAborted();
  const out = await engine.runner.forward(finalIds, positionRange(past.tokens, finalIds.length), past, { allLogits: true });
  return out.logits;
}

/** Checks a prompt against the model: an instruction block, a final block, within its positions. */
export function checkFidelityPrompt(engine: Pick<Engine, 'checkLength'>, prompt: FidelityPrompt): void {
  if (prompt.blockIds.length === 0 || prompt.blockIds[0].length === 0) throw new Error('the prompt has no instruction block (blocks[0])');
  if (prompt.finalIds.length === 0) throw new Error('the prompt has an empty final block (question)');
  const empty = prompt.blockIds.findIndex((ids) => ids.length === 0);
  if (empty >= 0) throw new Error(`block ${empty} has no tokens`);
  engine.checkLength(prompt.blockIds.reduce((n, ids) => n + ids.length, 0) + prompt.finalIds.length);
}

/**
 * Per-position scores of one prompt for each config (in the order given). Passage blocks are
 * computed once per quality mode and round-tripped once per codec.
 */
export async function promptFidelity(
  engine: Engine,
  prompt: FidelityPrompt,
  configs: readonly FidelityConfig[],
  signal?: AbortSignal,
): Promise<PositionScores[]> {
  checkFidelityPrompt(engine, prompt);
  const [instructionIds, ...passageIds] = prompt.blockIds;
  const fullPast = async () => [{ kv: await prefillBlock(engine.runner, prompt.blockIds.flat()) }];
  const reference = (await finalLogits(engine, await fullPast(), prompt.finalIds, 0, signal)).map(logSoftmax);
  const instructionKv = await prefillBlock(engine.runner, instructionIds);
  const computed = new Map<QualityMode, KvCache[]>();
  const stored = new Map<string, KvCache[]>();
  const passages = async (mode: QualityMode, codec: FidelityCodec): Promise<KvCache[]> => {
    let kvs = computed.get(mode);
    if (!kvs) {
      kvs = [];
      for (const ids of passageIds) {
        signal?.throwIfAborted();
        kvs.push(await computePassageBlock(engine, mode, instructionKv, ids));
      }
      computed.set(mode, kvs);
    }
    if (codec === 'none') return kvs;
    const key = `${mode}/${codec}`;
    if (!stored.has(key)) {
      // a block the codec cannot represent is not stored (KvStore.put refuses it): questions compute it
      stored.set(key, kvs.map((kv) => roundTripOrAsComputed(kv, codec)));
    }
    return stored.get(key)!;
  };
  const scores: PositionScores[] = [];
  for (const config of configs) {
    signal?.throwIfAborted();
    let blocks: PromptBlock[];
    if (config.mode === 'full') {
      blocks = await fullPast();
    } else {
      const kvs = await passages(config.mode, config.codec);
      blocks = [{ kv: instructionKv, ids: instructionIds }, ...kvs.map((kv, i) => ({ kv, ids: passageIds[i] }))];
    }
    const logits = await finalLogits(engine, blocks, prompt.finalIds, config.mode === 'full' ? 0 : config.boundaryTokens, signal);
    const kl = new Float64Array(logits.length);
    const agree = new Uint8Array(logits.length);
    logits.forEach((row, i) => {
      const logQ = logSoftmax(row);
      kl[i] = klDivergence(reference[i], logQ);
      agree[i] = argmax(reference[i]) === argmax(logQ) ? 1 : 0;
    });
    scores.push({ kl, agree });
  }
  return scores;
}

function roundTripOrAsComputed(kv: KvCache, codec: KvCodec): KvCache {
  try {
    return storedKvRoundTrip(kv, codec);
  } catch (e) {
    if (e instanceof RangeError) return kv;
    throw e;
  }
}

const mean = (xs: ArrayLike<number>): number => {
  let s = 0;
  for (let i = 0; i < xs.length; i++) s += xs[i];
  return xs.length === 0 ? 0 : s / xs.length;
};

/**
 * The table from per-prompt scores (perPrompt[p][c]: prompt p, config c): averaged over positions,
 * then over prompts. `positions` picks the positions to average (default: all of the final block).
 */
export function fidelityRows(
  configs: readonly FidelityConfig[],
  perPrompt: readonly (readonly PositionScores[])[],
  positions: (s: PositionScores, prompt: number) => PositionScores = (s) => s,
): FidelityRow[] {
  return configs.map((config, c) => {
    const picked = perPrompt.map((scores, p) => positions(scores[c], p));
    return {
      ...config,
      klMean: mean(picked.map((s) => mean(s.kl))),
      top1: mean(picked.map((s) => mean(s.agree))),
    };
  });
}

export interface MeasureOptions {
  signal?: AbortSignal;
  /** After each prompt: done of total. */
  onProgress?: (done: number, total: number) => void;
}

/** The fidelity table of `prompts` on `engine` for `configs`. */
export async function measureFidelity(
  engine: Engine,
  prompts: readonly FidelityPrompt[],
  configs: readonly FidelityConfig[],
  options: MeasureOptions = {},
): Promise<FidelityRow[]> {
  if (prompts.length === 0) throw new Error('no prompts to measure');
  if (configs.length === 0) throw new Error('nothing to measure: no mode, boundary or codec given');
  // every prompt checked before the first run, so a bad one fails at once and says which
  prompts.forEach((p, i) => {
    try {
      checkFidelityPrompt(engine, p);
    } catch (e) {
      throw new Error(`prompt ${i + 1}: ${(e as Error).message}`, { cause: e });
    }
  });
  const perPrompt: PositionScores[][] = [];
  for (const prompt of prompts) {
    perPrompt.push(await promptFidelity(engine, prompt, configs, options.signal));
    options.onProgress?.(perPrompt.length, prompts.length);
  }
  return fidelityRows(configs, perPrompt);
}
