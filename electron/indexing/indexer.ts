// Indexing a folder into the store, incrementally and resumably.
//
// Per file: stat (size + mtime unchanged -> nothing to do); else read and hash (sha256) — same
// content -> only the stat fields are updated; content that belonged to a document whose path has
// vanished -> a rename (the record moves, its passages stay); else parse and cut passages. The
// document row and its passages are written in ONE transaction, so a process killed at any point
// leaves every document either as it was or fully re-indexed. After a complete walk, documents
// under the root that were not seen (and not renamed) are deleted with their passages.
//
// Resuming: a killed run is simply run again. Files already committed are unchanged (size, mtime,
// status), the rest are processed; deletions happen only at the end of a complete walk. With an
// `afterDocument` hook (KV prefill), a document is committed as 'pending' with its passages and
// becomes 'indexed' once the hook has finished, so a run killed during the hook finishes it later.
import { createHash } from 'node:crypto';
import { constants as fsConstants } from 'node:fs';
import { open, stat } from 'node:fs/promises';
import path from 'node:path';
import { addFolder } from '../../db/folders.ts';
import {
  deleteDocument,
  listDocuments,
  moveDocument,
  setDocumentStat,
  setDocumentStatus,
  upsertDocument,
  type DocumentRecord,
  type DocumentStatus,
} from '../../db/documents.ts';
import type { Db } from '../../db/open.ts';
import { countFolderPassages, listPassages, replacePassages, type Passage as StoredPassage } from '../../db/passages.ts';
import { errorCode } from './fs-errors.ts';
import { DEFAULT_MAX_FILE_BYTES, tooLarge, type ParseResult } from './parsers/index.ts';
import { DEFAULT_PARSE_TIMEOUT_MS, sharedParseProcess, type ParseProcess } from './parse-process.ts';
import { cutPassages, DEFAULT_TARGET_TOKENS, type CountTokens, type Passage } from './passages.ts';
import { walkFolder, type WalkedFile, type WalkOptions } from './walk.ts';

export type IndexPhase = 'scanning' | 'indexing' | 'done' | 'cancelled';

export interface IndexProgress {
  folderId: number;
  root: string;
  phase: IndexPhase;
  /** Files the walk yielded so far (problems not included). */
  filesFound: number;
  /** Files looked at in the indexing phase (unchanged ones included). */
  filesDone: number;
  /** Files (re)parsed and written this run. */
  filesIndexed: number;
  filesUnchanged: number;
  filesSkipped: number;
  /** Files and walk problems (symlink loops, unreadable directories...) that failed. */
  filesFailed: number;
  /** Passages written this run. */
  passages: number;
  /** KV blocks prefilled this run (by the afterDocument hook). */
  kvBlocks: number;
  /** Bytes of the files that needed work (size or mtime changed, or new), done so far / in all. */
  bytesDone: number;
  bytesTotal: number;
  /** Estimated time left, from the bytes rate so far (indexing phase, once some bytes are done). */
  etaMs?: number;
  /** The file being worked on. */
  currentPath?: string;
}

export interface FileProblem {
  path: string;
  reason: string;
}

export interface IndexSummary {
  folderId: number;
  root: string;
  /** Files the walk yielded. */
  files: number;
  /** Files (re)parsed and written this run. */
  indexed: number;
  /** Files found up to date (same size + mtime, or same content). */
  unchanged: number;
  /** Every file of the folder that is skipped (empty, binary, too large, duplicate link), unchanged ones included. */
  skipped: FileProblem[];
  /** Every file that failed (corrupt, unreadable, walk problems), unchanged ones included. */
  failed: FileProblem[];
  /** Passages of the folder's documents after the run. */
  passages: number;
  /** Passages written this run. */
  passagesWritten: number;
  /** Documents deleted because their file is gone. */
  removed: number;
  /** Documents moved to a new path because their content reappeared there. */
  renamed: number;
  /** KV blocks prefilled this run. */
  kvBlocks: number;
  bytes: number;
  elapsedMs: number;
}

/**
 * Called after a document's passages are committed (new or changed documents, and documents a
 * killed run left 'pending'); returns how many KV blocks it computed. Must be idempotent: passage
 * KV is content-addressed, so it should skip passages whose KV is already stored.
 */
export type AfterDocument = (doc: DocumentRecord, passages: StoredPassage[]) => Promise<number>;

export interface IndexOptions {
  countTokens: CountTokens;
  /** Target passage size in tokens (default 256). */
  passageTokens?: number;
  /** Larger files are skipped unread (default 50 MiB). */
  maxFileBytes?: number;
  /** Wall-clock limit of one file's parse (default 30 s): the parse process is killed past it. */
  parseTimeoutMs?: number;
  /** Pages read from one PDF at most (default: parsers/pdf.ts). */
  maxPdfPages?: number;
  /** The process files are parsed in (default: this process's shared one, with default limits). */
  parser?: ParseProcess;
  walk?: WalkOptions;
  /** Aborting stops between files; indexFolder then rejects with the signal's reason (an AbortError). */
  signal?: AbortSignal;
  onProgress?: (p: IndexProgress) => void;
  afterDocument?: AfterDocument;
  now?: () => number;
}

