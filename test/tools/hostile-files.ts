// Hostile files built on the fly, so none has to be committed: a PDF whose page tree is one flat
// list of many pages (pdf.js looks pages up in time that grows with the square of the count), and
// ZIP archives written entry by entry with a streamed deflate, so a DOCX that inflates to hundreds
// of megabytes is built in little memory and stays small on disk.
import { once } from 'node:events';
import zlib from 'node:zlib';

/**
 * A PDF 1.4 file with `pageCount` pages, all kids of the root Pages node (no intermediate nodes),
 * each showing `textOf(page)` in Helvetica. Written by hand with a correct cross-reference table.
 */
export function flatPageTreePdf(pageCount: number, textOf: (page: number) => string = (p) => `Page ${p} of the flat tree.`): Buffer {
  const objects: string[] = []; // objects[i] is object number i + 1
  const pageObject = (p: number) => 4 + 2 * (p - 1);
  objects.push('<< /Type /Catalog /Pages 2 0 R >>');
  const kids = Array.from({ length: pageCount }, (_, i) => `${pageObject(i + 1)} 0 R`).join(' ');
  objects.push(`<< /Type /Pages /Count ${pageCount} /Kids [${kids}] >>`);
  objects.push('<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica /Encoding /WinAnsiEncoding >>');
  for (let p = 1; p <= pageCount; p++) {
    objects.push(
      `<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Resources << /Font << /F1 3 0 R >> >> /Contents ${pageObject(p) + 1} 0 R >>`,
    );
    const text = textOf(p).replace(/[\\()]/g, (c) => `\\${c}`);
    const stream = `BT /F1 12 Tf 72 720 Td (${text}) Tj ET`;
    objects.push(`<< /Length ${stream.length} >>\nstream\n${stream}\nendstream`);
  }
  let body = '%PDF-1.4\n';
  const offsets: number[] = [];
  objects.forEach((object, i) => {
    offsets.push(body.length);
    body += `${i + 1} 0 obj\n${object}\nendobj\n`;
  });
  const xrefAt = body.length;
  body += `xref\n0 ${objects.length + 1}\n0000000000 65535 f \n`;
  for (const offset of offsets) body += `${String(offset).padStart(10, '0')} 00000 n \n`;
  body += `trailer\n<< /Size ${objects.length + 1} /Root 1 0 R >>\nstartxref\n${xrefAt}\n%%EOF\n`;
  return Buffer.from(body, 'latin1');
}

/** One member of a ZIP archive: `prefix`, then `chunk` repeated `repeat` times (default 1), then `suffix`. */
export interface ZipMember {
  name: string;
  prefix?: string;
  chunk: Buffer | string;
  repeat?: number;
  suffix?: string;
  /** Sizes written in the headers instead of the true ones (a lying archive). */
  declaredUncompressedSize?: number;
  /** zlib level (default 9; 1 is much faster on large, varied text). */
  level?: number;
}

