// Telling binary content from text, anywhere in a file: on the bytes (before decoding) and on the
// decoded text (after). No dependencies, so the Electron main process can check a file's first
// bytes (open-path.ts) without loading the decoders.

const BINARY_SAMPLE_BYTES = 8192;
/** Share of control characters above which a NUL-free sample is still treated as binary. */
const MAX_CONTROL_SHARE = 0.1;
/** NUL bytes past the first window that make a window binary (random data has ~32 per 8 KB). */
const MAX_NULS_PER_WINDOW = 8;
/** Characters per window of decoded text, and the share of them that may be unprintable. */
const TEXT_WINDOW = 4096;
const MAX_UNPRINTABLE_SHARE = 0.05;

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
