// DOCX: mammoth turns the document into HTML (Word heading styles become h1-h6, the Title style
// becomes h1), and the HTML parser lays out the text and sections. Images are dropped, not inlined.
// Before mammoth inflates anything, the archive is held to DOCX_LIMITS (zip-limits.ts): a 600 KB
// file that inflates to 200 MB of XML is refused in milliseconds instead of exhausting memory.
import { htmlToDocument } from './html.ts';
import { failed, parsed, type FormatParser } from './types.ts';
import { zipLimitProblem, type ZipLimits } from './zip-limits.ts';

const STYLE_MAP = ["p[style-name='Title'] => h1:fresh", "p[style-name='Subtitle'] => h2:fresh"];

/**
 * mammoth reads the XML parts (document, styles, numbering, notes, relationships); media are never
 * inflated (images are dropped), so they are held to the ratio check only. 64 MB of XML is a
 * document of several thousand pages; mammoth's tree of it needs several hundred MB of heap.
 */
export const DOCX_LIMITS: ZipLimits = {
  maxEntries: 10_000,
  maxReadBytes: 64 * 1024 * 1024,
  // Word's XML deflates about 5-20:1; only repeated runs get near deflate's ~1000:1 ceiling.
  maxRatio: 100,
  ratioFloorBytes: 1024 * 1024,
  isRead: (name) => /\.(xml|rels)$/i.test(name),
};

export const parseDocx: FormatParser = async ({ bytes, fileName }) => {
  const problem = zipLimitProblem(bytes, DOCX_LIMITS);
  if (problem) return failed(problem.kind === 'corrupt' ? `corrupt DOCX: ${problem.message}` : `DOCX ${problem.message}`);
  const { default: mammoth } = await import('mammoth');
  let html: string;
  try {
    const result = await mammoth.convertToHtml(
      { buffer: Buffer.from(bytes) },
      {
        styleMap: STYLE_MAP,
        ignoreEmptyParagraphs: true,
        convertImage: mammoth.images.imgElement(async () => ({ src: '' })),
        externalFileAccess: false, // a document must not make us read other files
      },
    );
    html = result.value;
  } catch (error) {
    // Zips without word/document.xml, malformed XML.
    return failed(`corrupt DOCX: ${error instanceof Error ? error.message : String(error)}`);
  }
  return parsed(htmlToDocument(html, fileName, 'docx'));
};
