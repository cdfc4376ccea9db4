// Markdown: headings (ATX `#` and setext underlines, not inside code fences) split the text into
// sections titled by their heading path; the first H1 (or front-matter `title:`) names the document.
import { HeadingPath, sectionOf } from './sections.ts';
import type { DocumentSection, ParsedDocument } from './types.ts';

interface Line {
  start: number;
  /** Offset just past the line's newline (or the end of the text). */
  next: number;
  content: string;
}

interface Heading {
  level: number;
  title: string;
  /** Where the heading's first line starts and where the text after it starts. */
  start: number;
  bodyStart: number;
}

const ATX_HEADING = /^ {0,3}(#{1,6})(?:[ \t]+(.*?))?(?:[ \t]+#+)?[ \t]*$/;
const SETEXT_UNDERLINE = /^ {0,3}(=+|-+)[ \t]*$/;
const FENCE = /^ {0,3}(`{3,}|~{3,})/;

export function parseMarkdown(text: string, fileName: string): ParsedDocument {
  const frontMatter = readFrontMatter(text);
  const lines = splitLines(text, frontMatter.end);
  const headings = findHeadings(lines);
  const title = frontMatter.title ?? headings.find((h) => h.level === 1)?.title ?? fileName;

  const sections: DocumentSection[] = [];
  const path = new HeadingPath(title);
  let bodyStart = frontMatter.end;
  for (const heading of headings) {
    pushSection(sections, sectionOf(text, bodyStart, heading.start, { title: path.current() }));
    path.enter(heading.level, heading.title);
    bodyStart = heading.bodyStart;
  }
  pushSection(sections, sectionOf(text, bodyStart, text.length, { title: path.current() }));
  return { title, parser: 'markdown', textKind: 'prose', text, sections };
}

function pushSection(sections: DocumentSection[], section: DocumentSection | undefined): void {
  if (section) sections.push(section);
}

function findHeadings(lines: Line[]): Heading[] {
  const headings: Heading[] = [];
  let fence: string | undefined;
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i];
    const fenceMatch = FENCE.exec(line.content);
    if (fence) {
      // A fence closes with the same character, at least as long, and nothing else on the line.
      if (fenceMatch && fenceMatch[1][0] === fence[0] && fenceMatch[1].length >= fence.length && line.content.trim() === fenceMatch[1]) {
        fence = undefined;
      }
      continue;
    }
    if (fenceMatch) {
      fence = fenceMatch[1];
      continue;
    }
    const atx = ATX_HEADING.exec(line.content);
    if (atx) {
      const title = plainHeading(atx[2] ?? '');
      if (title) headings.push({ level: atx[1].length, title, start: line.start, bodyStart: line.next });
      continue;
    }
    // Setext: a one-line paragraph underlined with === (H1) or --- (H2). A paragraph of several
    // lines followed by --- is left alone: that is more often a thematic break in practice.
    const underline = lines[i + 1] && SETEXT_UNDERLINE.exec(lines[i + 1].content);
    const startsParagraph = i === 0 || lines[i - 1].content.trim() === '' || ATX_HEADING.test(lines[i - 1].content);
    if (underline && line.content.trim() !== '' && startsParagraph && !/^ {0,3}([-*+>]|\d+[.)])\s/.test(line.content)) {
      const title = plainHeading(line.content);
      if (title) {
        headings.push({ level: underline[1][0] === '=' ? 1 : 2, title, start: line.start, bodyStart: lines[i + 1].next });
        i++;
      }
    }
  }
  return headings;
}

function splitLines(text: string, from: number): Line[] {
  const lines: Line[] = [];
  let start = from;
  while (start < text.length) {
    const newline = text.indexOf('\n', start);
    const end = newline === -1 ? text.length : newline;
    const next = newline === -1 ? text.length : newline + 1;
    lines.push({ start, next, content: text.slice(start, end).replace(/\r$/, '') });
    start = next;
  }
  return lines;
}

/** YAML front matter (`---` ... `---` at the very top): skipped as text, `title:` kept. */
function readFrontMatter(text: string): { end: number; title?: string } {
  const open = /^---[ \t]*\r?\n/.exec(text);
  if (!open) return { end: 0 };
  const close = /^(?:---|\.\.\.)[ \t]*(?:\r?\n|$)/m.exec(text.slice(open[0].length));
  if (!close) return { end: 0 };
  const yaml = text.slice(open[0].length, open[0].length + close.index);
  const end = open[0].length + close.index + close[0].length;
  const title = /^title:[ \t]*(.+?)[ \t]*$/m.exec(yaml)?.[1].replace(/^(["'])(.*)\1$/, '$2').trim();
  return title ? { end, title } : { end };
}

/** Heading text without inline markup: links keep their text, emphasis and code marks go. */
function plainHeading(raw: string): string {
  return raw
    .replace(/!?\[([^\]]*)\]\([^)]*\)/g, '$1')
    .replace(/(\*\*|__|\*|_|`)(.+?)\1/g, '$2')
    .replace(/\s+/g, ' ')
    .trim();
}
