// How much of the library answers without prefill: per folder, the passages whose block KV is
// stored for a model and quality mode, counted exactly from each passage's recorded block key
// (db/passage-keys.ts: one join, milliseconds on tens of thousands of passages), and why not all.
// Shared-prefix blocks are stored per instruction block (quality-modes.ts kvVariant), which the
// system prompt and the answer instruction's placement change (prompt-blocks.ts promptFrame), so
// coverage is counted for the instruction ids of the context that prefills and answers, not for a
// default one.
import type { Db } from '../../db/open.ts';
import { folderBlockCoverage, type FolderBlockCoverage } from '../../db/passage-keys.ts';
import type { KvCoverageLimit } from './kv-coverage-limits.ts';
import type { PromptFrame } from './prompt-blocks.ts';
import { kvVariant, type QualityMode } from './quality-modes.ts';

export { coverageLimit, type PrefillState } from './kv-coverage-limits.ts';
export type { KvCoverageLimit };
export type FolderKvCoverage = FolderBlockCoverage;

/** Whose KV coverage counts: the model's fingerprint and its context's instruction block. */
export interface CoverageModel {
  fingerprint: string;
  frame: Pick<PromptFrame, 'instructionIds'>;
}

/** Per folder (every folder, also empty ones, in folder id order; only `folderId` when given). */
export function kvCoverage(db: Db, model: CoverageModel, mode: QualityMode, options: { folderId?: number } = {}): FolderKvCoverage[] {
  return folderBlockCoverage(db, { fingerprint: model.fingerprint, variant: kvVariant(mode, model.frame.instructionIds) }, options.folderId);
}
