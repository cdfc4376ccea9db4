// How much of the library answers without prefill: per folder, the passages whose block KV is
// stored for a model and quality mode, counted exactly from each passage's recorded block key
// (db/passage-keys.ts: one join, milliseconds on tens of thousands of passages), and why not all.
// Needs the model's folder and tokenizer (for the quality mode's KV variant) and its fingerprint,
// not an inference session.
import type { Db } from '../../db/open.ts';
import { folderBlockCoverage, type FolderBlockCoverage } from '../../db/passage-keys.ts';
import type { Engine } from '../../native-models/engine.ts';
import type { KvCoverageLimit } from './kv-coverage-limits.ts';
import { promptFrame } from './prompt-blocks.ts';
import { kvVariant, type QualityMode } from './quality-modes.ts';

export { coverageLimit, type PrefillState } from './kv-coverage-limits.ts';
export type { KvCoverageLimit };
export type FolderKvCoverage = FolderBlockCoverage;

/** Per folder (every folder, also empty ones, in folder id order; only `folderId` when given). */
export function kvCoverage(
  db: Db,
  engine: Pick<Engine, 'model' | 'tokenizer'>,
  fingerprint: string,
  mode: QualityMode,
  options: { folderId?: number } = {},
): FolderKvCoverage[] {
  return folderBlockCoverage(db, { fingerprint, variant: kvVariant(mode, promptFrame(engine).instructionIds) }, options.folderId);
}
