// How passage blocks are computed, for models that were not block fine-tuned (docs/block-attention.md,
// "Quality without fine-tuning"):
//
// - 'isolated' (the paper's blocks): each passage block alone at positions 0..L-1. Exact for the
//   block mask: one forward pass over [instruction, passages..., final] at global positions where a
//   passage token sees only its own block. Default when the model declares itself block fine-tuned.
//
// - 'shared-prefix' (APE-style, the default for ordinary models): each passage block is computed
//   after the instruction block's KV (as its past), so every block sees the same attention sink and
//   instructions as in the final prompt, then stored without the prefix and rotated back to 0..L-1
//   (prefillBlockAfter). Keyed also by the instruction block's token hash (the KV variant). No cost
//   at question time: the block re-encodes like an isolated one.
//   What it approximates, precisely: during prefill the block sat at positions P..P+L-1 right after
//   the P-token prefix. In the final prompt passage i sits at s_i and RoPE attention depends only on
//   relative distances, so the stored keys/values equal those of one forward pass with the
//   shared-prefix mask ONLY for the passage that starts at s_i = P (the first one). A later passage
//   carries the states it would have had sitting directly after the instruction block (distance to
//   the prefix = its own offset, not s_i + offset). The oracle per block is therefore
//   referenceForward([prefix, block], positions 0..P+L-1, causal) with the block's keys rotated by
//   s_i - P; the final block then attends to everything as usual. test/answering-modes.test.ts
//   checks exactly this (and the exact shared-prefix mask for the first passage).
//
// - boundary recompute k (EPIC), a question-time option on top of either: the first k tokens of every
//   passage block are recomputed attending to all earlier blocks (as assembled, earlier boundaries
//   already recomputed) and replace the cached ones. k = 0 is the base mode; k >= every block's
//   length is ordinary causal attention over the whole prompt. Costs k tokens per block per question,
//   which the per-answer figures show (reencodeMs). The assembly itself, with or without it, is
//   native-models/assemble.ts, the one every question path takes (through Engine.answer).
import { tokenHash } from '../../db/hash.ts';
import type { Engine } from '../../native-models/engine.ts';
import type { KvCache } from '../../native-models/kv.ts';
import { prefillBlock, prefillBlockAfter } from '../../native-models/prefill.ts';
import type { QualityMode } from './quality-mode-names.ts';

export type { QualityMode } from './quality-mode-names.ts';

/** Isolated blocks for block fine-tuned models, shared prefix for the rest. */
export function defaultQualityMode(engine: Pick<Engine, 'model'>): QualityMode {
  return engine.model.blockFineTuned ? 'isolated' : 'shared-prefix';
}

/** The KvStore variant of a passage block computed in `mode` ('' = alone). */
export function kvVariant(mode: QualityMode, instructionIds: readonly number[]): string {
  return mode === 'isolated' ? '' : `after:${tokenHash(instructionIds)}`;
}

/** A passage block's KV at local positions 0..L-1, computed as `mode` says. */
export function computePassageBlock(engine: Engine, mode: QualityMode, instructionKv: KvCache, ids: readonly number[]): Promise<KvCache> {
  return mode === 'isolated' ? prefillBlock(engine.runner, ids) : prefillBlockAfter(engine.runner, engine.model.rope, instructionKv, ids);
}
