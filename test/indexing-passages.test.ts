import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { Tokenizer } from '@huggingface/tokenizers';
import { describe, expect, it } from 'vitest';
import { parseMarkdown } from '../electron/indexing/parsers/markdown.ts';
import type { DocumentSection, ParsedDocument } from '../electron/indexing/parsers/types.ts';
import { blockText, cutPassages, type CountTokens, type Passage } from '../electron/indexing/passages.ts';

/** One token per whitespace-separated word. */
const countWords: CountTokens = (text) => text.match(/\S+/g)?.length ?? 0;

/** A document of untitled sections laid end to end, like a parser would build it. */
function docOf(parts: { text: string; title?: string; page?: number }[], textKind: 'prose' | 'lines' = 'prose'): ParsedDocument {
  let text = '';
  const sections: DocumentSection[] = [];
  for (const part of parts) {
    if (text) text += '\n\n';
    sections.push({ charStart: text.length, text: part.text, ...(part.title ? { title: part.title } : {}), ...(part.page ? { page: part.page } : {}) });
    text += part.text;
  }
  return { title: 'Doc', parser: 'text', textKind, text, sections };
}

function sentence(n: number, words: number): string {
  return Array.from({ length: words }, (_, k) => (k === 0 ? `S${n}w${k}` : `w${n}x${k}`)).join(' ') + '.';
}

/** Properties every cut must have, whatever the input. */
function expectWellFormed(doc: ParsedDocument, passages: Passage[], count: CountTokens, target: number): void {
  passages.forEach((p, i) => {
    expect(p.ordinal).toBe(i);
    expect(doc.text.slice(p.charStart, p.charEnd)).toBe(p.text);
    expect(p.text).toBe(p.text.trim());
    expect(p.tokenCount).toBe(count(p.text));
    expect(p.tokenCount).toBeLessThanOrEqual(target);
    // inside exactly one section
    const section = doc.sections.find((s) => s.charStart <= p.charStart && p.charEnd <= s.charStart + s.text.length);
    expect(section, `passage ${i} crosses a section`).toBeDefined();
    expect(p.page).toBe(section!.page);
  });
  // In order, not overlapping, and together they hold every non-space character of every section.
  for (let i = 1; i < passages.length; i++) expect(passages[i].charStart).toBeGreaterThanOrEqual(passages[i - 1].charEnd);
  const visible = (s: string) => s.replace(/\s+/g, '');
  expect(passages.map((p) => visible(p.text)).join('')).toBe(doc.sections.map((s) => visible(s.text)).join(''));
}

/** True when the cut before `start` and after `end` falls on whitespace or a text edge. */
function cutsAtWhitespace(text: string, p: Passage): boolean {
  const before = p.charStart === 0 || /\s/.test(text[p.charStart - 1]);
  const after = p.charEnd === text.length || /\s/.test(text[p.charEnd]);
  return before && after;
}

