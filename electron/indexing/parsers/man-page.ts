// Manual pages (roff source, usually gzip-compressed: /usr/share/man/man1/ls.1.gz) as plain text,
// lightly: control lines that only format (.TH, .PP, .de ... .., .if/.ie/.el, comments) are dropped,
// the text macros (.B, .I, .BR ...) keep their words, .SH/.SS (and mdoc's .Sh/.Ss) become section
// headings, and inline escapes (\fB, \-, \(em, \*(..) become their characters or nothing. Not a roff
// interpreter: the aim is searchable words under the right heading, with the NAME line as the title.
import { sectionOf } from './sections.ts';
import type { DocumentSection, ParsedDocument } from './types.ts';

/** A man page's file name once uncompressed: name.section[suffix] (ls.1, GET.1p, CA.pl.1ssl). */
const MAN_FILE = /\.[1-9n][a-z]*$/i;

/** Whether `text` (from a file named `fileName`) is roff source worth stripping. */
export function isManPage(fileName: string, text: string): boolean {
  return MAN_FILE.test(fileName) && /^(?:\.\\"|'\\"|\.(?:TH|Dd|SH|Sh)\b)/m.test(text.slice(0, 4096));
}

const NAMED_CHARACTERS: Record<string, string> = { em: '—', en: '–', aq: "'", lq: '“', rq: '”', oq: '‘', cq: '’', bu: '•', co: '©', rg: '®', dq: '"', hy: '-', mi: '-', pl: '+', ti: '~', ha: '^', '>=': '≥', '<=': '≤', mu: '×' };

/** Inline escapes to the characters they stand for (fonts, sizes and motions to nothing). */
function unescape(line: string): string {
  return line
    .replace(/\\".*$/, '') // comment to the end of the line
    .replace(/\\\(([^\s]{2})/g, (_m, name: string) => NAMED_CHARACTERS[name] ?? '')
    .replace(/\\\[([^\]]*)\]/g, (_m, name: string) => NAMED_CHARACTERS[name] ?? '')
    .replace(/\\f(?:\([A-Z]{2}|\[[^\]]*\]|.)/g, '')
    .replace(/\\\*(?:\(..|\[[^\]]*\]|.)/g, '')
    .replace(/\\s[-+]?\d+/g, '')
    .replace(/\\[vhwoxlLDbZ]'[^']*'/g, '')
    .replace(/\\n(?:\(..|\[[^\]]*\]|.)/g, '')
    .replace(/\\[&|^,/:c%)!{}]/g, '')
    .replace(/\\[-e]/g, (m) => (m === '\\-' ? '-' : '\\'))
    .replace(/\\ /g, ' ')
    .replace(/\\\\/g, '\\');
}

/** A macro line's arguments (quoted ones kept whole). */
function macroArgs(rest: string): string[] {
  return [...rest.matchAll(/"((?:[^"]|"")*)"|(\S+)/g)].map((m) => (m[1] ?? m[2]).replace(/""/g, '"'));
}

const HEADINGS = new Set(['SH', 'Sh', 'SS', 'Ss']);
const BREAKS = new Set(['PP', 'LP', 'P', 'TP', 'HP', 'Pp', 'Lp', 'sp', 'br', 'RS', 'RE', 'Bl', 'El']);
/** Macros whose arguments alternate fonts: the words are joined without spaces ("ls(1)"). */
const ALTERNATING = new Set(['BR', 'RB', 'BI', 'IB', 'IR', 'RI']);
/** Macros whose arguments are text to keep. */
const TEXT_MACROS = new Set(['B', 'I', 'SM', 'SB', 'IP', 'Nm', 'Nd', 'Fl', 'Ar', 'Op', 'Xr', 'Pa', 'Em', 'Sy', 'Li', 'Dq', 'Qq', 'Cm', 'Ev', 'Va', 'Fn', 'Ql', 'It']);

export function parseManPage(source: string, fileName: string): ParsedDocument {
  let text = '';
  const sections: DocumentSection[] = [];
  let heading: string | undefined;
  let sectionStart = 0;
  let pageName: string | undefined;
  let nameLine: string | undefined;
  let inDefinition = false;
  const close = () => {
    const s = sectionOf(text, sectionStart, text.length, { title: heading });
    if (s) sections.push(s);
  };
  for (const raw of source.split(/\r?\n/)) {
    if (inDefinition) {
      if (raw.trim() === '..') inDefinition = false;
      continue;
    }
    if (/^[.'][ \t]*(?:de|am|ig)\b/.test(raw)) {
      inDefinition = true;
      continue;
    }
    const control = /^[.'][ \t]*(\S+)[ \t]*(.*)$/.exec(raw);
    let out: string | null;
    if (!control) out = unescape(raw);
    else {
      const [, macro, rest] = control;
      const args = macroArgs(unescape(rest));
      if (macro === 'TH' || macro === 'Dt') {
        if (args[0]) pageName = `${args[0].toLowerCase()}${args[1] ? `(${args[1]})` : ''}`;
        continue;
      }
      if (HEADINGS.has(macro)) {
        close();
        const title = args.join(' ');
        heading = title ? title[0] + title.slice(1).toLowerCase() : undefined;
        text += `${title}\n`;
        sectionStart = text.length;
        continue;
      }
      if (BREAKS.has(macro)) out = '';
      else if (ALTERNATING.has(macro)) out = args.join('');
      else if (TEXT_MACROS.has(macro)) out = args.join(' ');
      else continue; // formatting requests, conditionals, comments
    }
    if (heading?.toLowerCase() === 'name' && out && !nameLine) nameLine = out.trim();
    text += `${out}\n`;
  }
  close();
  return { title: nameLine || pageName || fileName, parser: 'text', textKind: 'prose', text, sections };
}