interface Outcome {
  kind: 'unchanged' | 'indexed' | 'skipped' | 'failed';
  reason?: string;
  passagesWritten: number;
  kvBlocks: number;
  renamed: boolean;
}

const sha256 = (bytes: Uint8Array) => createHash('sha256').update(bytes).digest('hex');

/** Indexes one folder (added to the store if new). Throws if the root is not a readable directory. */
export async function indexFolder(db: Db, root: string, options: IndexOptions): Promise<IndexSummary> {
  const started = performance.now();
  const rootPath = path.resolve(root);
  let rootStats;
  try {
    rootStats = await stat(rootPath);
  } catch (error) {
    throw new Error(`${rootPath}: cannot read (${errorCode(error)})`, { cause: error });
  }
  if (!rootStats.isDirectory()) throw new Error(`${rootPath}: not a directory`);
  const folder = addFolder(db, rootPath);
  const indexer = new FolderIndexer(db, folder.id, rootPath, options);
  try {
    return await indexer.run(started);
  } catch (error) {
    if (options.signal?.aborted) indexer.cancelled();
    throw error;
  }
}

class FolderIndexer {
  private readonly progress: IndexProgress;
  private readonly now: () => number;
  private readonly summary: IndexSummary;
  /** Documents of this folder whose path the walk did not yield, by content hash: rename sources. */
  private readonly vanishedByHash = new Map<string, DocumentRecord[]>();
  private readonly movedIds = new Set<number>();
  private indexingStarted = 0;

  constructor(
    private readonly db: Db,
    private readonly folderId: number,
    private readonly root: string,
    private readonly options: IndexOptions,
  ) {
    this.now = options.now ?? Date.now;
    this.progress = {
      folderId,
      root,
      phase: 'scanning',
      filesFound: 0,
      filesDone: 0,
      filesIndexed: 0,
      filesUnchanged: 0,
      filesSkipped: 0,
      filesFailed: 0,
      passages: 0,
      kvBlocks: 0,
      bytesDone: 0,
      bytesTotal: 0,
    };
    this.summary = {
      folderId,
      root,
      files: 0,
      indexed: 0,
      unchanged: 0,
      skipped: [],
      failed: [],
      passages: 0,
      passagesWritten: 0,
      removed: 0,
      renamed: 0,
      kvBlocks: 0,
      bytes: 0,
      elapsedMs: 0,
    };
  }

  private emit(extra: Partial<IndexProgress> = {}): void {
    Object.assign(this.progress, extra);
    const p = this.progress;
    if (p.phase === 'indexing' && p.bytesDone > 0 && p.bytesTotal > p.bytesDone) {
      const elapsed = performance.now() - this.indexingStarted;
      p.etaMs = Math.round((elapsed * (p.bytesTotal - p.bytesDone)) / p.bytesDone);
    } else if (p.phase !== 'indexing' || p.bytesTotal <= p.bytesDone) {
      p.etaMs = p.phase === 'scanning' ? undefined : 0;
    }
    this.options.onProgress?.({ ...p });
  }

  /** Reports the cancellation (once), whatever was running when the signal fired. */
  cancelled(): void {
    if (this.progress.phase !== 'cancelled') this.emit({ phase: 'cancelled', currentPath: undefined });
  }

  private checkAborted(): void {
    const signal = this.options.signal;
    if (signal?.aborted) {
      this.cancelled();
      signal.throwIfAborted();
    }
  }

