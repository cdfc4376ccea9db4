// What background prefill stores, and in which lane of the queue (prefill-queue.ts):
// - after a question, what the next questions will likely need: the passages ranked just below
//   the ones it used (ranks k+1..k+m of the same retrieval), then the neighbours of the ones it
//   used (adjacent passages of the same documents, by ordinal). Questions come in runs on one
//   topic; a follow-up asks about the same documents, often the next paragraph.
// - the library's passages not stored yet: recently modified documents first, then the folders
//   the user chats with, then the rest (newest documents first), as many as fit the budget's free
//   room, so that this speculative work never evicts what questions stored.
import { kvBlobBytes, type KvCodec } from '../../db/kv-codec.ts';
import type { Db } from '../../db/open.ts';
import { passageBlockTokens, storedPassageIds } from '../../db/passage-keys.ts';
import { getPrefillCandidates, listPrefillCandidates, neighbourPassageIds, type PrefillCandidate } from '../../db/passages.ts';
import type { KvShape } from '../../native-models/kv.ts';
import type { PrefillItem, PrefillReason } from './prefill-queue.ts';
import { retrieve } from './retrieve.ts';

/** Tokens a passage block adds to its text: the title line (estimated until the block is tokenized). */
export const TITLE_TOKENS = 8;
/** A passage whose token count is not known yet is planned at the indexer's target size. */
export const UNKNOWN_PASSAGE_TOKENS = 256;
/** Documents modified within this much of now are "recent". */
export const RECENT_MS = 7 * 24 * 60 * 60 * 1000;

export interface PredictionOptions {
  /** The question's k (its retrieval's depth). */
  k: number;
  /** Ranks after k to prefill (default k: the next page of results). */
  nextRanked?: number;
  /** Neighbours on each side of a used passage (default 1). */
  neighbours?: number;
  folderId?: number;
  perDocument?: number;
}

/**
 * After a question: ranks k+1..k+m of its retrieval, then the neighbours of `used` (the passages
 * in its context, best first), nearest first; none of `used` itself, no passage twice.
 */
export function predictedPassages(db: Db, question: string, used: readonly number[], options: PredictionOptions): number[] {
  const m = options.nextRanked ?? options.k;
  const usedSet = new Set(used);
  const deeper = m > 0 ? retrieve(db, question, { k: options.k + m, folderId: options.folderId, perDocument: options.perDocument }) : [];
  const next = deeper.map((p) => p.passageId).filter((id) => !usedSet.has(id)).slice(0, m);
  const neighbours = (options.neighbours ?? 1) > 0 ? neighbourPassageIds(db, used, options.neighbours ?? 1) : [];
  return [...new Set([...next, ...neighbours])].filter((id) => !usedSet.has(id));
}

/** What a plan needs to know of the model and store. */
export interface PlanModel {
  fingerprint: string;
  /** The KV variant of the quality mode prefill computes (quality-modes.ts kvVariant). */
  variant: string;
  /** The store's codec for new blocks: what a block will cost. */
  codec: KvCodec;
  kvShape: Pick<KvShape, 'layers' | 'kvHeads' | 'headDim'>;
}

/** The passages as queue items: their folders and the bytes their blocks will take under the model's codec. */
export function prefillItems(db: Db, model: PlanModel, candidates: readonly PrefillCandidate[]): PrefillItem[] {
  const known = passageBlockTokens(
    db,
    model.fingerprint,
    candidates.map((c) => c.passageId),
  );
  return candidates.map((c) => {
    const tokens = known.get(c.passageId) ?? (c.tokenCount > 0 ? c.tokenCount : UNKNOWN_PASSAGE_TOKENS) + TITLE_TOKENS;
    return { passageId: c.passageId, folderId: c.folderId, bytes: kvBlobBytes(model.codec, { ...model.kvShape, tokens }) };
  });
}

/** Queue items for these passage ids, in order (passages no longer in the library are left out). */
export function prefillItemsFor(db: Db, model: PlanModel, ids: readonly number[]): PrefillItem[] {
  return prefillItems(db, model, getPrefillCandidates(db, ids));
}

export interface LibraryPlanOptions {
  /** Bytes the planned blocks may take: the budget's free room, less what is already queued. */
  roomBytes: number;
  /** Only this folder's passages. */
  folderId?: number;
  /** Folders the user chats with. */
  chattedFolders?: ReadonlySet<number>;
  /** Folders left out (paused). */
  skipFolders?: ReadonlySet<number>;
  /** Passages already queued (their room is counted by the caller). */
  queued?: (passageId: number) => boolean;
  now?: number;
}

export interface LibraryPlan {
  lanes: { reason: PrefillReason; items: PrefillItem[] }[];
  /** Passages not stored and not planned because the room ran out. */
  leftOut: number;
  /** Per folder: passages not stored and not planned because the room ran out. */
  leftOutByFolder: Map<number, number>;
}

/** The library's (or a folder's) passages not stored for the model yet, in lanes, within the room. */
export function libraryPrefillPlan(db: Db, model: PlanModel, options: LibraryPlanOptions): LibraryPlan {
  const now = options.now ?? Date.now();
  const all = listPrefillCandidates(db, options.folderId).filter(
    (c) => !options.skipFolders?.has(c.folderId) && !options.queued?.(c.passageId),
  );
  const stored = storedPassageIds(
    db,
    model.fingerprint,
    model.variant,
    all.map((c) => c.passageId),
  );
  const wanted = all.filter((c) => !stored.has(c.passageId));
  const laneOf = (c: PrefillCandidate): PrefillReason =>
    now - c.mtimeMs <= RECENT_MS ? 'recent' : options.chattedFolders?.has(c.folderId) ? 'chatted' : 'library';
  const lanes: LibraryPlan['lanes'] = (['recent', 'chatted', 'library'] as const).map((reason) => ({ reason, items: [] }));
  const items = prefillItems(db, model, wanted);
  let room = options.roomBytes;
  const leftOutByFolder = new Map<number, number>();
  let leftOut = 0;
  // lanes in serving order, each newest documents first (the candidates' order)
  for (const lane of lanes) {
    wanted.forEach((c, i) => {
      if (laneOf(c) !== lane.reason) return;
      if (items[i].bytes <= room) {
        room -= items[i].bytes;
        lane.items.push(items[i]);
      } else {
        room = -1; // planned in order: once one does not fit, the rest wait for room
        leftOut++;
        leftOutByFolder.set(c.folderId, (leftOutByFolder.get(c.folderId) ?? 0) + 1);
      }
    });
  }
  return { lanes: lanes.filter((l) => l.items.length > 0), leftOut, leftOutByFolder };
}
