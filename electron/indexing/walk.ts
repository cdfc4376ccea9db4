// Walking a folder for indexing: yields every file worth parsing and every problem met on the way,
// never throwing for one bad entry. Symlinks are followed; directories are tracked by real path so
// a link back up the tree (a loop) or to an already-walked directory is reported, not re-walked.
// Names are read as bytes: one that is not UTF-8 is reached through a Buffer path and reported
// with its odd bytes written \xHH (file-names.ts).
import type { Dirent, Stats } from 'node:fs';
import { readdir, readFile, realpath, stat } from 'node:fs/promises';
import path from 'node:path';
import { nameFromBytes } from './file-names.ts';
import { errorCode } from './fs-errors.ts';
import { DEFAULT_IGNORE_FILE_NAMES, DEFAULT_IGNORE_PATTERNS, IgnoreScope, isIgnored } from './ignore-rules.ts';

/** A path as the file system takes it: bytes when a name on the way is not UTF-8. */
export type FsPath = string | Buffer;

export interface WalkedFile {
  kind: 'file';
  /** Absolute path as reached from the root (through symlinks, not resolved); names that are not UTF-8 escaped. */
  path: string;
  /** The path to read the file by, when `path` is not it (a name on the way is not UTF-8). */
  fsPath?: Buffer;
  size: number;
  mtimeMs: number;
}

export interface WalkProblem {
  kind: 'problem';
  path: string;
  /** e.g. "unreadable directory (EACCES)", "symlink loop (-> /real/dir)", "broken symlink". */
  reason: string;
}

export type WalkEntry = WalkedFile | WalkProblem;

export interface WalkOptions {
  /** gitignore-syntax patterns applied from the root; replaces DEFAULT_IGNORE_PATTERNS. */
  ignorePatterns?: readonly string[];
  /** Ignore files read in every directory, scoped to it; default .gitignore and .quireignore. */
  ignoreFileNames?: readonly string[];
}

interface PendingDirectory {
  path: string;
  fsPath: FsPath;
  realPath: string;
  /** '/'-separated path from the root ('' for the root itself), what ignore rules match against. */
  relativePath: string;
  scopes: readonly IgnoreScope[];
}

/**
 * Depth-first, entries in name order, a directory's files before its subdirectories. Stop early by
 * leaving the `for await` loop.
 */
export async function* walkFolder(root: string, options: WalkOptions = {}): AsyncGenerator<WalkEntry> {
  const rootPath = path.resolve(root);
  const ignoreFileNames = options.ignoreFileNames ?? DEFAULT_IGNORE_FILE_NAMES;
  let rootReal: string;
  try {
    rootReal = await realpath(rootPath);
    if (!(await stat(rootReal)).isDirectory()) {
      yield problem(rootPath, 'not a directory');
      return;
    }
  } catch (error) {
    yield problem(rootPath, `unreadable (${errorCode(error)})`);
    return;
  }

  // Things outside the root are reached only through symlinks, possibly by several routes:
  // real path -> the path it was first walked as.
  const outsideRoot = new Map<string, string>();
  const isInsideRoot = (realPath: string) => isSameOrAncestor(rootReal, realPath);

  /**
   * A link to something inside the root is a duplicate: the target is (or was) walked at its real
   * path, which keeps paths canonical. Something outside the root is walked once, by the first
   * route that reaches it; only those are remembered, so memory stays small.
   */
  const duplicateReason = (realPath: string, entryPath: string, isLink: boolean): string | undefined => {
    if (isInsideRoot(realPath)) return isLink ? `duplicate: symlink to ${realPath}` : undefined;
    const first = outsideRoot.get(realPath);
    if (first) return `duplicate: already walked as ${first}`;
    outsideRoot.set(realPath, entryPath);
    return undefined;
  };

  const defaultPatterns = options.ignorePatterns ?? DEFAULT_IGNORE_PATTERNS;
  const pending: PendingDirectory[] = [{ path: rootPath, fsPath: rootPath, realPath: rootReal, relativePath: '', scopes: [] }];

  while (pending.length > 0) {
    const directory = pending.pop()!;
    let entries: NamedEntry[];
    try {
      const dirents = await readdir(directory.fsPath, { withFileTypes: true, encoding: 'buffer' });
      entries = dirents.map((dirent) => ({ dirent, rawName: dirent.name, ...nameFromBytes(dirent.name) }));
    } catch (error) {
      yield problem(directory.path, `unreadable directory (${errorCode(error)})`);
      continue;
    }
    entries.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));

    const scopes = [...directory.scopes];
    // At the root the defaults and the root's own files form one rule list, so a root
    // .quireignore can re-include a default (`!dist/`) exactly as a later gitignore line would.
    const ownRules: string[] = directory.relativePath === '' ? [...defaultPatterns] : [];
    for (const name of ignoreFileNames) {
      if (!entries.some((e) => e.name === name && (e.dirent.isFile() || e.dirent.isSymbolicLink()))) continue;
      try {
        ownRules.push(await readFile(childFsPath(directory.fsPath, Buffer.from(name), true), 'utf8'));
      } catch (error) {
        yield problem(path.join(directory.path, name), `unreadable ignore file (${errorCode(error)})`);
      }
    }
    if (ownRules.length > 0) scopes.push(new IgnoreScope(directory.relativePath, ownRules));

    const subdirectories: PendingDirectory[] = [];
    for (const { dirent: entry, name, rawName, exact } of entries) {
      const entryPath = path.join(directory.path, name);
      const entryFsPath = childFsPath(directory.fsPath, rawName, exact);
      const relativePath = directory.relativePath ? `${directory.relativePath}/${name}` : name;
      const resolved = await resolveEntry(entry, name, entryFsPath, directory.realPath);
      if ('reason' in resolved) {
        if (!isIgnored(scopes, relativePath, false)) yield problem(entryPath, resolved.reason);
        continue;
      }
      const { stats, realPath, isLink } = resolved;
      const isDirectory = stats ? stats.isDirectory() : entry.isDirectory();
      if (isIgnored(scopes, relativePath, isDirectory)) continue;

      if (isDirectory) {
        if (isLink && isSameOrAncestor(realPath, directory.realPath)) {
          yield problem(entryPath, `symlink loop (-> ${realPath})`);
          continue;
        }
        const duplicate = duplicateReason(realPath, entryPath, isLink);
        if (duplicate) yield problem(entryPath, duplicate);
        else subdirectories.push({ path: entryPath, fsPath: entryFsPath, realPath, relativePath, scopes });
        continue;
      }

      let fileStats = stats;
      if (!fileStats) {
        try {
          fileStats = await stat(entryFsPath);
        } catch (error) {
          yield problem(entryPath, `unreadable (${errorCode(error)})`);
          continue;
        }
      }
      if (!fileStats.isFile()) {
        yield problem(entryPath, `not a regular file (${specialFileKind(fileStats)})`);
        continue;
      }
      const duplicate = duplicateReason(realPath, entryPath, isLink);
      if (duplicate) {
        yield problem(entryPath, duplicate);
        continue;
      }
      const file: WalkedFile = { kind: 'file', path: entryPath, size: fileStats.size, mtimeMs: fileStats.mtimeMs };
      if (typeof entryFsPath !== 'string') file.fsPath = entryFsPath;
      yield file;
    }
    // Reverse, so the stack pops them in name order.
    for (let i = subdirectories.length - 1; i >= 0; i--) pending.push(subdirectories[i]);
  }
}

