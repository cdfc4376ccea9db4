// Assembling a prompt's past from blocks computed alone (each at local positions 0..L-1): the one
// assembly every caller uses (Engine.answer, so `quire generate`, `quire ask`, the app and the
// benchmarks). Each block's keys are rotated to where the block starts in this prompt and the blocks
// are laid end to end; with boundary recompute (EPIC, docs/block-attention.md) the first k tokens of
// every block after the first are run again attending to everything before them and replace the
// cached ones, so a block's opening sees the blocks before it.
//
// The caller gives the blocks in prompt order and this computes their starts, so the whole layout is
// decided here: a later change can lay each block straight into one past tensor per layer.
import { concatKv, emptyKv, sliceKv, type KvCache, type KvShape } from './kv.ts';
import type { ModelRunner } from './model-runner.ts';
import { positionRange } from './prefill.ts';
import { rotateKeys, rotateKeysInPlace } from './rope.ts';
import type { RopeParams } from './rope-config.ts';

/** A block's KV at local positions 0..L-1 and its token ids (needed only for boundary recompute). */
export interface PromptBlock {
  kv: KvCache;
  ids?: readonly number[];
}

/** What assembly needs of a model: RoPE, the KV shape, and its forward pass for boundary recompute. */
export interface AssemblyModel {
  rope: RopeParams;
  kvShape: KvShape;
  runner?: Pick<ModelRunner, 'forward'>;
}

export interface AssembleOptions {
  /** EPIC: recompute the first k tokens of every block after the first (0, the default: none). */
  boundaryTokens?: number;
  signal?: AbortSignal;
}

export interface AssembledPast {
  past: KvCache;
  /** Global start position of each block, in the order given. */
  starts: number[];
}

/**
 * The past of a prompt made of `blocks` (in prompt order). k = 0 is the block mask exactly; k >= every
 * block's length is ordinary causal attention over the whole prompt. A single block at 0 is returned
 * as it is (no copy).
 */
export async function assembleBlocks(
  blocks: readonly PromptBlock[],
  model: AssemblyModel,
  options: AssembleOptions = {},
): Promise<AssembledPast> {
  const starts: number[] = [];
  let at = 0;
  for (const b of blocks) {
    starts.push(at);
    at += b.kv.tokens;
  }
  if (blocks.length === 0) return { past: emptyKv(model.kvShape), starts };
  if (blocks.length === 1) return { past: blocks[0].kv, starts };
  const boundary = Math.max(0, Math.floor(options.boundaryTokens ?? 0));
  if (boundary === 0) {
    const placed = blocks.map((b, i) => (starts[i] === 0 ? b.kv : rotateKeys(b.kv, model.rope, starts[i])));
    return { past: concatKv(placed, model.kvShape), starts };
  }
  const runner = model.runner;
  if (!runner) throw new Error('boundary recompute needs the model runner');
  let past = blocks[0].kv;
  for (let i = 1; i < blocks.length; i++) {
    options.signal?.throwIfAborted();
    const { kv, ids } = blocks[i];
    if (kv.tokens === 0) continue;
    if (!ids || ids.length !== kv.tokens) throw new Error(`boundary recompute needs block ${i}'s ${kv.tokens} token ids`);
    const k = Math.min(boundary, kv.tokens);
    const { present } = await runner.forward(ids.slice(0, k), positionRange(starts[i], k), past);
    // present = past + the k recomputed tokens; the rest of the block keeps its cached states
    if (k === kv.tokens) {
      past = present;
      continue;
    }
    const rest = sliceKv(kv, k, kv.tokens);
    rotateKeysInPlace(rest, model.rope, starts[i]);
    past = concatKv([present, rest], model.kvShape);
  }
  return { past, starts };
}
