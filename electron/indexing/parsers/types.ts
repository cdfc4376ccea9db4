// The shapes every parser produces and the dispatcher returns. Kept free of any parser library so
// that db/ and the passage cutter can import them without pulling in pdfjs or mammoth.

export type ParserName = 'markdown' | 'text' | 'html' | 'pdf' | 'docx' | 'code';

/**
 * How the text is laid out, which decides where passages may be cut:
 * - prose: paragraphs, then sentences, then lines;
 * - lines: code, config, data and logs: blank lines, then lines (no sentence splitting, because
 *   `a ? b : c` or `x.y` would look like sentence ends).
 */
export type TextKind = 'prose' | 'lines';

/** A run of the document's text under one heading (and on one page, for PDFs). */
export interface DocumentSection {
  /** Heading path such as "Install › Linux"; absent for text before the first heading. */
  title?: string;
  /** 1-based page number, for paged formats (PDF). */
  page?: number;
  /** Offset of `text` in `ParsedDocument.text`. */
  charStart: number;
  /** Exactly `doc.text.slice(charStart, charStart + text.length)`. */
  text: string;
}

export interface ParsedDocument {
  /** First H1 (Markdown, HTML, DOCX), <title>, PDF metadata title, else the file name. */
  title: string;
  parser: ParserName;
  textKind: TextKind;
  /**
   * The document's full text. For text formats it is the decoded file (BOM removed, line endings
   * kept), so offsets also point into the file; for PDF/HTML/DOCX it is the extracted text.
   * Section and passage character ranges index into this string (UTF-16 code units).
   */
  text: string;
  /** In document order, non-overlapping. Headings themselves are in `text` but in no section. */
  sections: DocumentSection[];
  /** Character encoding the bytes were decoded from (text formats only). */
  encoding?: string;
  /** Number of pages (PDF only), including pages without text. */
  pageCount?: number;
  /** Set when only part of the document was indexed, saying which part and why. */
  note?: string;
}

/**
 * skipped: not indexable by policy (binary, too large, empty);
 * failed: should have been indexable but could not be read or parsed (corrupt, unreadable,
 * past the parse process's time or memory limit, a decompression bomb, scanned PDF without a
 * text layer).
 */
export type ParseResult =
  | { ok: true; doc: ParsedDocument }
  | { ok: false; status: 'skipped' | 'failed'; reason: string };

/** What a format parser receives; the dispatcher has already read, size-checked and sniffed the bytes. */
export interface ParserInput {
  bytes: Uint8Array;
  /** Base name, used as the fallback title. */
  fileName: string;
  /** Pages read from a PDF at most (pdf.ts: DEFAULT_MAX_PDF_PAGES). */
  maxPdfPages?: number;
}

/** A format parser: returns a document, or a failure it recognised (throws on anything else). */
export type FormatParser = (input: ParserInput) => Promise<ParseResult>;

export function parsed(doc: ParsedDocument): ParseResult {
  return { ok: true, doc };
}

export function skipped(reason: string): ParseResult {
  return { ok: false, status: 'skipped', reason };
}

export function failed(reason: string): ParseResult {
  return { ok: false, status: 'failed', reason };
}
