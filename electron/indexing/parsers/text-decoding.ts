// Bytes -> string for every text format: BOMs first, then strict UTF-8, then a declared charset
// (HTML <meta>), then chardet's guess. Binary content is recognised here so no parser sees it.
import chardet from 'chardet';
import iconv from 'iconv-lite';

export type DecodeOutcome = { kind: 'text'; text: string; encoding: string } | { kind: 'binary' };

const BINARY_SAMPLE_BYTES = 8192;
const DETECT_SAMPLE_BYTES = 64 * 1024;
/** Share of control characters above which a NUL-free sample is still treated as binary. */
const MAX_CONTROL_SHARE = 0.1;

export function decodeTextBytes(bytes: Uint8Array, declaredEncoding?: string): DecodeOutcome {
  const bom = byteOrderMark(bytes);
  if (bom) return { kind: 'text', text: iconv.decode(Buffer.from(bytes), bom), encoding: bom };
  if (looksBinary(bytes)) return { kind: 'binary' };
  const utf8 = strictUtf8(bytes);
  if (utf8 !== null) return { kind: 'text', text: utf8, encoding: 'utf-8' };
  const encoding = pickEncoding(bytes, declaredEncoding);
  return { kind: 'text', text: iconv.decode(Buffer.from(bytes), encoding), encoding };
}

/** NUL bytes, or many control characters, in the first few KB (the heuristic git and grep use). */
export function looksBinary(bytes: Uint8Array): boolean {
  const sample = bytes.subarray(0, BINARY_SAMPLE_BYTES);
  let control = 0;
  for (const b of sample) {
    if (b === 0) return true;
    // Tab, LF, VT, FF, CR and ESC (ANSI colours in logs) are normal in text.
    if ((b < 0x20 && !(b >= 0x09 && b <= 0x0d) && b !== 0x1b) || b === 0x7f) control++;
  }
  return sample.length > 0 && control / sample.length > MAX_CONTROL_SHARE;
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
