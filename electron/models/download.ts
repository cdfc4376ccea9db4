// Downloading a model from the Hugging Face hub (or any server with its URL layout) into a folder:
// sizes and hashes from the listing API ({hubUrl}/api/models/{repo}/tree/{revision}), files from
// {hubUrl}/{repo}/resolve/{revision}/{path}, each written to <file>.part, resumed with a Range
// request after an interruption, verified (size; LFS sha256 or the git blob sha1) and only then
// renamed into place. @huggingface/hub's downloadFile has no resume-to-.part, hence plain fetch.
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import type { CatalogFile, CatalogModel } from './catalog.ts';

export const HUB_URL = 'https://huggingface.co';

export interface HubFileInfo {
  path: string;
  size: number;
  /** LFS files: sha256 of the content. */
  sha256?: string;
  /** Git blob id (sha1 of "blob {size}\0" + content); for LFS files, of the pointer, so unused then. */
  gitOid?: string;
}

export class IntegrityError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'IntegrityError';
  }
}

/** An HTTP status the hub answered with, for a listing or a file (download-errors.ts says it in words). */
export class HubHttpError extends Error {
  constructor(
    readonly status: number,
    readonly what: string,
  ) {
    super(`${what}: HTTP ${status}`);
    this.name = 'HubHttpError';
  }
}

export interface DownloadProgress {
  file: string;
  fileBytes: number;
  fileTotal: number;
  /** All files together. */
  bytes: number;
  total: number;
}

export interface DownloadOptions {
  hubUrl?: string;
  accessToken?: string;
  signal?: AbortSignal;
  onProgress?: (p: DownloadProgress) => void;
}

interface TreeEntry {
  type: string;
  path: string;
  size: number;
  oid?: string;
  lfs?: { oid: string; size: number };
}

function headers(options: DownloadOptions, extra: Record<string, string> = {}): Record<string, string> {
  return { ...(options.accessToken ? { authorization: `Bearer ${options.accessToken}` } : {}), ...extra };
}

/** Every file of a repository at a revision (recursive listing, following pagination links). */
export async function listHubFiles(repo: string, revision: string, options: DownloadOptions = {}): Promise<HubFileInfo[]> {
  const hub = options.hubUrl ?? HUB_URL;
  let url: string | undefined = `${hub}/api/models/${repo}/tree/${encodeURIComponent(revision)}?recursive=true`;
  const out: HubFileInfo[] = [];
  while (url) {
    const res = await fetch(url, { headers: headers(options), signal: options.signal });
    if (!res.ok) throw new HubHttpError(res.status, `listing ${repo}@${revision}`);
    for (const e of (await res.json()) as TreeEntry[]) {
      if (e.type !== 'file') continue;
      out.push({ path: e.path, size: e.lfs?.size ?? e.size, sha256: e.lfs?.oid, gitOid: e.lfs ? undefined : e.oid });
    }
    const next = /<([^>]+)>;\s*rel="next"/.exec(res.headers.get('link') ?? '');
    url = next ? new URL(next[1], hub).toString() : undefined;
  }
  return out;
}

async function hashFile(file: string, info: HubFileInfo): Promise<void> {
  const algorithm = info.sha256 ? 'sha256' : info.gitOid ? 'sha1' : undefined;
  if (!algorithm) return;
  const hash = crypto.createHash(algorithm);
  if (!info.sha256) hash.update(`blob ${info.size}\0`);
  for await (const chunk of fs.createReadStream(file, { highWaterMark: 4 << 20 })) hash.update(chunk as Buffer);
  const got = hash.digest('hex');
  const want = info.sha256 ?? info.gitOid!;
  if (got !== want) throw new IntegrityError(`${info.path}: ${algorithm} ${got} does not match the hub's ${want}`);
}

/**
 * One file into `dest`, through `dest.part`: resumes from the part's length with a Range request
 * (restarts if the server ignores it), verifies size and hash, renames. A corrupt download is
 * deleted and reported (IntegrityError); an interrupted one keeps its part for the next try.
 */
export async function downloadHubFile(
  repo: string,
  revision: string,
  info: HubFileInfo,
  dest: string,
  options: DownloadOptions & { onBytes?: (n: number) => void } = {},
): Promise<void> {
  const hub = options.hubUrl ?? HUB_URL;
  const part = `${dest}.part`;
  fs.mkdirSync(path.dirname(dest), { recursive: true });
  let have = fs.existsSync(part) ? fs.statSync(part).size : 0;
  if (have > info.size) {
    fs.rmSync(part);
    have = 0;
  }
  if (have < info.size || info.size === 0) {
    const url = `${hub}/${repo}/resolve/${encodeURIComponent(revision)}/${info.path.split('/').map(encodeURIComponent).join('/')}`;
    const res = await fetch(url, { headers: headers(options, have > 0 ? { range: `bytes=${have}-` } : {}), signal: options.signal });
    if (res.status !== 200 && res.status !== 206) throw new HubHttpError(res.status, info.path);
    if (res.status === 200) have = 0; // the server sent the whole file
    options.onBytes?.(have);
    const out = fs.createWriteStream(part, { flags: have > 0 ? 'a' : 'w' });
    try {
      for await (const chunk of res.body as unknown as AsyncIterable<Uint8Array>) {
        if (!out.write(chunk)) await new Promise<void>((r) => out.once('drain', () => r()));
        options.onBytes?.(chunk.byteLength);
      }
    } finally {
      await new Promise<void>((resolve, reject) => out.end((e?: Error | null) => (e ? reject(e) : resolve())));
    }
  }
  const size = fs.statSync(part).size;
  try {
    if (size !== info.size) throw new IntegrityError(`${info.path}: got ${size} bytes, the hub lists ${info.size}`);
    await hashFile(part, info);
  } catch (e) {
    if (e instanceof IntegrityError) fs.rmSync(part, { force: true });
    throw e;
  }
  fs.renameSync(part, dest);
}

/**
 * A catalog model into `dir`: files already in place (verified when they were renamed) are kept,
 * parts are resumed; `.complete` marks a finished folder.
 */
export async function downloadModel(model: Pick<CatalogModel, 'repo' | 'revision' | 'files'>, dir: string, options: DownloadOptions = {}): Promise<string> {
  const listing = new Map((await listHubFiles(model.repo, model.revision, options)).map((f) => [f.path, f]));
  const wanted: { file: CatalogFile; info: HubFileInfo }[] = [];
  for (const file of model.files) {
    const info = listing.get(file.remote);
    if (!info) {
      if (file.optional) continue;
      throw new Error(`${model.repo}@${model.revision} has no ${file.remote}`);
    }
    wanted.push({ file, info });
  }
  const total = wanted.reduce((s, w) => s + w.info.size, 0);
  let bytes = 0;
  for (const { file, info } of wanted) {
    options.signal?.throwIfAborted();
    const dest = path.join(dir, file.local ?? file.remote);
    if (fs.existsSync(dest) && fs.statSync(dest).size === info.size) {
      bytes += info.size;
      options.onProgress?.({ file: file.remote, fileBytes: info.size, fileTotal: info.size, bytes, total });
      continue;
    }
    let fileBytes = 0;
    await downloadHubFile(model.repo, model.revision, info, dest, {
      ...options,
      onBytes: (n) => {
        fileBytes += n;
        bytes += n;
        options.onProgress?.({ file: file.remote, fileBytes, fileTotal: info.size, bytes, total });
      },
    });
  }
  fs.writeFileSync(path.join(dir, '.complete'), JSON.stringify({ repo: model.repo, revision: model.revision, at: new Date().toISOString() }));
  return dir;
}
