// Bytes -> string for every text format: BOMs first, then strict UTF-8, then a declared charset
// (HTML <meta>), then chardet's guess. Binary content is recognised here so no parser sees it,
// anywhere in the file: a text header with a binary tail, or a UTF-16 BOM in front of binary,
// would otherwise become hundreds of passages of garbage.
import chardet from 'chardet';
import iconv from 'iconv-lite';

export type DecodeOutcome = { kind: 'text'; text: string; encoding: string } | { kind: 'binary' };

const BINARY_SAMPLE_BYTES = 8192;
const DETECT_SAMPLE_BYTES = 64 * 1024;
/** Share of control characters above which a NUL-free sample is still treated as binary. */
const MAX_CONTROL_SHARE = 0.1;
/** NUL bytes past the first window that make a window binary (random data has ~32 per 8 KB). */
const MAX_NULS_PER_WINDOW = 8;
/** Characters per window of decoded text, and the share of them that may be unprintable. */
const TEXT_WINDOW = 4096;
const MAX_UNPRINTABLE_SHARE = 0.05;

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

/**
 * The heuristic git and grep use on the first 8 KB (a NUL byte, or many control characters),
 * then every further 8 KB window: many control characters, or more than a stray NUL or two.
 */
export function looksBinary(bytes: Uint8Array): boolean {
  for (let start = 0; start < bytes.length; start += BINARY_SAMPLE_BYTES) {
    const window = bytes.subarray(start, start + BINARY_SAMPLE_BYTES);
    let control = 0;
    let nuls = 0;
    for (const b of window) {
      if (b === 0) nuls++;
      // Tab, LF, VT, FF, CR and ESC (ANSI colours in logs) are normal in text.
      else if ((b < 0x20 && !(b >= 0x09 && b <= 0x0d) && b !== 0x1b) || b === 0x7f) control++;
    }
    if (nuls > (start === 0 ? 0 : MAX_NULS_PER_WINDOW - 1)) return true;
    if ((control + nuls) / window.length > MAX_CONTROL_SHARE) return true;
  }
  return false;
}

/**
 * Whether some window of the decoded text is more than 5% characters no text has: NUL and other
 * C0/C1 controls, U+FFFD (bytes the encoding could not decode), lone surrogates, private-use
 * characters (random bytes read as UTF-16 land there ~10% of the time). The last window takes
 * the remainder, so a short tail is judged with its neighbour, not alone.
 */
export function hasUnprintableStretch(text: string): boolean {
  for (let start = 0; start < text.length; start += TEXT_WINDOW) {
    const end = text.length - start < 2 * TEXT_WINDOW ? text.length : start + TEXT_WINDOW;
    let unprintable = 0;
    for (let i = start; i < end; i++) {
      const c = text.charCodeAt(i);
      if (c < 0x20) {
        if (!(c >= 0x09 && c <= 0x0d) && c !== 0x1b) unprintable++;
      } else if (c >= 0x7f && c <= 0x9f) unprintable++;
      else if (c === 0xfffd || (c >= 0xe000 && c <= 0xf8ff)) unprintable++;
      else if (c >= 0xd800 && c <= 0xdbff) {
        const next = i + 1 < text.length ? text.charCodeAt(i + 1) : 0;
        if (next >= 0xdc00 && next <= 0xdfff) i++; // a pair: one character
        else unprintable++;
      } else if (c >= 0xdc00 && c <= 0xdfff) unprintable++;
    }
    if (unprintable > MAX_UNPRINTABLE_SHARE * (end - start)) return true;
    if (end === text.length) break;
  }
  return false;
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
