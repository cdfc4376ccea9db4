// Text from files (names, titles, passages, answers) printed to a terminal: control characters would
// move the cursor, recolour or rewrite the screen (a file named "a\x1b[2Jb" clears it) or split one
// line in two. They are shown escaped instead, as \n, \t, \x1b, \u202e (bidirectional overrides
// reorder what follows). The \xHH notation is the one file names that are not UTF-8 are stored with
// (electron/indexing/file-names.ts), so a name prints the same whichever way it was odd.
// Backslashes stay as they are (Windows paths are full of them), so the escaped form is for reading,
// not for parsing back: scripts use --json (JSON.stringify escapes control characters itself).

// C0 and DEL, C1, and the invisible format characters that reorder or hide text (Arabic letter mark,
// zero-width characters, LRM/RLM, line/paragraph separators, bidi embeddings, overrides and
// isolates, the byte order mark).
// eslint-disable-next-line no-control-regex -- finding control characters is the point
const UNSAFE = /[\u0000-\u001f\u007f-\u009f\u061c\u200b-\u200f\u2028-\u202e\u2066-\u2069\ufeff]/g;

const NAMED: Record<string, string> = { '\n': '\\n', '\r': '\\r', '\t': '\\t' };

/**
 * `text` safe to print on one terminal line. With `keepLineBreaks`, \n and \t stay as they are (an
 * answer streamed to the terminal keeps its lines; an escape sequence in it does not).
 */
export function escapeForTerminal(text: string, options: { keepLineBreaks?: boolean } = {}): string {
  return text.replace(UNSAFE, (c) => {
    if (options.keepLineBreaks && (c === '\n' || c === '\t')) return c;
    const named = NAMED[c];
    if (named) return named;
    const code = c.charCodeAt(0);
    return code <= 0xff ? `\\x${code.toString(16).padStart(2, '0')}` : `\\u${code.toString(16).padStart(4, '0')}`;
  });
}
