// Assembling a prompt's past from blocks computed alone (each at local positions 0..L-1): the one
// assembly every caller uses (Engine.answer, so `quire generate`, `quire ask`, the app and the
// benchmarks). Each block's keys are rotated to where the block starts in this prompt and the blocks
// are laid end to end; with boundary recompute (EPIC, docs/block-attention.md) the first k tokens of
// every block after the first are run again attending to everything before them and replace the
// cached ones, so a block's opening sees the blocks before it.
//
// The caller gives the blocks in prompt order and this computes their starts, so the whole layout is
// decided here: without boundary recompute each block is copied straight into one preallocated past
// tensor per layer and its keys are rotated there, in place (layOutBlocks): one copy of the stored
// KV per question, no per-block rotated copy and no second copy to concatenate.
import { concatKv, emptyKv, kvShapeOf, sliceKv, type KvCache, type KvData, type KvShape } from './kv.ts';
import type { ModelRunner } from './model-runner.ts';
import { positionRange } from './prefill.ts';
import { checkRotatable, rotateKeysInPlace, rotateRows, rotationTables, type RotationTables } from './rope.ts';
import { ropeOfLayer, type RopeParams } from './rope-config.ts';

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
  if (boundary === 0) return { past: layOutBlocks(blocks, starts, at, model), starts };
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

/**
 * The past of blocks placed at `starts` (total tokens in all): one buffer per layer for keys and one
 * for values, [kvHeads, total, headDim]; each block's head rows are copied in and its keys turned by
 * its start where they now lie. The blocks' own buffers are only read (they may be shared, e.g. the
 * store's decoded-block cache). Bit for bit what rotateKeys + concatKv give: the same rotation code
 * runs on the same values.
 */
export function layOutBlocks(blocks: readonly PromptBlock[], starts: readonly number[], total: number, model: AssemblyModel): KvCache {
  const shape = model.kvShape;
  const { layers, kvHeads, headDim } = shape;
  const allocate = (): KvData[] =>
    Array.from({ length: layers }, () => (shape.dtype === 'float16' ? new Uint16Array(kvHeads * total * headDim) : new Float32Array(kvHeads * total * headDim)));
  const keys = allocate();
  const values = allocate();
  blocks.forEach(({ kv }, i) => {
    const own = kvShapeOf(kv);
    if (own.dtype !== shape.dtype || own.layers !== layers || own.kvHeads !== kvHeads || own.headDim !== headDim) {
      throw new Error(`assemble: block ${i} has shape ${JSON.stringify(own)}, the model's KV is ${JSON.stringify(shape)}`);
    }
    if (kv.tokens === 0) return;
    const delta = starts[i];
    if (delta !== 0) checkRotatable(kv, model.rope, delta);
    const rowLength = kv.tokens * headDim;
    const tables = new Map<RopeParams, RotationTables>();
    for (let l = 0; l < layers; l++) {
      const layerRope = ropeOfLayer(model.rope, l);
      let table = tables.get(layerRope);
      if (delta !== 0 && !table) {
        table = rotationTables(layerRope, delta);
        tables.set(layerRope, table);
      }
      for (let h = 0; h < kvHeads; h++) {
        const from = h * rowLength;
        const to = (h * total + delta) * headDim;
        keys[l].set(kv.keys[l].subarray(from, from + rowLength), to);
        values[l].set(kv.values[l].subarray(from, from + rowLength), to);
        if (table) rotateRows(keys[l].subarray(to, to + rowLength), kv.tokens, layerRope, table);
      }
    }
  });
  return { ...shape, tokens: total, keys, values };
}
