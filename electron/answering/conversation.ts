// A conversation a client sends whole (an OpenAI-style API is stateless: every request carries the
// transcript). Two prompts come from it here:
//   - a plain chat (no documents): the system prompt and the earlier turns rendered through the
//     model's chat template, up to the user's new message, which forms the final block;
//   - a library question whose earlier turns are not in a chat's KV (chat-context.ts): those turns as
//     text at the start of its final block, so the model still sees them (the instruction block stays
//     the stored passages' fixed prefix).
import { chatFrame, type ChatTurn } from '../../native-models/chat-template.ts';
import type { Engine } from '../../native-models/engine.ts';
import { SYSTEM_INSTRUCTION, type PromptFrame } from './prompt-blocks.ts';

export type { ChatTurn };

/** A plain chat's frame: system turn, earlier turns and the user header as its first block; no documents. */
export function plainChatFrame(engine: Engine, system = SYSTEM_INSTRUCTION, history: readonly ChatTurn[] = []): PromptFrame {
  const frame = chatFrame(engine.model, system, history);
  // no documents, so no answer instruction: none may open the final block (plainFinalText)
  const answerInstruction = 'instruction';
  if (!frame) {
    // no template: the raw layout of prompt-blocks.ts (Question / Answer lines)
    const turns = history.map((t) => (t.role === 'user' ? `Question: ${t.content.trim()}\n` : `Answer: ${t.content.trim()}\n\n`)).join('');
    return { system, instructionIds: engine.tokenizer.encode(`${system}\n\n${turns}`, { bos: true }), answerInstruction, after: '\nAnswer:', templated: false };
  }
  return { system, instructionIds: engine.tokenizer.encode(frame.before), answerInstruction, after: frame.after, templated: true };
}

/** A plain chat's final block: the user's message and the template's text through the assistant header. */
export function plainFinalText(question: string, frame: PromptFrame): string {
  return `${frame.templated ? '' : 'Question: '}${question.trim()}${frame.after}`;
}

/** Earlier turns as text, for the start of a library question's final block ('' without any). */
export function transcriptText(history: readonly ChatTurn[]): string {
  if (history.length === 0) return '';
  const lines = history.map((t) => `${t.role === 'user' ? 'Question' : 'Answer'}: ${t.content.trim()}\n`).join('');
  return `Earlier in this conversation:\n${lines}\n`;
}
