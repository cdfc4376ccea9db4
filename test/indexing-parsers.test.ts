import iconv from 'iconv-lite';
import { describe, expect, it } from 'vitest';
import { detectFormat, parseBytes } from '../electron/indexing/parsers/index.ts';
import type { ParsedDocument, ParseResult } from '../electron/indexing/parsers/types.ts';

const utf8 = (s: string) => new TextEncoder().encode(s);

function docOf(result: ParseResult): ParsedDocument {
  if (!result.ok) throw new Error(`expected a document, got ${result.status}: ${result.reason}`);
  for (const s of result.doc.sections) {
    expect(result.doc.text.slice(s.charStart, s.charStart + s.text.length)).toBe(s.text);
  }
  return result.doc;
}

const sectionSummary = (doc: ParsedDocument) => doc.sections.map((s) => [s.title, s.text]);

describe('markdown', () => {
  it('titles the document with the first H1 and sections with the heading path', async () => {
    const md = [
      'Preface line.',
      '',
      '# Field Guide',
      '',
      'Welcome text.',
      '',
      '## Birds of *the* [Coast](http://x)',
      '',
      '```sh',
      '# not a heading inside a fence',
      '```',
      '',
      '### Gulls',
      'Gulls are loud.',
      '',
      'Setext Heading',
      '--------------',
      '',
      'Under setext.',
      '',
      '#hashtag is not a heading',
    ].join('\n');
    const doc = docOf(await parseBytes(utf8(md), 'guide.md'));
    expect(doc.title).toBe('Field Guide');
    expect(doc.parser).toBe('markdown');
    expect(doc.text).toBe(md); // offsets point into the file itself
    expect(sectionSummary(doc)).toEqual([
      [undefined, 'Preface line.'],
      [undefined, 'Welcome text.'],
      ['Birds of the Coast', '```sh\n# not a heading inside a fence\n```'],
      ['Birds of the Coast › Gulls', 'Gulls are loud.'],
      ['Setext Heading', 'Under setext.\n\n#hashtag is not a heading'],
    ]);
  });

  it('takes the title from front matter, else the file name, and keeps CRLF offsets exact', async () => {
    const front = docOf(await parseBytes(utf8('---\ntitle: "Trip Notes"\ntags: [a]\n---\n## Day 1\r\nWalked.\r\n'), 'trip.md'));
    expect(front.title).toBe('Trip Notes');
    expect(sectionSummary(front)).toEqual([['Day 1', 'Walked.']]);
    const untitled = docOf(await parseBytes(utf8('Just text.\n'), 'plain-notes.md'));
    expect(untitled.title).toBe('plain-notes.md');
  });
});

describe('HTML', () => {
  it('keeps visible text only, breaks blocks into lines, and sections at headings', async () => {
    const html = `<!DOCTYPE html><html><head><title> Travel  Policy </title><style>p{color:red}</style>
      <script>document.write("script text")</script></head><body>
      <nav><a href="/">Home</a> | <a href="/about">About</a></nav>
      <h1>Travel Policy</h1><p>Book   economy
      class &amp; keep receipts.</p>
      <div hidden>hidden div</div><p style="display: none">invisible p</p><span aria-hidden="true">icon</span>
      <noscript>enable js</noscript><template><p>template</p></template><svg><title>icon tooltip</title></svg>
      <ul><li>Flights</li><li>Hotels</li></ul>
      <h2>Per diem</h2><table><tr><th>City</th><th>Rate</th></tr><tr><td>Paris</td><td>90</td></tr></table>
      <pre>line 1
  line 2</pre></body></html>`;
    const doc = docOf(await parseBytes(utf8(html), 'policy.html'));
    expect(doc.title).toBe('Travel Policy');
    expect(doc.parser).toBe('html');
    for (const hidden of ['script text', 'Home', 'hidden div', 'invisible p', 'icon', 'enable js', 'template', 'color:red', 'tooltip']) {
      expect(doc.text).not.toContain(hidden);
    }
    expect(sectionSummary(doc)).toEqual([
      [undefined, 'Book economy class & keep receipts.\n\nFlights\nHotels'],
      ['Per diem', 'City Rate\nParis 90\n\nline 1\n  line 2'],
    ]);
  });

  it('decodes with the charset the page declares when the bytes are not UTF-8', async () => {
    const html = '<html><head><meta charset="windows-1251"><title>Отчёт</title></head><body><p>Привет, мир</p></body></html>';
    const doc = docOf(await parseBytes(iconv.encode(html, 'windows-1251'), 'ru.html'));
    expect(doc.title).toBe('Отчёт');
    expect(doc.text).toBe('Привет, мир');
    expect(doc.encoding).toBe('windows-1251');
  });
});

