// Folders: the roots the user added. Removing one removes its documents and their passages.
import type { Db } from './open.ts';

export interface Folder {
  id: number;
  path: string;
  addedAt: number;
}

interface FolderRow {
  id: number;
  path: string;
  added_at: number;
}

const toFolder = (r: FolderRow): Folder => ({ id: r.id, path: r.path, addedAt: r.added_at });

/** Adds a root (idempotent: adding the same path again returns the existing folder). */
export function addFolder(db: Db, path: string, now: number = Date.now()): Folder {
  db.prepare('INSERT INTO folders(path, added_at) VALUES (?, ?) ON CONFLICT(path) DO NOTHING').run(path, now);
  return getFolderByPath(db, path)!;
}

export function getFolder(db: Db, id: number): Folder | undefined {
  const r = db.prepare('SELECT * FROM folders WHERE id = ?').get(id) as FolderRow | undefined;
  return r && toFolder(r);
}

export function getFolderByPath(db: Db, path: string): Folder | undefined {
  const r = db.prepare('SELECT * FROM folders WHERE path = ?').get(path) as FolderRow | undefined;
  return r && toFolder(r);
}

export function listFolders(db: Db): Folder[] {
  return (db.prepare('SELECT * FROM folders ORDER BY path').all() as FolderRow[]).map(toFolder);
}

/** A folder's documents by status and its passages, as stored. */
export interface FolderCounts {
  files: number;
  indexed: number;
  failed: number;
  skipped: number;
  passages: number;
}

/** Counts a folder's documents and passages (one statement; scans the folder's rows). */
export function folderCounts(db: Db, folderId: number): FolderCounts {
  const r = db
    .prepare(
      `SELECT COUNT(*) AS files,
         COALESCE(SUM(status = 'indexed'), 0) AS indexed, COALESCE(SUM(status = 'failed'), 0) AS failed,
         COALESCE(SUM(status = 'skipped'), 0) AS skipped,
         (SELECT COUNT(*) FROM passages p JOIN documents d ON d.id = p.document_id WHERE d.folder_id = @id) AS passages
       FROM documents WHERE folder_id = @id`,
    )
    .get({ id: folderId }) as FolderCounts;
  return { files: r.files, indexed: r.indexed, failed: r.failed, skipped: r.skipped, passages: r.passages };
}

/** Removes a root with its documents and passages (cascade); returns whether it existed. */
export function removeFolder(db: Db, id: number): boolean {
  return db.prepare('DELETE FROM folders WHERE id = ?').run(id).changes > 0;
}
