// How much of the library would answer instantly: per folder, the passages whose block KV is stored
// for a model and quality mode. Passages do not record their KV key (it depends on the model's
// tokenizer), so each passage's block is tokenized and hashed exactly as passage-kv.ts keys it
// (passageBlockText -> token ids -> tokenHash, variant by kvVariant) and looked up among the stored
// keys. Needs the model's folder and tokenizer and its fingerprint, not an inference session.
import { tokenHash } from '../../db/hash.ts';
import type { Db } from '../../db/open.ts';
import type { Engine } from '../../native-models/engine.ts';
import { passageBlockText, promptFrame } from './prompt-blocks.ts';
import { kvVariant, type QualityMode } from './quality-modes.ts';

export interface FolderKvCoverage {
  folderId: number;
  passages: number;
  /** Passages whose block KV is stored for the model and mode. */
  stored: number;
}

/** Per folder (every folder, also empty ones), in folder id order. */
export function kvCoverage(db: Db, engine: Pick<Engine, 'model' | 'tokenizer'>, fingerprint: string, mode: QualityMode): FolderKvCoverage[] {
  const variant = kvVariant(mode, promptFrame(engine).instructionIds);
  const stored = new Set(
    db.prepare('SELECT token_hash FROM kv_blocks WHERE model_fingerprint = ? AND variant = ?').pluck().all(fingerprint, variant) as string[],
  );
  const byFolder = new Map<number, FolderKvCoverage>();
  for (const id of db.prepare('SELECT id FROM folders ORDER BY id').pluck().all() as number[]) {
    byFolder.set(id, { folderId: id, passages: 0, stored: 0 });
  }
  const rows = db
    .prepare(
      `SELECT d.folder_id AS folderId, COALESCE(p.title, d.title) AS title, p.text FROM passages p
       JOIN documents d ON d.id = p.document_id`,
    )
    .iterate() as Iterable<{ folderId: number; title: string | null; text: string }>;
  for (const r of rows) {
    const c = byFolder.get(r.folderId)!;
    c.passages++;
    if (stored.size > 0 && stored.has(tokenHash(engine.tokenizer.encode(passageBlockText(r))))) c.stored++;
  }
  return [...byFolder.values()];
}
