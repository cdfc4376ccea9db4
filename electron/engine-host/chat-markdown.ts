// A chat as a Markdown document (chats.export): the questions, the answers as written (they are
// Markdown already), each answer's cited sources by file and page, stopped answers marked. Readable
// on its own: a source names its file by full path, since the reader may not have the library.
import type { Chat, Message } from '../../db/chats.ts';

/** A file name for the export: the chat's title in safe characters. */
export function exportFileName(title: string): string {
  const safe = title
    .normalize('NFKD')
    .replace(/[^\p{L}\p{N}]+/gu, '-')
    .replace(/^-+|-+$/g, '')
    .slice(0, 60)
    .replace(/-+$/, '');
  return `${safe || 'chat'}.md`;
}

/** A quoted block of the user's text (every line behind "> "). */
const quoted = (text: string) =>
  text
    .trim()
    .split('\n')
    .map((line) => `> ${line}`.trimEnd())
    .join('\n');

export function chatMarkdown(chat: Chat, messages: readonly Message[], options: { folderPath?: string | null; now?: Date } = {}): string {
  const out = [`# ${chat.title || 'Untitled chat'}`, ''];
  const when = (options.now ?? new Date()).toISOString().slice(0, 10);
  out.push(`_Exported from Quire on ${when}. Searched ${options.folderPath ? `the folder ${options.folderPath}` : 'every folder in the library'}._`, '');
  for (const m of messages) {
    if (m.role === 'system') continue;
    if (m.role === 'user') {
      out.push('## Question', '', quoted(m.content), '');
      continue;
    }
    out.push('## Answer', '', m.content.trim() || '_(no text)_', '');
    if (m.stopped) out.push('_Stopped before the end of the answer._', '');
    if (m.citations.length > 0) {
      out.push('Sources:', '');
      for (const c of m.citations) {
        const where = [c.title && c.title !== c.documentPath ? c.title : null, c.page ? `page ${c.page}` : null].filter(Boolean).join(', ');
        out.push(`- [${c.ordinal}] \`${c.documentPath}\`${where ? ` (${where})` : ''}`);
      }
      out.push('');
    }
  }
  return `${out.join('\n').trimEnd()}\n`;
}