describe('text decoding', () => {
  it('detects and decodes Shift_JIS and windows-1252', async () => {
    const japanese = '日本語のテキストです。東京は大きな都市です。これはテストの文書です。';
    const sjis = docOf(await parseBytes(iconv.encode(japanese, 'Shift_JIS'), 'memo.txt'));
    expect(sjis.text).toBe(japanese);
    expect(sjis.encoding).toBe('Shift_JIS');
    const french = 'Café crème — “naïve” résumé. Ça coûte 5 €.';
    const cp1252 = docOf(await parseBytes(iconv.encode(french, 'windows-1252'), 'fr.txt'));
    expect(cp1252.text).toBe(french);
  });

  it('honours UTF-8 and UTF-16 byte order marks (and strips them)', async () => {
    const text = 'naïve Ünïcödé 🙂';
    const withBom = docOf(await parseBytes(new Uint8Array([0xef, 0xbb, 0xbf, ...utf8(text)]), 'bom.txt'));
    expect(withBom.text).toBe(text);
    const le = docOf(await parseBytes(new Uint8Array([0xff, 0xfe, ...Buffer.from(text, 'utf16le')]), 'le.txt'));
    expect(le.text).toBe(text); // UTF-16 is full of NUL bytes, yet it is text
    expect(le.encoding).toBe('utf-16le');
    const be = docOf(await parseBytes(new Uint8Array([0xfe, 0xff, ...iconv.encode(text, 'utf-16be')]), 'be.txt'));
    expect(be.text).toBe(text);
  });
});

describe('dispatch and limits', () => {
  it('picks the parser by extension, then by content', () => {
    const text = utf8('hello');
    expect(detectFormat('a.TS', text)).toBe('code');
    expect(detectFormat('Dockerfile', text)).toBe('code');
    expect(detectFormat('config.yaml', text)).toBe('code');
    expect(detectFormat('notes.markdown', text)).toBe('markdown');
    expect(detectFormat('page.htm', text)).toBe('html');
    expect(detectFormat('report.PDF', text)).toBe('pdf');
    expect(detectFormat('memo.docx', text)).toBe('docx');
    expect(detectFormat('download', utf8('%PDF-1.7\n'))).toBe('pdf');
    expect(detectFormat('saved-page', utf8('  <!DOCTYPE html><p>x'))).toBe('html');
    expect(detectFormat('README', text)).toBe('text');
  });

  it('parses code and config as line-oriented text titled by file name', async () => {
    const source = 'export function add(a: number, b: number): number {\n  return a + b;\n}\n';
    const doc = docOf(await parseBytes(utf8(source), 'math.ts'));
    expect(doc).toMatchObject({ title: 'math.ts', parser: 'code', textKind: 'lines' });
    expect(sectionSummary(doc)).toEqual([[undefined, source.trim()]]);
  });

  it('skips binary, empty and oversized files with a reason', async () => {
    expect(await parseBytes(new Uint8Array([0x89, 0x50, 0x4e, 0x47, 0, 0, 0, 13, 1, 2]), 'image.dat')).toEqual({
      ok: false, status: 'skipped', reason: 'binary file',
    });
    expect(await parseBytes(new Uint8Array([0x68, 0x69, 0, 0x68, 0x69]), 'has-nul.ts')).toMatchObject({ reason: 'binary file' });
    // Control characters without NUL (some old binary formats) also count as binary.
    expect(await parseBytes(Uint8Array.from({ length: 200 }, (_, i) => (i % 3 === 0 ? 0x01 : 0x41)), 'x.bin')).toMatchObject({ reason: 'binary file' });
    expect(await parseBytes(new Uint8Array(), 'empty.txt')).toEqual({ ok: false, status: 'skipped', reason: 'empty' });
    expect(await parseBytes(utf8(' \n\t\n'), 'blank.md')).toEqual({ ok: false, status: 'skipped', reason: 'empty' });
    expect(await parseBytes(utf8('x'.repeat(3000)), 'big.txt', { maxBytes: 2048 })).toEqual({
      ok: false, status: 'skipped', reason: 'too large (2.9 KB > 2.0 KB cap)',
    });
  });

  it('finds binary content anywhere in a file, not only in its first 8 KB', async () => {
    // Bytes of no pattern, from a fixed seed (a xorshift generator), and a machine-code-like run.
    let state = 0x2545f491;
    const noise = (n: number) =>
      Uint8Array.from({ length: n }, () => {
        state ^= state << 13;
        state ^= state >>> 17;
        state ^= state << 5;
        return state & 0xff;
      });
    const code = Uint8Array.from({ length: 64 * 1024 }, (_, i) => (i % 16 < 9 ? 0 : (i * 37) & 0xff));
    const prose = utf8('The river bends twice before the old mill, and the path follows it. '.repeat(130)); // 8.8 KB
    const join = (...parts: Uint8Array[]) => new Uint8Array(Buffer.concat(parts));
    const bomLe = new Uint8Array([0xff, 0xfe]);

    expect(await parseBytes(join(bomLe, noise(200_000)), 'bom-noise.txt')).toMatchObject({ reason: 'binary file' });
    expect(await parseBytes(join(bomLe, code), 'bom-code.txt')).toMatchObject({ reason: 'binary file' });
    expect(await parseBytes(join(prose, noise(200_000)), 'noise-tail.log')).toMatchObject({ reason: 'binary file' });
    expect(await parseBytes(join(prose, code), 'code-tail.txt')).toMatchObject({ reason: 'binary file' });
    // and text stays text: UTF-16 with its NUL bytes, a stray NUL past the first window
    const utf16 = docOf(await parseBytes(join(bomLe, Buffer.from('Ünïcödé, 日本語のテキスト. '.repeat(3000), 'utf16le')), 'wide.txt'));
    expect(utf16.encoding).toBe('utf-16le');
    const stray = docOf(await parseBytes(join(prose, new Uint8Array([0]), prose), 'stray.txt'));
    expect(stray.text.length).toBe(2 * prose.length + 1);
  });
});
