// Building sections from ranges of a document's full text, so every parser keeps the invariant
// `doc.text.slice(s.charStart, s.charStart + s.text.length) === s.text`.
import type { DocumentSection } from './types.ts';

/** Separator between heading levels in a section title ("Install › Linux"). */
export const TITLE_PATH_SEPARATOR = ' › ';

/** The section covering text[start, end) without its surrounding whitespace; undefined if blank. */
export function sectionOf(
  text: string,
  start: number,
  end: number,
  fields: { title?: string; page?: number } = {},
): DocumentSection | undefined {
  while (start < end && isSpace(text.charCodeAt(start))) start++;
  while (end > start && isSpace(text.charCodeAt(end - 1))) end--;
  if (start === end) return undefined;
  const section: DocumentSection = { charStart: start, text: text.slice(start, end) };
  if (fields.title) section.title = fields.title;
  if (fields.page !== undefined) section.page = fields.page;
  return section;
}

/** Headings as a stack: a new heading of level L replaces every open heading of level >= L. */
export class HeadingPath {
  private readonly open: { level: number; title: string }[] = [];

  /** @param omitTitle the document title's own heading, left out of section titles (it is in every block already). */
  constructor(private readonly omitTitle?: string) {}

  enter(level: number, title: string): void {
    while (this.open.length > 0 && this.open[this.open.length - 1].level >= level) this.open.pop();
    this.open.push({ level, title });
  }

  /** The current path, or undefined at the top of the document. */
  current(): string | undefined {
    const parts = this.open.map((h) => h.title);
    if (parts.length > 0 && this.open[0].level === 1 && parts[0] === this.omitTitle) parts.shift();
    return parts.length > 0 ? parts.join(TITLE_PATH_SEPARATOR) : undefined;
  }
}

/** Unicode whitespace as JavaScript's \s sees it (one UTF-16 unit at a time). */
export function isSpace(code: number): boolean {
  return (
    code === 0x20 ||
    (code >= 0x09 && code <= 0x0d) ||
    code === 0xa0 ||
    code === 0x1680 ||
    (code >= 0x2000 && code <= 0x200a) ||
    code === 0x2028 ||
    code === 0x2029 ||
    code === 0x202f ||
    code === 0x205f ||
    code === 0x3000 ||
    code === 0xfeff
  );
}
