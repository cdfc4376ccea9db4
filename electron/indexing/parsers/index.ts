// One entry point for every file: read it (bounded by size), pick the parser by extension (or by
// content for unknown extensions), decode text formats, and turn every way a file can go wrong
// into a result for that file alone: nothing here throws. This runs inside the parse process
// (parse-process.ts), which bounds its time and memory: a parser that hangs or exhausts memory is
// killed there, never here.
import { constants as fsConstants } from 'node:fs';
import { open, stat } from 'node:fs/promises';
import path from 'node:path';
import { errorCode } from '../fs-errors.ts';
import { parseDocx } from './docx.ts';
import { gunzipText } from './gzip.ts';
import { declaredHtmlCharset, HTML_EXTENSIONS, parseHtml } from './html.ts';
import { isManPage, parseManPage } from './man-page.ts';
import { parseMarkdown } from './markdown.ts';
import { parsePdf } from './pdf.ts';
import { parsePlainText, PLAIN_TEXT_EXTENSIONS } from './plain-text.ts';
import { parseSourceCode, SOURCE_CODE_EXTENSIONS, SOURCE_CODE_FILE_NAMES } from './source-code.ts';
import { decodeTextBytes } from './text-decoding.ts';
import { formatSize } from './format-size.ts';
import { failed, skipped, type FormatParser, type ParsedDocument, type ParseResult, type ParserName } from './types.ts';

export type { DocumentSection, ParsedDocument, ParseResult, ParserName, TextKind } from './types.ts';

export const DEFAULT_MAX_FILE_BYTES = 50 * 1024 * 1024;

export interface ParseOptions {
  /** Files larger than this are skipped unread. Default 50 MiB. */
  maxBytes?: number;
  /** Pages read from a PDF at most (default DEFAULT_MAX_PDF_PAGES). */
  maxPdfPages?: number;
}

const MARKDOWN_EXTENSIONS: ReadonlySet<string> = new Set(['md', 'markdown', 'mdown', 'mkd', 'mkdn', 'mdx']);

/** Text formats: decoded to a string first (binary content is skipped there), then parsed. */
const TEXT_PARSERS: Record<'markdown' | 'html' | 'code' | 'text', (text: string, fileName: string) => ParsedDocument> = {
  markdown: parseMarkdown,
  html: parseHtml,
  code: parseSourceCode,
  text: parsePlainText,
};
/** Container formats: parsed from bytes. */
const BYTE_PARSERS: Record<'pdf' | 'docx', FormatParser> = { pdf: parsePdf, docx: parseDocx };

/** Reads and parses one file. */
export async function parseFile(filePath: string, options: ParseOptions = {}): Promise<ParseResult> {
  const maxBytes = options.maxBytes ?? DEFAULT_MAX_FILE_BYTES;
  let bytes: Uint8Array;
  try {
    const stats = await stat(filePath);
    if (!stats.isFile()) return failed('unreadable: not a regular file');
    if (stats.size > maxBytes) return skipped(tooLarge(stats.size, maxBytes));
    // O_NONBLOCK: if the path was swapped for a FIFO since the stat, open must not wait for a writer.
    const handle = await open(filePath, fsConstants.O_RDONLY | (fsConstants.O_NONBLOCK ?? 0));
    try {
      const opened = await handle.stat();
      if (!opened.isFile()) return failed('unreadable: not a regular file');
      if (opened.size > maxBytes) return skipped(tooLarge(opened.size, maxBytes));
      bytes = await handle.readFile();
    } finally {
      await handle.close();
    }
  } catch (error) {
    return failed(`unreadable (${errorCode(error)})`);
  }
  if (bytes.length > maxBytes) return skipped(tooLarge(bytes.length, maxBytes)); // grew while read
  return parseBytes(bytes, path.basename(filePath), options);
}

/** Parses a file's bytes; `fileName` picks the format and is the fallback title. */
export async function parseBytes(bytes: Uint8Array, fileName: string, options: ParseOptions = {}): Promise<ParseResult> {
  const maxBytes = options.maxBytes ?? DEFAULT_MAX_FILE_BYTES;
  if (bytes.length > maxBytes) return skipped(tooLarge(bytes.length, maxBytes));
  if (bytes.length === 0) return skipped('empty');
  // gzip-compressed text: parsed as the file it holds (gzip.ts)
  const gunzipped = gunzipText(bytes, fileName, maxBytes);
  if (gunzipped && !gunzipped.ok) return gunzipped.result;
  if (gunzipped) ({ bytes, innerName: fileName } = gunzipped);
  if (bytes.length === 0) return skipped('empty');
  const format = detectFormat(fileName, bytes);
  let result: ParseResult;
  try {
    result = await runParser(format, bytes, fileName, options);
  } catch (error) {
    return failed(`${format} parser error: ${error instanceof Error ? error.message : String(error)}`);
  }
  if (result.ok && result.doc.sections.length === 0) return skipped('empty');
  return result;
}

/** The parser for a file: by extension, else by content (PDF magic, HTML doctype), else plain text. */
export function detectFormat(fileName: string, bytes: Uint8Array): ParserName {
  const lower = fileName.toLowerCase();
  const dot = lower.lastIndexOf('.');
  const extension = dot > 0 ? lower.slice(dot + 1) : '';
  if (extension === 'pdf' || startsWithAscii(bytes, '%PDF-')) return 'pdf';
  if (extension === 'docx') return 'docx';
  if (MARKDOWN_EXTENSIONS.has(extension)) return 'markdown';
  if (HTML_EXTENSIONS.has(extension)) return 'html';
  if (SOURCE_CODE_EXTENSIONS.has(extension) || SOURCE_CODE_FILE_NAMES.has(lower)) return 'code';
  if (PLAIN_TEXT_EXTENSIONS.has(extension)) return 'text';
  const head = Buffer.from(bytes.subarray(0, 512)).toString('latin1').trimStart().toLowerCase();
  if (head.startsWith('<!doctype html') || head.startsWith('<html')) return 'html';
  return 'text';
}

async function runParser(format: ParserName, bytes: Uint8Array, fileName: string, options: ParseOptions): Promise<ParseResult> {
  if (format === 'pdf' || format === 'docx') return BYTE_PARSERS[format]({ bytes, fileName, maxPdfPages: options.maxPdfPages });
  const decoded = decodeTextBytes(bytes, format === 'html' ? declaredHtmlCharset(bytes) : undefined);
  if (decoded.kind === 'binary') return skipped('binary file');
  const doc = format === 'text' && isManPage(fileName, decoded.text) ? parseManPage(decoded.text, fileName) : TEXT_PARSERS[format](decoded.text, fileName);
  doc.encoding = decoded.encoding;
  return { ok: true, doc };
}

function startsWithAscii(bytes: Uint8Array, prefix: string): boolean {
  if (bytes.length < prefix.length) return false;
  for (let i = 0; i < prefix.length; i++) if (bytes[i] !== prefix.charCodeAt(i)) return false;
  return true;
}

/** The reason a file over the size cap is skipped. */
export function tooLarge(size: number, cap: number): string {
  return `too large (${formatSize(size)} > ${formatSize(cap)} cap)`;
}
