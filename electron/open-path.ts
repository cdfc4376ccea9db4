// Which files the window may have the operating system open (host.openPath). The renderer is
// untrusted: opening a path with the OS runs whatever program is registered for it, and opening a
// program runs it. So only a document of the library is opened: a path the index lists as a
// document of a library folder, whose real path (symlinks resolved) is inside that folder, whose
// type is on the document allow-list, whose content matches its type where that is cheap to check,
// and which is not executable (exec bit, program extension, program or script content). A library
// file that fails only the type checks is shown in the file manager instead; anything else is
// refused. Plain Node, so it is tested without Electron (test/electron-security.test.ts).
import { constants as fsConstants } from 'node:fs';
import { open, realpath, stat } from 'node:fs/promises';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import type { RequestArgs, RequestName, RequestResults } from './contract/types.ts';
import { looksBinary } from './indexing/parsers/binary-content.ts';

/** The part of Electron's `shell` this uses (a fake in tests). */
export interface OpenShell {
  openPath(path: string): Promise<string>;
  openExternal(url: string): Promise<void>;
  showItemInFolder(path: string): void;
}

/** What the library says about a path (answered by the engine). */
export interface LibraryLookup {
  folders(): Promise<{ id: number; path: string }[]>;
  /** Whether `documentPath` is a document row of the folder. */
  hasDocument(folderId: number, documentPath: string): Promise<boolean>;
}

export type OpenDecision =
  | { action: 'open'; path: string; page?: number }
  | { action: 'reveal'; path: string; reason: string }
  | { action: 'refuse'; reason: string };

/** Document types the OS may open, with what their first bytes must be (null: text, not binary). */
const DOCUMENT_TYPES: Record<string, { label: string; magic: readonly number[][] | null }> = {
  pdf: { label: 'PDF', magic: [[0x25, 0x50, 0x44, 0x46, 0x2d]] }, // %PDF- (searched in the first KB, as readers do)
  docx: { label: 'Word', magic: [[0x50, 0x4b, 0x03, 0x04]] }, // a ZIP
  odt: { label: 'OpenDocument', magic: [[0x50, 0x4b, 0x03, 0x04]] },
  epub: { label: 'EPUB', magic: [[0x50, 0x4b, 0x03, 0x04]] },
  doc: { label: 'Word 97', magic: [[0xd0, 0xcf, 0x11, 0xe0, 0xa1, 0xb1, 0x1a, 0xe1]] },
  rtf: { label: 'RTF', magic: [[0x7b, 0x5c, 0x72, 0x74, 0x66]] }, // {\rtf
  ...Object.fromEntries(
    ['txt', 'text', 'md', 'markdown', 'mdown', 'mkd', 'mkdn', 'rst', 'adoc', 'asciidoc', 'org', 'tex', 'csv', 'tsv', 'log', 'html', 'htm', 'xhtml'].map(
      (ext) => [ext, { label: 'text', magic: null }],
    ),
  ),
};

/** Never opened, whatever their content: what Windows, macOS or a desktop would run. */
const PROGRAM_EXTENSIONS = new Set([
  'exe', 'com', 'bat', 'cmd', 'ps1', 'psm1', 'vbs', 'vbe', 'js', 'jse', 'mjs', 'cjs', 'wsf', 'wsh', 'hta', 'msi', 'msp', 'scr',
  'pif', 'cpl', 'lnk', 'url', 'reg', 'jar', 'app', 'command', 'tool', 'workflow', 'sh', 'bash', 'zsh', 'csh', 'fish', 'py',
  'pl', 'rb', 'php', 'desktop', 'appimage', 'run', 'bin', 'elf', 'so', 'dylib', 'dll', 'deb', 'rpm', 'pkg', 'dmg',
]);

/** First bytes of programs: ELF, PE (MZ), Mach-O (both byte orders, 32/64 bit, fat), scripts (#!). */
const PROGRAM_MAGIC: readonly number[][] = [
  [0x7f, 0x45, 0x4c, 0x46],
  [0x4d, 0x5a],
  [0xfe, 0xed, 0xfa, 0xce],
  [0xfe, 0xed, 0xfa, 0xcf],
  [0xce, 0xfa, 0xed, 0xfe],
  [0xcf, 0xfa, 0xed, 0xfe],
  [0xca, 0xfe, 0xba, 0xbe],
  [0x23, 0x21],
];

const HEAD_BYTES = 8192;

