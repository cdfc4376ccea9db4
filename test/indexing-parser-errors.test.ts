// A parser that throws must fail its file only. The Markdown parser is replaced by one that throws
// (vi.mock is hoisted and applies to this whole file, so this lives apart from the parser tests).
import { describe, expect, it, vi } from 'vitest';
import { parseBytes } from '../electron/indexing/parsers/index.ts';

vi.mock('../electron/indexing/parsers/markdown.ts', () => ({
  parseMarkdown: () => {
    throw new Error('unexpected token in heading');
  },
}));

describe('a throwing parser', () => {
  it('fails that file with the parser name and message, and other formats still parse', async () => {
    const bytes = new TextEncoder().encode('# Title\n\nBody.\n');
    expect(await parseBytes(bytes, 'notes.md')).toEqual({
      ok: false,
      status: 'failed',
      reason: 'markdown parser error: unexpected token in heading',
    });
    const text = await parseBytes(bytes, 'notes.txt');
    expect(text.ok && text.doc.parser).toBe('text');
  });
});