interface NamedEntry {
  dirent: Dirent<Buffer>;
  rawName: Buffer;
  /** The name as text (bytes that are not UTF-8 as \xHH); `exact` when it is the name itself. */
  name: string;
  exact: boolean;
}

/** A child's file-system path: a string while every name on the way is UTF-8, else bytes. */
function childFsPath(parent: FsPath, rawName: Buffer, exact: boolean): FsPath {
  if (typeof parent === 'string' && exact) return path.join(parent, rawName.toString('utf8'));
  const base = typeof parent === 'string' ? Buffer.from(parent) : parent;
  const separator = base[base.length - 1] === path.sep.charCodeAt(0) ? [] : [Buffer.from(path.sep)];
  return Buffer.concat([base, ...separator, rawName]);
}

type ResolvedEntry = { stats?: Stats; realPath: string; isLink: boolean } | { reason: string };

/** Follows a symlink (or an entry of unknown type) to what it points at; plain entries cost no syscall. */
async function resolveEntry(entry: Dirent<Buffer>, name: string, entryPath: FsPath, parentRealPath: string): Promise<ResolvedEntry> {
  const isLink = entry.isSymbolicLink();
  const typeKnown = entry.isFile() || entry.isDirectory() || isLink;
  if (!isLink) {
    const realPath = path.join(parentRealPath, name);
    if (typeKnown) return { realPath, isLink };
    try {
      return { stats: await stat(entryPath), realPath, isLink };
    } catch (error) {
      return { reason: `unreadable (${errorCode(error)})` };
    }
  }
  try {
    const stats = await stat(entryPath);
    return { stats, realPath: nameFromBytes(await realpath(entryPath, { encoding: 'buffer' })).name, isLink };
  } catch (error) {
    const code = errorCode(error);
    if (code === 'ENOENT') return { reason: 'broken symlink' };
    if (code === 'ELOOP') return { reason: 'symlink loop (links point at each other)' };
    return { reason: `unreadable symlink (${code})` };
  }
}

function isSameOrAncestor(ancestor: string, descendant: string): boolean {
  return descendant === ancestor || descendant.startsWith(ancestor.endsWith(path.sep) ? ancestor : ancestor + path.sep);
}

function specialFileKind(stats: Stats): string {
  if (stats.isFIFO()) return 'FIFO';
  if (stats.isSocket()) return 'socket';
  if (stats.isCharacterDevice()) return 'character device';
  if (stats.isBlockDevice()) return 'block device';
  return 'unknown type';
}

function problem(entryPath: string, reason: string): WalkProblem {
  return { kind: 'problem', path: entryPath, reason };
}
