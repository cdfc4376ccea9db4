// How much of the library would answer instantly: per folder, the passages whose block KV is stored
// for a model and quality mode. Passages do not record their KV key (it depends on the model's
// tokenizer), so each passage's block is tokenized and hashed exactly as passage-kv.ts keys it
// (passageBlockText -> token ids -> tokenHash, variant by kvVariant) and looked up among the stored
// keys. Needs the model's folder and tokenizer and its fingerprint, not an inference session.
//
// Tokenizing costs ~0.5-5 ms a passage (@huggingface/tokenizers, 256-token passages; the low end on
// an idle core), so a folder larger than the sample is measured on a fixed pseudo-random sample of
// its passages (the same one each time): 500 give the share within about ±4.4 points (95%).
import { tokenHash } from '../../db/hash.ts';
import type { Db } from '../../db/open.ts';
import type { Engine } from '../../native-models/engine.ts';
import { answerInstructionFor, passageBlockText, promptFrame } from './prompt-blocks.ts';
import { kvVariant, type QualityMode } from './quality-modes.ts';

export const COVERAGE_SAMPLE = 500;

export interface FolderKvCoverage {
  folderId: number;
  passages: number;
  /** Passages looked up: all of them, or a sample when the folder has more than the sample size. */
  checked: number;
  /** Of the checked passages, those whose block KV is stored for the model and mode. */
  stored: number;
}

/** Per folder (every folder, also empty ones), in folder id order. */
export function kvCoverage(
  db: Db,
  engine: Pick<Engine, 'model' | 'tokenizer'>,
  fingerprint: string,
  mode: QualityMode,
  options: { samplePerFolder?: number } = {},
): FolderKvCoverage[] {
  const sample = options.samplePerFolder ?? COVERAGE_SAMPLE;
  const variant = kvVariant(mode, promptFrame(engine, answerInstructionFor(mode)).instructionIds);
  const stored = new Set(
    db.prepare('SELECT token_hash FROM kv_blocks WHERE model_fingerprint = ? AND variant = ?').pluck().all(fingerprint, variant) as string[],
  );
  const counts = db
    .prepare(
      `SELECT f.id AS folderId, COUNT(p.id) AS passages FROM folders f
       LEFT JOIN documents d ON d.folder_id = f.id LEFT JOIN passages p ON p.document_id = d.id
       GROUP BY f.id ORDER BY f.id`,
    )
    .all() as { folderId: number; passages: number }[];
  const byFolder = new Map(counts.map((c): [number, FolderKvCoverage] => [c.folderId, { ...c, checked: 0, stored: 0 }]));
  // Multiplying the id by a large odd constant modulo 2^32 scatters the ids: a fixed sample spread
  // over the whole folder, not its first documents.
  const rows = db
    .prepare(
      `SELECT folderId, title, text FROM (
         SELECT d.folder_id AS folderId, COALESCE(p.title, d.title) AS title, p.text,
                ROW_NUMBER() OVER (PARTITION BY d.folder_id ORDER BY (p.id * 2654435761) % 4294967296) AS n
         FROM passages p JOIN documents d ON d.id = p.document_id
       ) WHERE n <= ?`,
    )
    .iterate(sample) as Iterable<{ folderId: number; title: string | null; text: string }>;
  for (const r of rows) {
    const c = byFolder.get(r.folderId)!;
    c.checked++;
    if (stored.size > 0 && stored.has(tokenHash(engine.tokenizer.encode(passageBlockText(r))))) c.stored++;
  }
  return [...byFolder.values()];
}