/** A ZIP archive (deflate, no data descriptors, no ZIP64) built with a streamed deflate per member. */
export async function zipArchive(members: ZipMember[]): Promise<Buffer> {
  const parts: Buffer[] = [];
  const central: Buffer[] = [];
  let offset = 0;
  for (const member of members) {
    const chunk = Buffer.isBuffer(member.chunk) ? member.chunk : Buffer.from(member.chunk, 'utf8');
    const prefix = Buffer.from(member.prefix ?? '', 'utf8');
    const suffix = Buffer.from(member.suffix ?? '', 'utf8');
    const repeat = member.repeat ?? 1;
    let crc = zlib.crc32(prefix);
    for (let i = 0; i < repeat; i++) crc = zlib.crc32(chunk, crc);
    crc = zlib.crc32(suffix, crc);
    const compressed = await deflateRepeated(prefix, chunk, repeat, suffix, member.level ?? 9);
    const size = member.declaredUncompressedSize ?? prefix.length + chunk.length * repeat + suffix.length;
    const name = Buffer.from(member.name, 'utf8');
    const local = Buffer.alloc(30);
    local.writeUInt32LE(0x04034b50, 0);
    local.writeUInt16LE(20, 4); // version needed
    local.writeUInt16LE(0x0800, 6); // UTF-8 names
    local.writeUInt16LE(8, 8); // deflate
    local.writeUInt32LE(crc >>> 0, 14);
    local.writeUInt32LE(compressed.length, 18);
    local.writeUInt32LE(size, 22);
    local.writeUInt16LE(name.length, 26);
    const header = Buffer.alloc(46);
    header.writeUInt32LE(0x02014b50, 0);
    header.writeUInt16LE(20, 4);
    header.writeUInt16LE(20, 6);
    header.writeUInt16LE(0x0800, 8);
    header.writeUInt16LE(8, 10);
    header.writeUInt32LE(crc >>> 0, 16);
    header.writeUInt32LE(compressed.length, 20);
    header.writeUInt32LE(size, 24);
    header.writeUInt16LE(name.length, 28);
    header.writeUInt32LE(offset, 42);
    central.push(header, name);
    parts.push(local, name, compressed);
    offset += local.length + name.length + compressed.length;
  }
  const directory = Buffer.concat(central);
  const end = Buffer.alloc(22);
  end.writeUInt32LE(0x06054b50, 0);
  end.writeUInt16LE(members.length, 8);
  end.writeUInt16LE(members.length, 10);
  end.writeUInt32LE(directory.length, 12);
  end.writeUInt32LE(offset, 16);
  return Buffer.concat([...parts, directory, end]);
}

async function deflateRepeated(prefix: Buffer, chunk: Buffer, repeat: number, suffix: Buffer, level: number): Promise<Buffer> {
  const deflate = zlib.createDeflateRaw({ level });
  const out: Buffer[] = [];
  deflate.on('data', (c: Buffer) => out.push(c));
  const done = once(deflate, 'end');
  deflate.write(prefix);
  for (let i = 0; i < repeat; i++) {
    if (!deflate.write(chunk)) await once(deflate, 'drain');
  }
  deflate.end(suffix);
  await done;
  return Buffer.concat(out);
}

const CONTENT_TYPES =
  '<?xml version="1.0" encoding="UTF-8"?><Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types">' +
  '<Default Extension="rels" ContentType="application/vnd.openxmlformats-package.relationships+xml"/><Default Extension="xml" ContentType="application/xml"/>' +
  '<Override PartName="/word/document.xml" ContentType="application/vnd.openxmlformats-officedocument.wordprocessingml.document.main+xml"/></Types>';
const PACKAGE_RELS =
  '<?xml version="1.0" encoding="UTF-8"?><Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships">' +
  '<Relationship Id="rId1" Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/officeDocument" Target="word/document.xml"/></Relationships>';
const DOCUMENT_OPEN =
  '<?xml version="1.0" encoding="UTF-8"?><w:document xmlns:w="http://schemas.openxmlformats.org/wordprocessingml/2006/main"><w:body>';
const DOCUMENT_CLOSE = '</w:body></w:document>';

/**
 * A DOCX whose word/document.xml repeats one paragraph until it is about `inflatedBytes` long: a
 * decompression bomb when the paragraph is repetitive (deflate reaches ~1000:1).
 */
export async function docxBomb(inflatedBytes: number, paragraph = 'All work and no play makes Jack a dull boy. '): Promise<Buffer> {
  const unit = `<w:p><w:r><w:t>${paragraph.repeat(Math.max(1, Math.floor(4096 / paragraph.length)))}</w:t></w:r></w:p>`;
  const repeat = Math.max(1, Math.round(inflatedBytes / unit.length));
  return zipArchive([
    { name: '[Content_Types].xml', chunk: CONTENT_TYPES },
    { name: '_rels/.rels', chunk: PACKAGE_RELS },
    { name: 'word/document.xml', prefix: DOCUMENT_OPEN, chunk: unit, repeat, suffix: DOCUMENT_CLOSE },
  ]);
}
