// Plain text (.txt and any unrecognised file whose bytes decode as text): one untitled section.
import { sectionOf } from './sections.ts';
import type { ParsedDocument } from './types.ts';

export const PLAIN_TEXT_EXTENSIONS: ReadonlySet<string> = new Set(['txt', 'text', 'rst', 'adoc', 'asciidoc', 'org', 'tex', 'nfo']);

export function parsePlainText(text: string, fileName: string): ParsedDocument {
  const section = sectionOf(text, 0, text.length);
  return { title: fileName, parser: 'text', textKind: 'prose', text, sections: section ? [section] : [] };
}