describe('cutPassages', () => {
  it('packs whole paragraphs while they fit and cuts between them', () => {
    const paragraphs = Array.from({ length: 7 }, (_, p) => [sentence(p * 10, 40), sentence(p * 10 + 1, 59)].join(' '));
    const doc = docOf([{ text: paragraphs.join('\n\n') }]);
    const passages = cutPassages(doc, countWords, 256);
    expectWellFormed(doc, passages, countWords, 256);
    // 99 words per paragraph: two fit in 256, three do not.
    expect(passages.map((p) => p.tokenCount)).toEqual([198, 198, 198, 99]);
    expect(passages[0].text).toBe(paragraphs.slice(0, 2).join('\n\n'));
    for (const p of passages) expect(cutsAtWhitespace(doc.text, p)).toBe(true);
  });

  it('cuts a long paragraph at sentence ends, never mid-sentence', () => {
    const sentences = Array.from({ length: 30 }, (_, k) => sentence(k, 20 + (k % 7)));
    const doc = docOf([{ text: sentences.join(' ') }]);
    const passages = cutPassages(doc, countWords, 100);
    expectWellFormed(doc, passages, countWords, 100);
    expect(passages.length).toBeGreaterThan(6);
    for (const p of passages) {
      expect(p.text.endsWith('.')).toBe(true);
      expect(p.text).toMatch(/^S\d+w0 /);
    }
    // Greedy, so every passage but the last is more than half full.
    for (const p of passages.slice(0, -1)) expect(p.tokenCount).toBeGreaterThan(50);
  });

  it('prefers a sentence cut that fills the passage over a paragraph cut that leaves it mostly empty', () => {
    const intro = sentence(0, 10);
    const long = Array.from({ length: 12 }, (_, k) => sentence(k + 1, 20)).join(' ');
    const doc = docOf([{ text: `${intro}\n\n${long}` }]);
    const passages = cutPassages(doc, countWords, 100);
    expectWellFormed(doc, passages, countWords, 100);
    expect(passages[0].text.startsWith(intro)).toBe(true);
    expect(passages[0].tokenCount).toBeGreaterThan(50); // not the 10-word intro alone
  });

  it('splits a sentence without punctuation at whitespace, and a run without whitespace between characters', () => {
    const words = Array.from({ length: 250 }, (_, k) => `word${k}`).join(' ');
    const blob = 'x'.repeat(1000);
    const doc = docOf([{ text: words }, { text: blob }]);
    // Roughly one token per 4 characters of each word, at least one per word.
    const countChars: CountTokens = (t) => (t.match(/\S+/g) ?? []).reduce((n, w) => n + Math.ceil(w.length / 4), 0);
    const passages = cutPassages(doc, countChars, 64);
    expectWellFormed(doc, passages, countChars, 64);
    const wordPassages = passages.filter((p) => p.charEnd <= words.length);
    expect(wordPassages.length).toBeGreaterThan(3);
    for (const p of wordPassages) expect(cutsAtWhitespace(doc.text, p)).toBe(true);
    const blobPassages = passages.filter((p) => p.charStart >= doc.sections[1].charStart);
    expect(blobPassages.map((p) => p.text).join('')).toBe(blob);
    expect(blobPassages.map((p) => p.text.length)).toEqual([256, 256, 256, 232]);
  });

  it('hard-splits CJK text at sentence ends (。) and never between surrogate halves', () => {
    const japanese = Array.from({ length: 40 }, (_, k) => `これは${k}番目の文です`).join('。') + '。';
    const emoji = '😀'.repeat(300);
    const doc = docOf([{ text: japanese }, { text: emoji }]);
    const countChars: CountTokens = (t) => [...t.replace(/\s/g, '')].length; // one token per code point
    const passages = cutPassages(doc, countChars, 50);
    expectWellFormed(doc, passages, countChars, 50);
    for (const p of passages.filter((p) => p.charEnd <= japanese.length)) expect(p.text.endsWith('。')).toBe(true);
    for (const p of passages.filter((p) => p.charStart >= doc.sections[1].charStart)) {
      expect(p.text).toMatch(/^(😀)+$/u); // a split pair would not match
    }
  });

  it('cuts code at blank lines, then lines, not at "sentence" punctuation', () => {
    const fn = (k: number) => `function f${k}(a, b) {\n  const c = a ? b : 0; // really? yes.\n  return c.value;\n}`;
    const code = Array.from({ length: 12 }, (_, k) => fn(k)).join('\n\n');
    const doc = docOf([{ text: code }], 'lines');
    const passages = cutPassages(doc, countWords, 40);
    expectWellFormed(doc, passages, countWords, 40);
    for (const p of passages) {
      expect(p.text.startsWith('function f')).toBe(true);
      expect(p.text.endsWith('}')).toBe(true);
    }
    // A single function longer than the target is cut at line ends.
    const long = docOf([{ text: fn(1) }], 'lines');
    const lines = cutPassages(long, countWords, 11); // the longest line has 11 words
    expectWellFormed(long, lines, countWords, 11);
    expect(lines.map((p) => p.tokenCount)).toEqual([4, 11, 3]);
    for (const p of lines) expect(cutsAtWhitespace(long.text, p) && (p.charEnd === long.text.length || long.text[p.charEnd] === '\n')).toBe(true);
  });

  it('keeps pages apart and titles passages with the heading path', () => {
    const doc = docOf([
      { text: sentence(1, 30), page: 1 },
      { text: `${sentence(2, 5)} The purple giraffe sings.`, page: 2 },
    ]);
    const passages = cutPassages(doc, countWords, 256);
    expect(passages.map((p) => p.page)).toEqual([1, 2]);
    expect(passages[1].text).toContain('purple giraffe');

    const md = parseMarkdown('# Handbook\n\nWelcome.\n\n## Travel\n\n### Visas\n\nApply early.\n', 'handbook.md');
    const titled = cutPassages(md, countWords);
    expect(titled.map((p) => [p.title, p.text])).toEqual([
      ['Handbook', 'Welcome.'],
      ['Handbook › Travel › Visas', 'Apply early.'],
    ]);
  });

  it('returns no passages for a document without sections, and rejects a target below 1', () => {
    expect(cutPassages(docOf([]), countWords)).toEqual([]);
    expect(() => cutPassages(docOf([{ text: 'a b' }]), countWords, 0)).toThrow(RangeError);
  });

  it('formats a passage block as the method brief specifies', () => {
    expect(blockText('Guide › Install', 'Run it.')).toBe('- Title: Guide › Install\nRun it.\n');
  });

  const tokenizerDir = path.resolve('../shared/fixtures/tiny-llama-fp16-genai');
  it.skipIf(!existsSync(path.join(tokenizerDir, 'tokenizer.json')))('stays within the target with a real Llama tokenizer', () => {
    const tokenizer = new Tokenizer(
      JSON.parse(readFileSync(path.join(tokenizerDir, 'tokenizer.json'), 'utf8')),
      JSON.parse(readFileSync(path.join(tokenizerDir, 'tokenizer_config.json'), 'utf8')),
    );
    const countLlama: CountTokens = (text) => tokenizer.encode(text, { add_special_tokens: false }).ids.length;
    const prose = Array.from({ length: 12 }, (_, p) =>
      Array.from({ length: 6 }, (_, s) => `Paragraph ${p} sentence ${s} mentions résumé, naïve café and 東京 (${p * s}).`).join(' '),
    );
    const md = parseMarkdown(`# Real tokens\n\n${prose.slice(0, 6).join('\n\n')}\n\n## Second half\n\n${prose.slice(6).join('\n\n')}\n`, 'real.md');
    const passages = cutPassages(md, countLlama, 128);
    expectWellFormed(md, passages, countLlama, 128);
    expect(passages.length).toBeGreaterThan(4);
    for (const p of passages) {
      expect(p.text.endsWith('.')).toBe(true);
      expect(p.tokenCount).toBeGreaterThan(40);
    }
  });
});
