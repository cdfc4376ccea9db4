// DOCX: mammoth turns the document into HTML (Word heading styles become h1-h6, the Title style
// becomes h1), and the HTML parser lays out the text and sections. Images are dropped, not inlined.
import { htmlToDocument } from './html.ts';
import { failed, parsed, type FormatParser } from './types.ts';

const STYLE_MAP = ["p[style-name='Title'] => h1:fresh", "p[style-name='Subtitle'] => h2:fresh"];

export const parseDocx: FormatParser = async ({ bytes, fileName }) => {
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
    // Truncated or non-zip files, zips without word/document.xml, malformed XML.
    return failed(`corrupt DOCX: ${error instanceof Error ? error.message : String(error)}`);
  }
  return parsed(htmlToDocument(html, fileName, 'docx'));
};
