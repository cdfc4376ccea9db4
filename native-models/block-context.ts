// Assembling a prompt's past from prefilled blocks: each block's keys are rotated from its local
// positions 0..L-1 to where it sits in this prompt, then the blocks are laid end to end.
import { concatKv, type KvCache, type KvShape } from './kv.ts';
import { rotateKeys } from './rope.ts';
import type { RopeParams } from './rope-config.ts';

export interface AssembledContext {
  past: KvCache;
  /** Global start position of each block, in the order given. */
  starts: number[];
}

/** `blocks` in prompt order, each computed alone at positions 0..L-1. */
export function assembleBlocks(blocks: readonly KvCache[], rope: RopeParams, shape: KvShape): AssembledContext {
  const starts: number[] = [];
  let at = 0;
  const placed = blocks.map((block) => {
    starts.push(at);
    const moved = at === 0 ? block : rotateKeys(block, rope, at);
    at += block.tokens;
    return moved;
  });
  return { past: concatKv(placed, shape), starts };
}
