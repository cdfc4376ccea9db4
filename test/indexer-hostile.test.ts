// Hostile files, built here (nothing large is committed), indexed with the real indexer, parse
// process and SQLite file: each fails or is cut short alone with a reason a user can read, the
// files around it are indexed, and nothing indexed before is lost.
import { randomInt } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { getDocumentByPath } from '../db/documents.ts';
import { listPassages } from '../db/passages.ts';
import { searchPassages } from '../db/search.ts';
import { indexFolder } from '../electron/indexing/indexer.ts';
import { estimateTokens } from '../electron/indexing/token-estimate.ts';
import { ParseProcess } from '../electron/indexing/parse-process.ts';
import { tempDb, type TempDb } from './fixtures/db-temp.ts';
import { docxBomb, flatPageTreePdf, zipArchive } from './tools/hostile-files.ts';

let tmp: string;
let store: TempDb;
const parser = new ParseProcess();

beforeAll(() => {
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'quire-hostile-'));
  store = tempDb();
});
afterAll(async () => {
  await parser.close();
  store.cleanup();
  fs.rmSync(tmp, { recursive: true, force: true });
});

/** A fresh library folder holding `files`, written in name order. */
function folder(name: string, files: Record<string, string | Buffer>): string {
  const dir = path.join(tmp, name);
  fs.mkdirSync(dir);
  for (const [file, content] of Object.entries(files)) fs.writeFileSync(path.join(dir, file), content);
  return dir;
}

const notes = (word: string) => `# Notes\n\nThe ${word} grows by the garden wall, where the afternoon sun stays longest.\n`;
const doc = (dir: string, name: string) => getDocumentByPath(store.db, path.join(dir, name));
const found = (word: string) => searchPassages(store.db, word).map((h) => path.basename(h.path));

describe('hostile files in the indexer', () => {
  it('reads a flat 20,000-page PDF up to the page limit and says so', async () => {
    const pdf = flatPageTreePdf(20_000);
    expect(pdf.length).toBeLessThan(6 * 1024 * 1024);
    const dir = folder('flat', { 'flat.pdf': pdf });
    const summary = await indexFolder(store.db, dir, { countTokens: estimateTokens, parser, maxPdfPages: 40 });
    expect(summary.failed).toEqual([]);
    const flat = doc(dir, 'flat.pdf')!;
    expect(flat).toMatchObject({ status: 'indexed', error: 'only the first 40 of 20000 pages indexed (page limit)' });
    expect(listPassages(store.db, flat.id).map((p) => p.page)).toEqual(Array.from({ length: 40 }, (_, i) => i + 1));
    expect(found('"Page 40 of the flat tree"')).toEqual(['flat.pdf']);
  });

  it('kills a parse past its wall-clock limit: that file fails with the reason, the next one is parsed', async () => {
    // no page cap from the caller: the default limits read 500 pages of this flat tree, seconds of work
    const dir = folder('slow', { 'a.md': notes('heliotrope'), 'b-flat.pdf': flatPageTreePdf(20_000), 'c.md': notes('marigold') });
    const startsBefore = parser.starts;
    const summary = await indexFolder(store.db, dir, { countTokens: estimateTokens, parser, parseTimeoutMs: 250 });
    expect(summary.failed).toEqual([{ path: path.join(dir, 'b-flat.pdf'), reason: 'took longer than 250 ms' }]);
    expect(doc(dir, 'b-flat.pdf')).toMatchObject({ status: 'failed', error: 'took longer than 250 ms' });
    expect(summary.indexed).toBe(2);
    expect(found('heliotrope')).toContain('a.md');
    expect(found('marigold')).toEqual(['c.md']);
    expect(parser.starts).toBe(startsBefore + 1); // the killed process was replaced for c.md
  });

  it('refuses a DOCX bomb before inflating it, and one whose stated sizes lie', async () => {
    const bomb = await docxBomb(200 * 1024 * 1024);
    expect(bomb.length).toBeLessThan(1024 * 1024);
    const liar = await zipArchive([
      { name: '[Content_Types].xml', chunk: '<Types/>' },
      { name: 'word/document.xml', chunk: '<w:p/>'.repeat(1000), repeat: 10_000, declaredUncompressedSize: 100_000 },
    ]);
    const dir = folder('bombs', { 'a.md': notes('verbena'), 'bomb.docx': bomb, 'liar.docx': liar, 'z.md': notes('yarrow') });
    const summary = await indexFolder(store.db, dir, { countTokens: estimateTokens, parser });
    expect(doc(dir, 'bomb.docx')!.error).toBe(
      'DOCX is a decompression bomb: word/document.xml inflates 656.4 KB to 200.0 MB (312:1, limit 100:1)',
    );
    expect(doc(dir, 'liar.docx')!.error).toBe('DOCX is a decompression bomb: word/document.xml inflates past its stated 97.7 KB');
    expect(summary.failed.map((f) => path.basename(f.path)).sort()).toEqual(['bomb.docx', 'liar.docx']);
    expect(found('verbena')).toEqual(['a.md']);
    expect(found('yarrow')).toEqual(['z.md']);
  });

  it('records a parser that runs out of memory, restarts it, and loses nothing indexed before', async () => {
    // ~8 MB of XML that deflate shrinks only ~6:1 (random words), so no size or ratio limit
    // refuses it: only the memory cap of a small parse process stops mammoth.
    const words = ['amber', 'basil', 'cedar', 'dahlia', 'ember', 'fennel', 'garnet', 'hazel', 'iris', 'juniper'];
    const paragraph = Array.from({ length: 120_000 }, () => words[randomInt(words.length)]).join(' ');
    const heavy = await zipArchive([
      { name: '[Content_Types].xml', chunk: '<Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types"/>' },
      {
        name: '_rels/.rels',
        chunk:
          '<Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships"><Relationship Id="rId1" ' +
          'Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/officeDocument" Target="word/document.xml"/></Relationships>',
      },
      {
        name: 'word/document.xml',
        prefix: '<w:document xmlns:w="http://schemas.openxmlformats.org/wordprocessingml/2006/main"><w:body>',
        chunk: `<w:p><w:r><w:t>${paragraph}</w:t></w:r></w:p>`,
        repeat: 10,
        level: 1,
        suffix: '</w:body></w:document>',
      },
    ]);
    const dir = folder('memory', { 'a.md': notes('lavender') });
    await indexFolder(store.db, dir, { countTokens: estimateTokens, parser });
    fs.writeFileSync(path.join(dir, 'heavy.docx'), heavy);
    fs.writeFileSync(path.join(dir, 'z.md'), notes('sorrel'));
    const small = new ParseProcess({ memoryMb: 48 });
    try {
      const summary = await indexFolder(store.db, dir, { countTokens: estimateTokens, parser: small });
      expect(summary.failed).toEqual([{ path: path.join(dir, 'heavy.docx'), reason: 'parser ran out of memory' }]);
      expect(small.starts).toBe(2);
    } finally {
      await small.close();
    }
    expect(found('lavender')).toEqual(['a.md']);
    expect(found('sorrel')).toEqual(['z.md']);
  });
});
