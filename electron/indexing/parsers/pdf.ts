// PDF: text per page through pdfjs (legacy build, the one meant for Node). Each page with text is
// one section carrying its page number, so passages never straddle pages. A PDF whose pages have
// no text at all is a scan: reported as a failure so the user knows it needs OCR.
//
// pdf.js finds page N by walking the page tree from its root, and in a flat tree (every page a kid
// of the root, as many writers produce) each lookup visits every kid: reading n of a document's N
// pages costs n x N steps (20,000 pages: minutes). So the pages read are capped by maxPdfPages and
// by a budget of lookup steps (PAGE_LOOKUP_BUDGET / N pages), which keeps the worst case to
// seconds whatever the tree; the parse process's wall-clock limit (parse-process.ts) bounds
// whatever else a document does.
import { createRequire } from 'node:module';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import type { PDFDocumentProxy } from 'pdfjs-dist/types/src/display/api.js';
import { sectionOf } from './sections.ts';
import { failed, parsed, type DocumentSection, type FormatParser, type ParsedDocument } from './types.ts';

/** Between pages in the document text: a paragraph break, so no passage reads across it. */
const PAGE_SEPARATOR = '\n\n';

type Pdfjs = typeof import('pdfjs-dist/legacy/build/pdf.mjs');
let pdfjsLoaded: Promise<{ pdfjs: Pdfjs; assetsDir: string }> | undefined;

/**
 * Loaded on first use: pdfjs is large and most folders have few PDFs. Node has no Web Worker, so
 * pdfjs runs its "fake worker" on this thread; workerSrc must still name the worker module, which
 * it imports. Runs off the UI thread anyway (the engine process).
 */
function loadPdfjs(): Promise<{ pdfjs: Pdfjs; assetsDir: string }> {
  pdfjsLoaded ??= (async () => {
    const pdfjs = await import('pdfjs-dist/legacy/build/pdf.mjs');
    const assetsDir = path.dirname(createRequire(import.meta.url).resolve('pdfjs-dist/package.json'));
    pdfjs.GlobalWorkerOptions.workerSrc = pathToFileURL(path.join(assetsDir, 'legacy/build/pdf.worker.mjs')).href;
    return { pdfjs, assetsDir };
  })();
  return pdfjsLoaded;
}

/** Pages read from one PDF at most: a book of several thousand pages. */
export const DEFAULT_MAX_PDF_PAGES = 5000;
/**
 * Pages read x pages in the document, at most: every page of a 3,000-page PDF, 500 of a flat
 * 20,000-page one (~8 s on a slow core instead of minutes).
 */
const PAGE_LOOKUP_BUDGET = 10_000_000;

export const parsePdf: FormatParser = async ({ bytes, fileName, maxPdfPages = DEFAULT_MAX_PDF_PAGES }) => {
  const { pdfjs, assetsDir } = await loadPdfjs();
  const loadingTask = pdfjs.getDocument({
    data: new Uint8Array(bytes), // a copy: pdfjs may transfer (detach) the buffer it is given
    // Node's pdfjs reads these with fs.readFile(base + name): plain paths, trailing separator
    // required. Without the CMaps, text in non-embedded CJK fonts comes out empty.
    cMapUrl: path.join(assetsDir, 'cmaps') + path.sep,
    cMapPacked: true,
    standardFontDataUrl: path.join(assetsDir, 'standard_fonts') + path.sep,
    wasmUrl: path.join(assetsDir, 'wasm') + path.sep, // JPEG 2000 / JBIG2 decoders, for image-heavy pages
    isEvalSupported: false, // never compile code from a document
    verbosity: 0, // errors only: font warnings are noise in an indexing log
  });
  let pdf: PDFDocumentProxy | undefined;
  try {
    try {
      pdf = await loadingTask.promise;
    } catch (error) {
      const name = (error as Error)?.name;
      if (name === 'PasswordException') return failed('password-protected PDF');
      if (name === 'InvalidPDFException') return failed(`corrupt PDF: ${(error as Error).message}`);
      throw error;
    }
    const pages: { page: number; text: string }[] = [];
    const read = Math.min(pdf.numPages, maxPdfPages, Math.floor(PAGE_LOOKUP_BUDGET / Math.max(1, pdf.numPages)));
    for (let page = 1; page <= read; page++) pages.push({ page, text: await pageText(pdf, page) });
    if (pages.every((p) => p.text.trim() === '')) {
      return failed(pdf.numPages === 0 ? 'corrupt PDF: no pages' : 'scanned PDF: no text layer');
    }
    const doc = pageDocument(pages, (await metadataTitle(pdf)) ?? fileName, pdf.numPages);
    if (read < pdf.numPages) doc.note = `only the first ${read} of ${pdf.numPages} pages indexed (page limit)`;
    return parsed(doc);
  } finally {
    await loadingTask.destroy();
  }
};

async function pageText(pdf: PDFDocumentProxy, pageNumber: number): Promise<string> {
  const page = await pdf.getPage(pageNumber);
  try {
    const content = await page.getTextContent();
    let text = '';
    for (const item of content.items) {
      if (!('str' in item)) continue; // marked-content markers carry no text
      text += item.str;
      if (item.hasEOL) text += '\n';
    }
    return text;
  } finally {
    page.cleanup();
  }
}

async function metadataTitle(pdf: PDFDocumentProxy): Promise<string | undefined> {
  try {
    const { info } = await pdf.getMetadata();
    const title = (info as { Title?: unknown }).Title;
    return typeof title === 'string' && title.trim() ? title.trim() : undefined;
  } catch {
    return undefined; // broken metadata is no reason to lose the text
  }
}

function pageDocument(pages: { page: number; text: string }[], title: string, pageCount: number): ParsedDocument {
  const sections: DocumentSection[] = [];
  let text = '';
  for (const { page, text: pageText } of pages) {
    if (pageText.trim() === '') continue;
    if (text) text += PAGE_SEPARATOR;
    const start = text.length;
    text += pageText;
    const section = sectionOf(text, start, text.length, { page });
    if (section) sections.push(section);
  }
  return { title, parser: 'pdf', textKind: 'prose', text, sections, pageCount };
}
