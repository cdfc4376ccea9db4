// End to end over a folder built here: walk it, parse every file, cut passages. Every good file
// must parse (and its distinctive phrase must land in a passage), every bad one must give its reason.
import { execFileSync } from 'node:child_process';
import { chmodSync, mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import iconv from 'iconv-lite';
import { PDFDocument, PDFName, PDFString, rgb } from 'pdf-lib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseFile, type ParseResult } from '../electron/indexing/parsers/index.ts';
import { cutPassages, type Passage } from '../electron/indexing/passages.ts';
import { walkFolder, type WalkEntry } from '../electron/indexing/walk.ts';
import { makeDocx, makePdf } from './fixtures/indexer-corpus.ts';

const countWords = (text: string) => text.match(/\S+/g)?.length ?? 0;
const MAX_BYTES = 64 * 1024; // a small cap so the oversized file stays small

/**
 * Japanese text in a non-embedded CID font with a predefined CMap (UniJIS-UCS2-H), as Japanese
 * office software writes it. pdfjs can only map it to Unicode with its CMap files (cMapUrl).
 */
async function makeJapanesePdf(text: string): Promise<Uint8Array> {
  const pdf = await PDFDocument.create();
  const page = pdf.addPage();
  const ctx = pdf.context;
  const descriptor = ctx.obj({
    Type: 'FontDescriptor', FontName: 'KozMinPro-Regular', Flags: 4, FontBBox: [-200, -300, 1200, 1000],
    ItalicAngle: 0, Ascent: 880, Descent: -120, CapHeight: 740, StemV: 80,
  });
  const cidFont = ctx.obj({
    Type: 'Font', Subtype: 'CIDFontType0', BaseFont: 'KozMinPro-Regular', FontDescriptor: ctx.register(descriptor),
    CIDSystemInfo: { Registry: PDFString.of('Adobe'), Ordering: PDFString.of('Japan1'), Supplement: 6 },
  });
  const font = ctx.obj({ Type: 'Font', Subtype: 'Type0', BaseFont: 'KozMinPro-Regular', Encoding: 'UniJIS-UCS2-H', DescendantFonts: [ctx.register(cidFont)] });
  page.node.setFontDictionary(PDFName.of('F1'), ctx.register(font));
  const utf16Hex = [...text].map((c) => c.charCodeAt(0).toString(16).padStart(4, '0')).join('');
  page.node.set(PDFName.of('Contents'), ctx.register(ctx.stream(`BT /F1 24 Tf 50 700 Td <${utf16Hex}> Tj ET`)));
  return pdf.save();
}

let root: string;
let pdfBytes: Uint8Array;
/** relative path -> parse result, for every file the walk yielded */
const results = new Map<string, ParseResult>();
const passages = new Map<string, Passage[]>();
const walkProblems = new Map<string, string>();
/** How the unreadable file was made: chmod 000 works only when not running as root. */
let unreadableName: string;

beforeAll(async () => {
  root = mkdtempSync(path.join(os.tmpdir(), 'quire-corpus-'));
  const put = (name: string, content: string | Uint8Array) => {
    mkdirSync(path.dirname(path.join(root, name)), { recursive: true });
    writeFileSync(path.join(root, name), content);
  };

  // Good files
  put('notes.md', '# Garden Notes\n\nTomatoes need sun.\n\n## Pests\n\nAphids dislike garlic spray.\n');
  put('plain.txt', 'A plain text file about the lighthouse keeper.\n');
  put('page.html', '<html><head><title>Recipe</title><script>var x = "no";</script></head><body><h1>Recipe</h1><p>Whisk the saffron eggs.</p></body></html>');
  pdfBytes = await makePdf([
    ['Annual report, first page.', 'Revenue grew in every quarter.'],
    ['Second page begins here.', 'The purple giraffe clause applies.'],
    ['Third page closes the report.'],
  ]);
  put('report.pdf', pdfBytes);
  put('japanese.pdf', await makeJapanesePdf('日本語の報告書です。'));
  const docx = await makeDocx([
    { text: 'Board Memo', style: 'Heading1' },
    { text: 'The budget is approved.' },
    { text: 'Risks', style: 'Heading2' },
    { text: 'Copper supply remains tight.' },
  ]);
  put('memo.docx', docx);
  put('src/util.ts', 'export const answer = 42; // the meaning of quokka life\n');
  put('legacy/shift-jis.txt', iconv.encode('古い文書です。桜の季節に会いましょう。', 'Shift_JIS'));
  put('legacy/cp1252.txt', iconv.encode('Café déjà vu — “smart quotes” cost 5 €.', 'windows-1252'));

  // Bad files
  put('empty.txt', '');
  put('corrupt.pdf', '%PDF-1.7\n1 0 obj << /Type /Catalog >> garbage without xref');
  put('truncated.docx', docx.slice(0, Math.floor(docx.length / 2)));
  put('scanned.pdf', await (async () => {
    const pdf = await PDFDocument.create();
    pdf.addPage().drawRectangle({ x: 50, y: 50, width: 200, height: 300, color: rgb(0.2, 0.2, 0.2) });
    return pdf.save();
  })());
  put('blob.bin', Uint8Array.from({ length: 512 }, (_, i) => (i * 37) % 256));
  put('huge.log', 'lorem ipsum '.repeat(MAX_BYTES / 8));
  symlinkSync(root, path.join(root, 'legacy', 'loop'));

  // An unreadable file. As root (the test container), permission bits do not stop reads, so use
  // a FIFO: the walker reports it, and parseFile refuses it without blocking on the open.
  if (process.getuid?.() !== 0) {
    unreadableName = 'locked.txt';
    put(unreadableName, 'secret');
    chmodSync(path.join(root, unreadableName), 0o000);
  } else {
    unreadableName = 'pipe.txt';
    execFileSync('mkfifo', [path.join(root, unreadableName)]);
  }

  const entries: WalkEntry[] = [];
  for await (const entry of walkFolder(root)) entries.push(entry);
  for (const entry of entries) {
    const rel = path.relative(root, entry.path).split(path.sep).join('/');
    if (entry.kind === 'problem') {
      walkProblems.set(rel, entry.reason);
      continue;
    }
    const result = await parseFile(entry.path, { maxBytes: MAX_BYTES });
    results.set(rel, result);
    if (result.ok) passages.set(rel, cutPassages(result.doc, countWords, 64));
  }
});

afterAll(() => {
  rmSync(root, { recursive: true, force: true });
});

function passageWith(file: string, phrase: string): Passage {
  const found = passages.get(file)?.find((p) => p.text.includes(phrase));
  if (!found) throw new Error(`no passage of ${file} contains "${phrase}": ${JSON.stringify(results.get(file))}`);
  return found;
}

describe('indexing a folder end to end', () => {
  it('parses every good file and finds its phrase in a passage', () => {
    const expected: [string, string, string, string][] = [
      // file, parser, title, phrase
      ['notes.md', 'markdown', 'Garden Notes', 'Aphids dislike garlic spray.'],
      ['plain.txt', 'text', 'plain.txt', 'lighthouse keeper'],
      ['page.html', 'html', 'Recipe', 'Whisk the saffron eggs.'],
      ['report.pdf', 'pdf', 'report.pdf', 'purple giraffe'],
      ['japanese.pdf', 'pdf', 'japanese.pdf', '日本語の報告書です。'],
      ['memo.docx', 'docx', 'Board Memo', 'Copper supply remains tight.'],
      ['src/util.ts', 'code', 'util.ts', 'quokka'],
      ['legacy/shift-jis.txt', 'text', 'shift-jis.txt', '桜の季節に会いましょう。'],
      ['legacy/cp1252.txt', 'text', 'cp1252.txt', 'Café déjà vu — “smart quotes” cost 5 €.'],
    ];
    for (const [file, parser, title, phrase] of expected) {
      const result = results.get(file);
      expect(result?.ok, `${file}: ${JSON.stringify(result)}`).toBe(true);
      if (!result?.ok) continue;
      expect(result.doc.parser).toBe(parser);
      expect(result.doc.title).toBe(title);
      const passage = passageWith(file, phrase);
      expect(result.doc.text.slice(passage.charStart, passage.charEnd)).toBe(passage.text);
    }
    expect(passageWith('notes.md', 'Aphids').title).toBe('Garden Notes › Pests');
    expect(passageWith('memo.docx', 'Copper').title).toBe('Board Memo › Risks');
    expect(passageWith('page.html', 'saffron').text).not.toContain('var x');
  });

  it('keeps PDF page numbers on sections and passages', () => {
    const result = results.get('report.pdf')!;
    expect(result.ok && result.doc.pageCount).toBe(3);
    expect(passageWith('report.pdf', 'purple giraffe').page).toBe(2);
    expect(passageWith('report.pdf', 'Revenue grew').page).toBe(1);
    expect(passageWith('report.pdf', 'Third page').page).toBe(3);
    // Page 1's text and page 2's never share a passage.
    for (const p of passages.get('report.pdf')!) expect(p.text.includes('Revenue') && p.text.includes('giraffe')).toBe(false);
  });

  it('gives every bad file its reason', () => {
    const outcome = (file: string) => {
      const r = results.get(file);
      return r && !r.ok ? `${r.status}: ${r.reason}` : JSON.stringify(r);
    };
    expect(outcome('empty.txt')).toBe('skipped: empty');
    expect(outcome('blob.bin')).toBe('skipped: binary file');
    expect(outcome('huge.log')).toBe('skipped: too large (96.0 KB > 64.0 KB cap)');
    expect(outcome('corrupt.pdf')).toMatch(/^failed: corrupt PDF: /);
    expect(outcome('scanned.pdf')).toBe('failed: scanned PDF: no text layer');
    expect(outcome('truncated.docx')).toMatch(/^failed: corrupt DOCX: .*zip/i);
    expect(walkProblems.get('legacy/loop')).toBe(`symlink loop (-> ${root})`);
    if (unreadableName === 'locked.txt') {
      expect(outcome('locked.txt')).toBe('failed: unreadable (EACCES)');
    } else {
      expect(walkProblems.get('pipe.txt')).toBe('not a regular file (FIFO)');
    }
  });

  it('reports files it cannot read as failures, without blocking or throwing', async () => {
    expect(await parseFile(path.join(root, 'no-such-file.txt'))).toEqual({ ok: false, status: 'failed', reason: 'unreadable (ENOENT)' });
    expect(await parseFile(path.join(root, 'legacy'))).toEqual({ ok: false, status: 'failed', reason: 'unreadable: not a regular file' });
    if (unreadableName === 'pipe.txt') {
      expect(await parseFile(path.join(root, 'pipe.txt'))).toEqual({ ok: false, status: 'failed', reason: 'unreadable: not a regular file' });
    }
  });

  it('covers every file the walk found with a result or a problem', () => {
    const walked = [...results.keys(), ...walkProblems.keys()].sort();
    expect(walked).toEqual(
      [
        'blob.bin', 'corrupt.pdf', 'empty.txt', 'huge.log', 'japanese.pdf', 'legacy/cp1252.txt', 'legacy/loop', 'legacy/shift-jis.txt',
        'memo.docx', 'notes.md', 'page.html', 'plain.txt', 'report.pdf', 'scanned.pdf', 'src/util.ts', 'truncated.docx',
        unreadableName,
      ].sort(),
    );
    // Files on disk are untouched by parsing (sanity: the PDF is what we wrote).
    expect(readFileSync(path.join(root, 'report.pdf')).equals(Buffer.from(pdfBytes))).toBe(true);
  });
});
