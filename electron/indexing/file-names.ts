// File names as text. A POSIX file name is bytes, not necessarily UTF-8 (Latin-1 archives, names
// like "\xff\xfe"): such a name keeps its bytes for the file system (a Buffer path) and is shown,
// and stored in the index, with each byte that is not UTF-8 written \xHH: the notation the CLI
// prints control characters in (electron/cli/terminal-text.ts), so what it prints matches what the
// app shows.

/** A name's bytes as text: UTF-8 decoded, each byte outside a valid sequence as \xHH. */
export function nameFromBytes(bytes: Uint8Array): { name: string; exact: boolean } {
  const strict = new TextDecoder('utf-8', { fatal: true });
  try {
    return { name: strict.decode(bytes), exact: true };
  } catch {
    // decode sequence by sequence below
  }
  let name = '';
  let at = 0;
  while (at < bytes.length) {
    const length = utf8SequenceLength(bytes, at);
    if (length === 0) {
      name += `\\x${hex(bytes[at])}`;
      at++;
    } else {
      name += strict.decode(bytes.subarray(at, at + length));
      at += length;
    }
  }
  return { name, exact: false };
}

function hex(byte: number): string {
  return byte.toString(16).padStart(2, '0');
}

/** Length of the valid UTF-8 sequence starting at `at`, or 0 when the byte there starts none. */
function utf8SequenceLength(bytes: Uint8Array, at: number): number {
  const b0 = bytes[at];
  if (b0 < 0x80) return 1;
  let length: number;
  let min: number;
  if (b0 >= 0xc2 && b0 <= 0xdf) [length, min] = [2, 0x80];
  else if (b0 >= 0xe0 && b0 <= 0xef) [length, min] = [3, 0x800];
  else if (b0 >= 0xf0 && b0 <= 0xf4) [length, min] = [4, 0x10000];
  else return 0;
  if (at + length > bytes.length) return 0;
  let code = b0 & (0xff >> (length + 1));
  for (let i = 1; i < length; i++) {
    const b = bytes[at + i];
    if ((b & 0xc0) !== 0x80) return 0;
    code = (code << 6) | (b & 0x3f);
  }
  // overlong forms, surrogates and code points past U+10FFFF are not valid UTF-8
  if (code < min || (code >= 0xd800 && code <= 0xdfff) || code > 0x10ffff) return 0;
  return length;
}
