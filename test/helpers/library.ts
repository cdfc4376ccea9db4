// Test libraries written with the db functions (no indexer): one folder, a document per file name,
// its texts as passages titled by the file name.
import { upsertDocument } from '../../db/documents.ts';
import { addFolder } from '../../db/folders.ts';
import type { Db } from '../../db/open.ts';
import { replacePassages } from '../../db/passages.ts';

/** Adds `root` with a document per entry of `docs` (file name -> passage texts); returns the folder id. */
export function addLibrary(db: Db, root: string, docs: Record<string, string[]>): number {
  const folder = addFolder(db, root);
  for (const [name, texts] of Object.entries(docs)) {
    const doc = upsertDocument(db, { folderId: folder.id, path: `${root}/${name}`, size: 1, mtimeMs: 1, title: name, status: 'indexed' });
    let at = 0;
    replacePassages(
      db,
      doc.id,
      texts.map((text) => ({ title: name, text, charStart: at, charEnd: (at += text.length) })),
    );
  }
  return folder.id;
}
