// The oracle for KV coverage: every passage's block tokenized and hashed afresh, as passage-kv.ts
// keys it (passageBlockText -> token ids -> tokenHash), and looked up among the stored blocks,
// without the recorded block keys (db/passage-keys.ts) that coverage is counted from.
import { tokenHash } from '../../db/hash.ts';
import type { Db } from '../../db/open.ts';
import { passageBlockText } from '../../electron/answering/prompt-blocks.ts';

export interface PassageLookup {
  passageId: number;
  folderId: number;
  stored: boolean;
}

export function lookUpPassageBlocks(db: Db, tokenizer: { encode(text: string): number[] }, fingerprint: string, variant: string): PassageLookup[] {
  const rows = db
    .prepare('SELECT p.id, d.folder_id AS folderId, COALESCE(p.title, d.title) AS title, p.text FROM passages p JOIN documents d ON d.id = p.document_id')
    .all() as { id: number; folderId: number; title: string | null; text: string }[];
  const lookup = db.prepare('SELECT 1 FROM kv.kv_blocks WHERE model_fingerprint = ? AND token_hash = ? AND variant = ?');
  return rows.map((r) => ({
    passageId: r.id,
    folderId: r.folderId,
    stored: lookup.get(fingerprint, tokenHash(tokenizer.encode(passageBlockText(r))), variant) !== undefined,
  }));
}

/** Per folder with passages, how many of them the oracle finds stored. */
export function storedPerFolder(lookups: readonly PassageLookup[]): Map<number, number> {
  const counts = new Map<number, number>();
  for (const l of lookups) counts.set(l.folderId, (counts.get(l.folderId) ?? 0) + (l.stored ? 1 : 0));
  return counts;
}
