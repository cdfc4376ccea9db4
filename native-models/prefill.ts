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