/** Decides what host.openPath does with `requested` (never throws). */
export async function decideOpen(requested: string, library: LibraryLookup, page?: number): Promise<OpenDecision> {
  if (!path.isAbsolute(requested)) return refuse('not an absolute path');
  const listed = path.resolve(requested);
  const folders = (await library.folders()).filter((f) => isInside(listed, path.resolve(f.path)));
  let folder: { id: number; path: string } | undefined;
  for (const f of folders) if (await library.hasDocument(f.id, listed)) folder = f;
  if (!folder) return refuse('only documents of your library can be opened');

  let real: string;
  let realFolder: string;
  try {
    real = await realpath(listed);
    realFolder = await realpath(folder.path);
  } catch (error) {
    return refuse(`cannot open it (${(error as NodeJS.ErrnoException).code ?? 'unreadable'})`);
  }
  if (!isInside(real, realFolder)) return refuse('it is a link to a file outside its library folder');
  const stats = await stat(real).catch(() => null);
  if (!stats?.isFile()) return refuse('not a regular file');

  const reveal = (reason: string): OpenDecision => ({ action: 'reveal', path: real, reason });
  const extensions = [extensionOf(listed), extensionOf(real)];
  if (extensions.some((e) => PROGRAM_EXTENSIONS.has(e))) return reveal('it is a program');
  if (process.platform !== 'win32' && (stats.mode & 0o111) !== 0) return reveal('it is executable');
  const type = DOCUMENT_TYPES[extensions[1]];
  if (!type || !DOCUMENT_TYPES[extensions[0]]) return reveal('only documents are opened');

  const head = await readHead(real);
  if (head === null) return refuse('cannot read it');
  if (PROGRAM_MAGIC.some((m) => startsWith(head, m))) return reveal('its content is a program');
  if (type.magic ? !type.magic.some((m) => (extensions[1] === 'pdf' ? indexOf(head.subarray(0, 1024), m) >= 0 : startsWith(head, m))) : looksBinary(head)) {
    return reveal(`its content is not a ${type.label} document`);
  }
  return { action: 'open', path: real, page: extensions[1] === 'pdf' ? page : undefined };
}

/** The host.openPath handler: the decision, carried out through `shell`. */
export function createOpenPathHandler({ shell, library }: { shell: OpenShell; library: LibraryLookup }) {
  return async ({ path: requested, page }: RequestArgs<'host.openPath'>): Promise<RequestResults['host.openPath']> => {
    const decision = await decideOpen(requested, library, page);
    if (decision.action === 'refuse') return { opened: false, reason: decision.reason };
    if (decision.action === 'reveal') {
      shell.showItemInFolder(decision.path);
      return { opened: false, reason: `${decision.reason}: shown in its folder instead` };
    }
    if (decision.page) {
      await shell.openExternal(`${pathToFileURL(decision.path).href}#page=${decision.page}`);
      return { opened: true };
    }
    const error = await shell.openPath(decision.path);
    return error ? { opened: false, reason: error } : { opened: true };
  };
}

/** The library as the engine knows it (its folders, and each folder's documents). */
export function engineLibrary(engine: () => { request<N extends RequestName>(name: N, args: RequestArgs<N>): Promise<RequestResults[N]> }): LibraryLookup {
  return {
    folders: () => engine().request('folders.list', {}),
    async hasDocument(folderId, documentPath) {
      const files = await engine().request('folders.files', { folderId });
      return files.some((f) => f.path === documentPath);
    },
  };
}

function refuse(reason: string): OpenDecision {
  return { action: 'refuse', reason };
}

function isInside(child: string, folder: string): boolean {
  return child.startsWith(folder.endsWith(path.sep) ? folder : folder + path.sep);
}

function extensionOf(file: string): string {
  return path.extname(file).slice(1).toLowerCase();
}

async function readHead(file: string): Promise<Uint8Array | null> {
  try {
    // O_NONBLOCK: a FIFO swapped in since the stat must not hang the main process
    const handle = await open(file, fsConstants.O_RDONLY | (fsConstants.O_NONBLOCK ?? 0));
    try {
      const buffer = Buffer.alloc(HEAD_BYTES);
      const { bytesRead } = await handle.read(buffer, 0, HEAD_BYTES, 0);
      return buffer.subarray(0, bytesRead);
    } finally {
      await handle.close();
    }
  } catch {
    return null;
  }
}

function startsWith(bytes: Uint8Array, magic: readonly number[]): boolean {
  return magic.every((b, i) => bytes[i] === b);
}

function indexOf(bytes: Uint8Array, magic: readonly number[]): number {
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).indexOf(Buffer.from(magic));
}
