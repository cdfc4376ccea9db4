// Gzip-compressed text (most of /usr/share/doc, every man page): a file named *.gz whose bytes start
// with gzip's magic is decompressed, within a cap on the decompressed size (a small file can expand
// to gigabytes), and parsed as the file it holds (README.gz as text, ls.1.gz as a man page, notes.md.gz
// as Markdown). Archives (.tar.gz, .tgz) are not text and stay binary.
import { gunzipSync } from 'node:zlib';
import { failed, skipped, type ParseResult } from './types.ts';

export type Gunzipped = { ok: true; bytes: Uint8Array; innerName: string } | { ok: false; result: ParseResult };

function isGzip(bytes: Uint8Array, fileName: string): boolean {
  const lower = fileName.toLowerCase();
  return lower.endsWith('.gz') && !lower.endsWith('.tar.gz') && bytes.length >= 2 && bytes[0] === 0x1f && bytes[1] === 0x8b;
}

/** The file's content and the name it had before compression; null when it is not gzip text. */
export function gunzipText(bytes: Uint8Array, fileName: string, maxBytes: number): Gunzipped | null {
  if (!isGzip(bytes, fileName)) return null;
  try {
    const inner = gunzipSync(bytes, { maxOutputLength: maxBytes });
    return { ok: true, bytes: new Uint8Array(inner.buffer, inner.byteOffset, inner.byteLength), innerName: fileName.slice(0, -3) };
  } catch (error) {
    if ((error as { code?: string }).code === 'ERR_BUFFER_TOO_LARGE') {
      return { ok: false, result: skipped(`too large when decompressed (over the ${Math.round(maxBytes / (1024 * 1024))} MB cap)`) };
    }
    return { ok: false, result: failed(`corrupt gzip (${(error as Error).message})`) };
  }
}