  async run(started: number): Promise<IndexSummary> {
    const { db, folderId } = this;
    const existing = new Map(listDocuments(db, { folderId }).map((d) => [d.path, d]));

    // Scanning: the walk is cheap next to parsing, and knowing every path first lets renames be
    // told from copies, and the bytes to do give an ETA.
    this.emit();
    const files: WalkedFile[] = [];
    const unreadableDirectories: string[] = [];
    for await (const entry of walkFolder(this.root, this.options.walk)) {
      this.checkAborted();
      if (entry.kind === 'problem') {
        const isDuplicate = entry.reason.startsWith('duplicate');
        (isDuplicate ? this.summary.skipped : this.summary.failed).push({ path: entry.path, reason: entry.reason });
        if (isDuplicate) this.progress.filesSkipped++;
        else this.progress.filesFailed++;
        if (entry.reason.startsWith('unreadable directory')) unreadableDirectories.push(entry.path);
        continue;
      }
      files.push(entry);
      const known = existing.get(entry.path);
      if (!known || needsCheck(known, entry)) this.progress.bytesTotal += entry.size;
      this.progress.filesFound++;
      if (this.progress.filesFound % 256 === 0) this.emit();
    }
    this.summary.files = files.length;

    const seen = new Set(files.map((f) => f.path));
    for (const doc of existing.values()) {
      if (seen.has(doc.path) || !doc.contentHash) continue;
      const list = this.vanishedByHash.get(doc.contentHash) ?? [];
      list.push(doc);
      this.vanishedByHash.set(doc.contentHash, list);
    }

    this.indexingStarted = performance.now();
    this.emit({ phase: 'indexing' });
    for (const file of files) {
      this.checkAborted();
      this.emit({ currentPath: file.path });
      const known = existing.get(file.path);
      const outcome = await this.indexFile(file, known);
      if (!known || needsCheck(known, file)) this.progress.bytesDone += file.size;
      this.record(file.path, outcome);
      this.emit();
    }

    // Only a complete walk may delete: files not seen are gone (or now ignored). Documents under a
    // directory that could not be read are kept, since a transient error must not wipe them.
    this.checkAborted();
    const under = (p: string, dir: string) => p.startsWith(dir.endsWith(path.sep) ? dir : dir + path.sep);
    const removeVanished = db.transaction(() => {
      for (const doc of existing.values()) {
        if (seen.has(doc.path) || this.movedIds.has(doc.id)) continue;
        if (unreadableDirectories.some((dir) => under(doc.path, dir))) continue;
        if (deleteDocument(db, doc.id)) this.summary.removed++;
      }
    });
    removeVanished.immediate();

    this.summary.passages = countFolderPassages(db, folderId);
    this.summary.passagesWritten = this.progress.passages;
    this.summary.kvBlocks = this.progress.kvBlocks;
    this.summary.bytes = this.progress.bytesDone;
    this.summary.elapsedMs = Math.round(performance.now() - started);
    this.emit({ phase: 'done', currentPath: undefined });
    return this.summary;
  }

  private record(filePath: string, outcome: Outcome): void {
    const p = this.progress;
    p.filesDone++;
    p.passages += outcome.passagesWritten;
    p.kvBlocks += outcome.kvBlocks;
    if (outcome.renamed) this.summary.renamed++;
    switch (outcome.kind) {
      case 'indexed':
        p.filesIndexed++;
        this.summary.indexed++;
        break;
      case 'unchanged':
        p.filesUnchanged++;
        this.summary.unchanged++;
        break;
      case 'skipped':
        p.filesSkipped++;
        this.summary.skipped.push({ path: filePath, reason: outcome.reason ?? 'skipped' });
        break;
      case 'failed':
        p.filesFailed++;
        this.summary.failed.push({ path: filePath, reason: outcome.reason ?? 'failed' });
        break;
    }
  }

