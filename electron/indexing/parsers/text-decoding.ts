// Bytes -> string for every text format: BOMs first, then strict UTF-8, then a declared charset
// (HTML <meta>), then chardet's guess. Binary content is recognised here so no parser sees it,
// anywhere in the file: a text header with a binary tail, or a UTF-16 BOM in front of binary,
// would otherwise become hundreds of passages of garbage.
import chardet from 'chardet';
import iconv from 'iconv-lite';
import { hasUnprintableStretch, looksBinary } from './binary-content.ts';

export type DecodeOutcome = { kind: 'text'; text: string; encoding: string } | { kind: 'binary' };

const DETECT_SAMPLE_BYTES = 64 * 1024;

export function decodeTextBytes(bytes: Uint8Array, declaredEncoding?: string): DecodeOutcome {
  const bom = byteOrderMark(bytes);
  let text: string;
  let encoding: string;
  if (bom) {
    // UTF-16 is full of NUL bytes: only the decoded text can say whether it is binary.
    encoding = bom;
    text = iconv.decode(Buffer.from(bytes), bom);
  } else {
    if (looksBinary(bytes)) return { kind: 'binary' };
    const utf8 = strictUtf8(bytes);
    encoding = utf8 !== null ? 'utf-8' : pickEncoding(bytes, declaredEncoding);
    text = utf8 ?? iconv.decode(Buffer.from(bytes), encoding);
  }
  if (hasUnprintableStretch(text)) return { kind: 'binary' };
  return { kind: 'text', text, encoding };
}

function byteOrderMark(bytes: Uint8Array): string | undefined {
  if (bytes[0] === 0xef && bytes[1] === 0xbb && bytes[2] === 0xbf) return 'utf-8';
  if (bytes[0] === 0xff && bytes[1] === 0xfe) return 'utf-16le';
  if (bytes[0] === 0xfe && bytes[1] === 0xff) return 'utf-16be';
  return undefined;
}

function strictUtf8(bytes: Uint8Array): string | null {
  try {
    return new TextDecoder('utf-8', { fatal: true }).decode(bytes);
  } catch {
    return null;
  }
}

function pickEncoding(bytes: Uint8Array, declaredEncoding: string | undefined): string {
  if (declaredEncoding && iconv.encodingExists(declaredEncoding) && !/^utf-?8$/i.test(declaredEncoding)) {
    return windowsSuperset(declaredEncoding);
  }
  const guess = chardet.detect(bytes.subarray(0, DETECT_SAMPLE_BYTES));
  // A UTF-8 guess here means "almost UTF-8" (we already know it is not valid): Latin-1 family is
  // the usual culprit, and windows-1252 decodes every byte.
  if (!guess || /^utf/i.test(guess) || !iconv.encodingExists(guess)) return 'windows-1252';
  return windowsSuperset(guess);
}

/** Browsers decode ISO-8859-1 labels as windows-1252 (curly quotes, euro sign in 0x80-0x9F); so do we. */
function windowsSuperset(encoding: string): string {
  return /^(iso-?8859-1|latin-?1|us-ascii|ascii)$/i.test(encoding) ? 'windows-1252' : encoding;
}
