// Each passage's block key per model (kv.passage_keys in the KV file, kv-file.ts): the token hash
// and token count of the passage's block under that model's tokenizer, recorded whenever the block
// is tokenized to be looked up or prefilled. With it, "which passages answer without prefill" is
// one join of the library's passages with the stored blocks: exact, and milliseconds on tens of
// thousands of passages, where tokenizing every passage again took 0.5-5 ms each.
//
// Invariant the coverage counts rely on: every passage block stored through electron/answering
// (passage-kv.ts) has its key recorded first, and a passage whose block text is that of a passage
// with a recorded key (the same paragraph after re-indexing, or a duplicate) gets that key after
// each index run (carryPassageKeys: no tokenizer needed, the key is the text's). So a passage with
// no key for the model has a block text never tokenized for it, and its block was never stored:
// counted as not stored. (Blocks stored by a Quire from before the table count once their passage
// is tokenized again, at its next prefill pass or question.)
import type { Db } from './open.ts';

export interface PassageKey {
  passageId: number;
  tokenHash: string;
  /** Tokens of the passage's block (title line included). */
  tokens: number;
  /** hash.ts textHash of the block's text. */
  textHash: string;
}

/** Records (or replaces) the keys of passages under a model, in one transaction. Readers skip it. */
export function recordPassageKeys(db: Db, modelFingerprint: string, keys: readonly PassageKey[]): void {
  if (db.readonly || keys.length === 0) return;
  const insert = db.prepare(
    'INSERT OR REPLACE INTO kv.passage_keys(model_fingerprint, passage_id, token_hash, tokens, text_hash) VALUES (?, ?, ?, ?, ?)',
  );
  db.transaction(() => {
    for (const k of keys) insert.run(modelFingerprint, k.passageId, k.tokenHash, k.tokens, k.textHash);
  }).immediate();
}

/** A passage's block text, as the answering layer renders it (prompt-blocks.ts passageBlockText). */
export type BlockText = (p: { title: string | null; text: string }) => string;

/**
 * After indexing: every passage without a key for a model that has keys gets the key recorded for
 * the same block text (its own earlier passage, replaced by re-indexing, or a duplicate), then the
 * keys of passages no longer in the library are deleted. Hashes only the texts of passages without a
 * key (microseconds each). Returns how many keys were carried over and how many pruned.
 */
export function carryPassageKeys(db: Db, blockText: BlockText, textHash: (text: string) => string): { carried: number; pruned: number } {
  if (db.readonly) return { carried: 0, pruned: 0 };
  const models = db.prepare('SELECT DISTINCT model_fingerprint FROM kv.passage_keys').pluck().all() as string[];
  const missing = db.prepare(
    `SELECT p.id, COALESCE(p.title, d.title) AS title, p.text FROM passages p JOIN documents d ON d.id = p.document_id
     WHERE NOT EXISTS (SELECT 1 FROM kv.passage_keys k WHERE k.model_fingerprint = ? AND k.passage_id = p.id)`,
  );
  const known = db.prepare('SELECT token_hash AS tokenHash, tokens FROM kv.passage_keys WHERE model_fingerprint = ? AND text_hash = ? LIMIT 1');
  let carried = 0;
  for (const model of models) {
    const keys: PassageKey[] = [];
    for (const p of missing.iterate(model) as Iterable<{ id: number; title: string | null; text: string }>) {
      const hash = textHash(blockText(p));
      const k = known.get(model, hash) as { tokenHash: string; tokens: number } | undefined;
      if (k) keys.push({ passageId: p.id, tokenHash: k.tokenHash, tokens: k.tokens, textHash: hash });
    }
    recordPassageKeys(db, model, keys);
    carried += keys.length;
  }
  return { carried, pruned: prunePassageKeys(db) };
}

/** The recorded block token counts of these passages under a model (passages never tokenized for it are absent). */
export function passageBlockTokens(db: Db, modelFingerprint: string, passageIds: readonly number[]): Map<number, number> {
  const rows = db
    .prepare(
      `SELECT passage_id AS passageId, tokens FROM kv.passage_keys
       WHERE model_fingerprint = ? AND passage_id IN (SELECT value FROM json_each(?))`,
    )
    .all(modelFingerprint, JSON.stringify(passageIds)) as { passageId: number; tokens: number }[];
  return new Map(rows.map((r) => [r.passageId, r.tokens]));
}

export interface FolderBlockCoverage {
  folderId: number;
  passages: number;
  /** Passages whose block is stored for the model and variant. */
  stored: number;
}

/**
 * Per folder (every folder, also empty ones, in id order; one folder with `folderId`): its passages
 * and how many of them have their block stored for the model and KV variant. Without a model, or
 * without the KV file attached, nothing is stored.
 */
export function folderBlockCoverage(
  db: Db,
  model: { fingerprint: string; variant: string } | null,
  folderId?: number,
): FolderBlockCoverage[] {
  const attached = db.prepare(`SELECT 1 FROM pragma_database_list WHERE name = 'kv'`).get() !== undefined;
  if (!attached || !model) {
    return db
      .prepare(
        `SELECT f.id AS folderId, COUNT(p.id) AS passages, 0 AS stored FROM folders f
         LEFT JOIN documents d ON d.folder_id = f.id LEFT JOIN passages p ON p.document_id = d.id
         WHERE @folder IS NULL OR f.id = @folder GROUP BY f.id ORDER BY f.id`,
      )
      .all({ folder: folderId ?? null }) as FolderBlockCoverage[];
  }
  return db
    .prepare(
      `SELECT f.id AS folderId, COUNT(p.id) AS passages, COUNT(b.id) AS stored FROM folders f
       LEFT JOIN documents d ON d.folder_id = f.id
       LEFT JOIN passages p ON p.document_id = d.id
       LEFT JOIN kv.passage_keys k ON k.model_fingerprint = @fingerprint AND k.passage_id = p.id
       LEFT JOIN kv.kv_blocks b ON b.model_fingerprint = @fingerprint AND b.token_hash = k.token_hash AND b.variant = @variant
       WHERE @folder IS NULL OR f.id = @folder
       GROUP BY f.id ORDER BY f.id`,
    )
    .all({ fingerprint: model.fingerprint, variant: model.variant, folder: folderId ?? null }) as FolderBlockCoverage[];
}

/** Of these passages, the ones whose block is stored for the model and variant (by their recorded keys). */
export function storedPassageIds(db: Db, modelFingerprint: string, variant: string, passageIds: readonly number[]): Set<number> {
  const rows = db
    .prepare(
      `SELECT k.passage_id FROM kv.passage_keys k
       JOIN kv.kv_blocks b ON b.model_fingerprint = k.model_fingerprint AND b.token_hash = k.token_hash AND b.variant = ?
       WHERE k.model_fingerprint = ? AND k.passage_id IN (SELECT value FROM json_each(?))`,
    )
    .pluck()
    .all(variant, modelFingerprint, JSON.stringify(passageIds)) as number[];
  return new Set(rows);
}

/** Deletes the keys of passages no longer in the library (re-indexed or removed); returns how many. */
export function prunePassageKeys(db: Db): number {
  if (db.readonly) return 0;
  return db.prepare('DELETE FROM kv.passage_keys WHERE passage_id NOT IN (SELECT id FROM main.passages)').run().changes;
}
