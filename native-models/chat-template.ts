// The model's chat template, cut into the text before and after the user's message, so that block
// texts can be wrapped the way the model was trained: template prefix + blocks + question + suffix.
import { Template } from '@huggingface/jinja';
import type { ModelFolder } from './model-folder.ts';

export interface ChatFrame {
  /** Text before the user's content (system turn, user header); carries BOS when the template writes it. */
  before: string;
  /** Text after it, through the assistant header. */
  after: string;
}

const MARK = '\u2063QUIRE-USER-CONTENT\u2063';

function tokenText(value: unknown): string {
  if (typeof value === 'string') return value;
  if (value && typeof value === 'object' && typeof (value as { content?: unknown }).content === 'string') {
    return (value as { content: string }).content;
  }
  return '';
}

/** An earlier turn of a conversation, rendered before the user's message. */
export interface ChatTurn {
  role: 'user' | 'assistant';
  content: string;
}

/**
 * Undefined when the model has no template; throws when the template cannot render a plain user
 * turn. `history`: earlier turns, which end up in `before`.
 */
export function chatFrame(
  model: Pick<ModelFolder, 'chatTemplate' | 'tokenizerConfig'>,
  system?: string,
  history: readonly ChatTurn[] = [],
): ChatFrame | undefined {
  if (!model.chatTemplate) return undefined;
  const messages = [...(system ? [{ role: 'system', content: system }] : []), ...history, { role: 'user', content: MARK }];
  const rendered = new Template(model.chatTemplate).render({
    messages,
    add_generation_prompt: true,
    bos_token: tokenText(model.tokenizerConfig.bos_token),
    eos_token: tokenText(model.tokenizerConfig.eos_token),
    pad_token: tokenText(model.tokenizerConfig.pad_token),
    unk_token: tokenText(model.tokenizerConfig.unk_token),
  });
  const at = rendered.indexOf(MARK);
  if (at < 0 || rendered.indexOf(MARK, at + 1) >= 0) throw new Error('chat template does not render the user message exactly once');
  return { before: rendered.slice(0, at), after: rendered.slice(at + MARK.length) };
}
