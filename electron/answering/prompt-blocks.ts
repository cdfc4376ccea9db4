// The prompt of a question, cut into blocks as in the method brief (docs/block-attention.md,
// "Segmentation used for RAG"), rendered through the model's chat template:
//   block 0  instruction: template text before the user content (system turn, user header, BOS where
//            the template writes one) + the introduction to the documents;
//   1..k     one block per passage: "- Title: {title}\n{text}\n", no special tokens;
//   final    the answering instruction, "Question: ...", and the template's text after the user
//            content through the assistant header.
// Models without a chat template get the same texts raw (BOS on the instruction block where used).
import { blockText } from '../indexing/passages.ts';
import { chatFrame } from '../../native-models/chat-template.ts';
import type { Engine } from '../../native-models/engine.ts';

export const SYSTEM_INSTRUCTION =
  "You are an intelligent AI assistant. Please answer questions based on the user's instructions.";

export const DOCUMENTS_INTRO = 'Below are some reference documents that may help you in answering the user\'s question.\n\n';

export const ANSWER_INSTRUCTION =
  'Please write a high-quality answer for the given question using only the provided search documents ' +
  '(some of which might be irrelevant). Cite the documents you use as [n]. If the documents do not ' +
  'contain the answer, say that they do not.\n';

/** The token ids of the texts a question's prompt is made of, for one model. */
export interface PromptFrame {
  /** Instruction block (block 0): the same for every question, so its KV is computed once per engine. */
  instructionIds: number[];
  /** Text appended after the question (closes the user turn, opens the assistant turn). */
  after: string;
  /** Whether a chat template is used (false: raw texts). */
  templated: boolean;
}

/** Needs the model folder and tokenizer only (no session): `quire status` computes KV keys without loading a model. */
export function promptFrame(engine: Pick<Engine, 'model' | 'tokenizer'>): PromptFrame {
  const frame = chatFrame(engine.model, SYSTEM_INSTRUCTION);
  if (!frame) {
    return {
      instructionIds: engine.tokenizer.encode(`${SYSTEM_INSTRUCTION}\n${DOCUMENTS_INTRO}`, { bos: true }),
      after: '\nAnswer:',
      templated: false,
    };
  }
  return { instructionIds: engine.tokenizer.encode(frame.before + DOCUMENTS_INTRO), after: frame.after, templated: true };
}

/** A passage block's text: the indexer's block format (title line, then the text). */
export function passageBlockText(passage: { title: string | null; text: string }): string {
  return blockText(passage.title ?? '', passage.text);
}

export function finalBlockText(question: string, frame: PromptFrame): string {
  return `${ANSWER_INSTRUCTION}Question: ${question.trim()}\n${frame.after}`;
}