  private async indexFile(file: WalkedFile, known: DocumentRecord | undefined): Promise<Outcome> {
    const { db } = this;
    const outcome = (kind: Outcome['kind'], reason?: string, extra: Partial<Outcome> = {}): Outcome => ({
      kind,
      reason,
      passagesWritten: 0,
      kvBlocks: 0,
      renamed: false,
      ...extra,
    });

    if (known?.status === 'pending' && !statChanged(known, file)) return this.finishPending(known);
    if (known && !needsCheck(known, file)) {
      if (known.status === 'indexed') return outcome('unchanged');
      // Still failed or skipped: reported again, not re-read (it has not changed).
      return outcome(known.status === 'failed' ? 'failed' : 'skipped', known.error ?? known.status);
    }

    const maxBytes = this.options.maxFileBytes ?? DEFAULT_MAX_FILE_BYTES;
    let bytes: Uint8Array | undefined;
    let result: ParseResult;
    if (file.size > maxBytes) {
      result = { ok: false, status: 'skipped', reason: tooLarge(file.size, maxBytes) }; // unread
    } else {
      const read = await readBounded(file.fsPath ?? file.path, maxBytes);
      if ('reason' in read) result = { ok: false, status: read.status, reason: read.reason };
      else {
        bytes = read.bytes;
        result = { ok: false, status: 'failed', reason: 'not parsed' }; // replaced below
      }
    }

    const hash = bytes ? sha256(bytes) : null;
    if (known && hash && known.contentHash === hash && known.status !== 'pending') {
      // Touched, not changed: only the stat fields move.
      setDocumentStat(db, known.id, file.size, file.mtimeMs);
      if (known.status === 'indexed') return outcome('unchanged');
      return outcome(known.status === 'failed' ? 'failed' : 'skipped', known.error ?? known.status);
    }

    // Same content as a document whose file vanished: a rename. Its record (and passage ids,
    // when the passages come out the same) moves here.
    let source: DocumentRecord | undefined;
    if (hash && (!known || known.contentHash !== hash)) {
      const candidates = this.vanishedByHash.get(hash);
      source = candidates?.find((d) => !this.movedIds.has(d.id));
      if (source) this.movedIds.add(source.id);
    }

    // In the parse process: a file that hangs or exhausts memory fails alone, with the reason.
    if (bytes) {
      result = await (this.options.parser ?? sharedParseProcess()).parse(bytes, path.basename(file.path), {
        maxBytes,
        maxPdfPages: this.options.maxPdfPages,
        timeoutMs: this.options.parseTimeoutMs ?? DEFAULT_PARSE_TIMEOUT_MS,
      });
    }
    const passages: Passage[] = result.ok ? cutPassages(result.doc, this.options.countTokens, this.options.passageTokens ?? DEFAULT_TARGET_TOKENS) : [];
    const hook = this.options.afterDocument;
    const status: DocumentStatus = result.ok ? (hook ? 'pending' : 'indexed') : result.status;
    const now = this.now();

    let passagesWritten = 0;
    const doc = db.transaction(() => {
      if (source) {
        if (known && known.id !== source.id) deleteDocument(db, known.id);
        moveDocument(db, source.id, file.path);
      }
      const row = upsertDocument(db, {
        folderId: this.folderId,
        path: file.path,
        size: file.size,
        mtimeMs: file.mtimeMs,
        contentHash: hash,
        title: result.ok ? result.doc.title : null,
        parser: result.ok ? result.doc.parser : null,
        status,
        // an indexed document's note says what part of it was left out (a PDF's page limit)
        error: result.ok ? (result.doc.note ?? null) : result.reason,
        indexedAt: status === 'indexed' ? now : null,
      });
      const old = listPassages(db, row.id);
      if (!samePassages(old, passages)) {
        replacePassages(db, row.id, passages);
        passagesWritten = passages.length;
      }
      return row;
    }).immediate();

    const renamed = source !== undefined;
    if (!result.ok) return outcome(result.status, result.reason, { renamed });
    let kvBlocks = 0;
    if (hook) {
      kvBlocks = await hook(doc, listPassages(db, doc.id));
      setDocumentStatus(db, doc.id, 'indexed', doc.error, this.now());
    }
    return outcome('indexed', undefined, { passagesWritten, kvBlocks, renamed });
  }

  /** A document a killed run committed but whose afterDocument hook did not finish. */
  private async finishPending(doc: DocumentRecord): Promise<Outcome> {
    let kvBlocks = 0;
    if (this.options.afterDocument) kvBlocks = await this.options.afterDocument(doc, listPassages(this.db, doc.id));
    setDocumentStatus(this.db, doc.id, 'indexed', doc.error, this.now());
    return { kind: 'indexed', passagesWritten: 0, kvBlocks, renamed: false };
  }
}

/** Whether the file may have changed since the document was written (or the document is unfinished). */
function needsCheck(doc: DocumentRecord, file: WalkedFile): boolean {
  // A file that could not be read (no hash) is retried: permissions change without touching mtime.
  if (doc.status === 'pending' || (doc.status === 'failed' && doc.contentHash === null)) return true;
  return statChanged(doc, file);
}

function statChanged(doc: DocumentRecord, file: WalkedFile): boolean {
  return doc.size !== file.size || doc.mtimeMs !== Math.round(file.mtimeMs);
}

function samePassages(old: readonly StoredPassage[], next: readonly Passage[]): boolean {
  if (old.length !== next.length) return false;
  return old.every((o, i) => {
    const n = next[i];
    return (
      o.text === n.text &&
      o.title === n.title &&
      o.charStart === n.charStart &&
      o.charEnd === n.charEnd &&
      o.page === (n.page ?? null) &&
      o.tokenCount === n.tokenCount
    );
  });
}

/** Reads a regular file of at most maxBytes; never blocks on a FIFO swapped in since the walk. */
async function readBounded(
  filePath: string | Buffer,
  maxBytes: number,
): Promise<{ bytes: Uint8Array } | { status: 'failed' | 'skipped'; reason: string }> {
  try {
    const handle = await open(filePath, fsConstants.O_RDONLY | (fsConstants.O_NONBLOCK ?? 0));
    try {
      const stats = await handle.stat();
      if (!stats.isFile()) return { status: 'failed', reason: 'unreadable: not a regular file' };
      if (stats.size > maxBytes) return { status: 'skipped', reason: `too large (grew past the ${maxBytes}-byte cap)` };
      return { bytes: await handle.readFile() };
    } finally {
      await handle.close();
    }
  } catch (error) {
    return { status: 'failed', reason: `unreadable (${errorCode(error)})` };
  }
}
