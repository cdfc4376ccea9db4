// Block prefill: the KV states of one block computed alone, at local positions 0..L-1.
import { emptyKv, sliceKv, type KvCache } from './kv.ts';
import type { ModelRunner } from './model-runner.ts';
import { rotateKeys } from './rope.ts';
import type { RopeParams } from './rope-config.ts';

function range(start: number, n: number): number[] {
  return Array.from({ length: n }, (_, i) => start + i);
}

export async function prefillBlock(runner: ModelRunner, ids: readonly number[]): Promise<KvCache> {
  const { present } = await runner.forward(ids, range(0, ids.length), emptyKv(runner.kvShape));
  return present;
}

/**
 * A block computed after a shared prefix (its KV as past) and returned without the prefix, at local
 * positions 0..L-1 as if it started the prompt, so it re-encodes like an isolated block.
 */
export async function prefillBlockAfter(
  runner: ModelRunner,
  rope: RopeParams,
  prefix: KvCache,
  ids: readonly number[],
): Promise<KvCache> {
  const { present } = await runner.forward(ids, range(prefix.tokens, ids.length), prefix);
  return rotateKeys(sliceKv(present, prefix.tokens, present.tokens), rope, -prefix.tokens);
}

export { range as positionRange };

/** How many blocks one batched prefill run takes at most, and how many padded tokens. */
export interface BatchLimits {
  /** Rows per run (default 8). */
  maxRows?: number;
  /** Rows x the longest row's length per run (default 2048): bounds the run's activations. */
  maxTokens?: number;
}

/**
 * Each block's KV computed alone from position 0, as prefillBlock computes it, with several blocks
 * per run where the model allows it (ModelRunner.batchPrefill), else one by one. Blocks are grouped
 * by length so that right-padding to the longest of a group wastes little; the result is in the
 * order of `idsList`.
 */
export async function prefillBlocks(runner: ModelRunner, idsList: readonly (readonly number[])[], limits: BatchLimits = {}): Promise<KvCache[]> {
  if (!runner.batchPrefill) {
    const out: KvCache[] = [];
    for (const ids of idsList) out.push(await prefillBlock(runner, ids));
    return out;
  }
  const maxRows = limits.maxRows ?? 8;
  const maxTokens = limits.maxTokens ?? 2048;
  const order = idsList.map((_, i) => i).sort((a, b) => idsList[b].length - idsList[a].length);
  const out: KvCache[] = new Array(idsList.length);
  for (let start = 0; start < order.length; ) {
    // longest first, so a group's width is its first row's length
    const width = idsList[order[start]].length;
    const rows = Math.max(1, Math.min(maxRows, Math.floor(maxTokens / width), order.length - start));
    const group = order.slice(start, start + rows);
    const kvs = group.length === 1 ? [await prefillBlock(runner, idsList[group[0]])] : await runner.prefillRows(group.map((i) => idsList[i]));
    group.forEach((i, k) => (out[i] = kvs[k]));
    start += rows;
  }
  return out;
}
