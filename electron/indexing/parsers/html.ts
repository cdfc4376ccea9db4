// HTML: the visible text laid out as a browser would break it into blocks, split into sections at
// h1-h6. Scripts, styles, navigation and hidden elements are left out. DOCX reuses this through
// mammoth's HTML output.
import { Parser } from 'htmlparser2';
import { HeadingPath, sectionOf } from './sections.ts';
import type { DocumentSection, ParsedDocument, ParserName } from './types.ts';

export const HTML_EXTENSIONS: ReadonlySet<string> = new Set(['html', 'htm', 'xhtml', 'shtml']);

/** Elements whose content is never visible text (or is chrome rather than content). */
const SKIPPED_ELEMENTS = new Set([
  'script', 'style', 'noscript', 'template', 'svg', 'math', 'canvas', 'iframe', 'object', 'embed',
  'nav', 'select', 'button', 'datalist', 'head',
]);
const PARAGRAPH_BREAK_ELEMENTS = new Set([
  'p', 'ul', 'ol', 'dl', 'table', 'blockquote', 'pre', 'section', 'article', 'header', 'footer', 'main',
  'aside', 'figure', 'hr', 'form', 'fieldset', 'address', 'details', 'h1', 'h2', 'h3', 'h4', 'h5', 'h6',
]);
const LINE_BREAK_ELEMENTS = new Set(['br', 'li', 'tr', 'div', 'dt', 'dd', 'caption', 'figcaption', 'summary', 'legend']);
const CELL_ELEMENTS = new Set(['td', 'th']);

export function parseHtml(html: string, fileName: string): ParsedDocument {
  return htmlToDocument(html, fileName, 'html');
}

/** The charset an HTML file declares in its first KB (`<meta charset>` or http-equiv), if any. */
export function declaredHtmlCharset(bytes: Uint8Array): string | undefined {
  const head = Buffer.from(bytes.subarray(0, 1024)).toString('latin1');
  return /<meta[^>]+charset\s*=\s*["']?\s*([\w.:-]+)/i.exec(head)?.[1];
}

interface HtmlHeading {
  level: number;
  title: string;
  start: number;
  bodyStart: number;
}

export function htmlToDocument(html: string, fallbackTitle: string, parser: ParserName): ParsedDocument {
  const out = new VisibleTextWriter();
  const headings: HtmlHeading[] = [];
  /** Depth inside the outermost skipped element (0: text is visible). Open/close events are balanced. */
  let skipDepth = 0;
  let preDepth = 0;
  let titleText: string | undefined;
  let inTitle = false;
  /** Inside <svg>/<math>, whose <title> elements are tooltips, not the page title. */
  let foreignDepth = 0;
  let heading: { level: number; text: string; start?: number } | undefined;

  const htmlParser = new Parser(
    {
      onopentag(name, attribs) {
        if (name === 'svg' || name === 'math') foreignDepth++;
        // The first <title> names the page; it sits in <head>, which is skipped as text.
        if (name === 'title' && foreignDepth === 0 && titleText === undefined) inTitle = true;
        if (skipDepth > 0 || isHidden(name, attribs)) skipDepth++;
        if (skipDepth > 0) return;
        if (name === 'pre') preDepth++;
        if (CELL_ELEMENTS.has(name)) out.space();
        breakFor(name);
        const level = headingLevel(name);
        if (level && !heading) heading = { level, text: '' };
      },
      ontext(data) {
        if (inTitle) titleText = (titleText ?? '') + data;
        if (skipDepth > 0) return;
        const at = out.write(data, preDepth > 0);
        if (heading) {
          heading.text += data;
          if (heading.start === undefined && at !== undefined) heading.start = at;
        }
      },
      onclosetag(name) {
        if (name === 'title') inTitle = false;
        if (name === 'svg' || name === 'math') foreignDepth--;
        if (skipDepth > 0) {
          skipDepth--;
          return;
        }
        if (name === 'pre') preDepth--;
        const level = headingLevel(name);
        if (level && heading && heading.level === level) {
          const title = collapse(heading.text);
          if (title) headings.push({ level, title, start: heading.start ?? out.length, bodyStart: out.length });
          heading = undefined;
        }
        breakFor(name);
      },
    },
    { decodeEntities: true, lowerCaseTags: true, lowerCaseAttributeNames: true },
  );
  htmlParser.end(html);

  function breakFor(name: string): void {
    if (PARAGRAPH_BREAK_ELEMENTS.has(name)) out.lineBreak(2);
    else if (LINE_BREAK_ELEMENTS.has(name)) out.lineBreak(1);
  }

  const text = out.toString();
  const title = collapse(titleText ?? '') || headings.find((h) => h.level === 1)?.title || fallbackTitle;
  const sections: DocumentSection[] = [];
  const path = new HeadingPath(title);
  let bodyStart = 0;
  for (const h of headings) {
    const section = sectionOf(text, bodyStart, h.start, { title: path.current() });
    if (section) sections.push(section);
    path.enter(h.level, h.title);
    bodyStart = h.bodyStart;
  }
  const last = sectionOf(text, bodyStart, text.length, { title: path.current() });
  if (last) sections.push(last);
  return { title, parser, textKind: 'prose', text, sections };
}

function headingLevel(name: string): number | undefined {
  return /^h[1-6]$/.test(name) ? Number(name[1]) : undefined;
}

function isHidden(name: string, attribs: Record<string, string>): boolean {
  if (SKIPPED_ELEMENTS.has(name)) return true;
  if ('hidden' in attribs || attribs['aria-hidden'] === 'true' || attribs.role === 'navigation') return true;
  const style = attribs.style?.replace(/\s+/g, '').toLowerCase() ?? '';
  return style.includes('display:none') || style.includes('visibility:hidden');
}

function collapse(text: string): string {
  return text.replace(/\s+/g, ' ').trim();
}

/**
 * Accumulates visible text with browser-like whitespace: runs of whitespace collapse to one space,
 * block boundaries become one or two newlines, and nothing dangles at the start or end.
 */
class VisibleTextWriter {
  private readonly parts: string[] = [];
  length = 0;
  private pendingBreak = 0;
  private pendingSpace = false;

  lineBreak(newlines: 1 | 2): void {
    this.pendingBreak = Math.max(this.pendingBreak, newlines);
  }

  space(): void {
    this.pendingSpace = true;
  }

  /** Appends text; returns the offset of its first visible character (undefined if all whitespace). */
  write(data: string, preformatted: boolean): number | undefined {
    if (preformatted) return this.append(data);
    const collapsed = data.replace(/\s+/g, ' ');
    const body = collapsed.trim();
    if (collapsed.startsWith(' ')) this.pendingSpace = true;
    const at = body ? this.append(body) : undefined;
    if (body && collapsed.endsWith(' ')) this.pendingSpace = true;
    return at;
  }

  toString(): string {
    return this.parts.join('');
  }

  private append(content: string): number | undefined {
    if (content === '') return undefined;
    if (this.length > 0) {
      if (this.pendingBreak > 0) this.push('\n'.repeat(this.pendingBreak));
      else if (this.pendingSpace) this.push(' ');
    }
    this.pendingBreak = 0;
    this.pendingSpace = false;
    const at = this.length;
    this.push(content);
    return at;
  }

  private push(s: string): void {
    this.parts.push(s);
    this.length += s.length;
  }
}
