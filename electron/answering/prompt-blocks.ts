// The prompt of a question, cut into blocks as in the method brief (docs/block-attention.md,
// "Segmentation used for RAG"), rendered through the model's chat template:
//   block 0  instruction: template text before the user content (system turn, user header, BOS where
//            the template writes one) + the answer instruction (shared-prefix mode, see below) +
//            the introduction to the documents;
//   1..k     one block per passage: "- Title: {title}\n{text}\n", no special tokens;
//   final    the answer instruction (isolated mode, as the paper has it), "Question: ...", and the
//            template's text after the user content through the assistant header.
// Models without a chat template get the same texts raw (BOS on the instruction block where used).
import { blockText } from '../indexing/passages.ts';
import { chatFrame } from '../../native-models/chat-template.ts';
import type { Engine } from '../../native-models/engine.ts';
import type { QualityMode } from './quality-mode-names.ts';
import { defaultQualityMode } from './quality-modes.ts';

export const SYSTEM_INSTRUCTION =
  "You are an intelligent AI assistant. Please answer questions based on the user's instructions.";

export const DOCUMENTS_INTRO = 'Below are some reference documents that may help you in answering the user\'s question.\n\n';

export const ANSWER_INSTRUCTION =
  'Please write a high-quality answer for the given question using only the provided search documents ' +
  '(some of which might be irrelevant). Cite the documents you use as [n]. If the documents do not ' +
  'contain the answer, say that they do not.\n';

/**
 * Where the fixed answer instruction sits: 'final' opens the final block (the method brief's
 * segmentation), 'instruction' closes block 0, before the passages: computed once per engine, seen
 * by every shared-prefix passage block as it is computed, and out of the final block, which is then
 * a third as long (docs/ARCHITECTURE.md, "Where the answer instruction sits").
 */
export type AnswerInstructionPlacement = 'final' | 'instruction';

/**
 * Decided with `npm run bench:fidelity` (docs/BENCHMARKS.md): with shared-prefix passages (ordinary
 * models) fixed text before the passages moves the final block's distributions no more than in the
 * final block (KL 2.5e-3 vs 3.6e-3 nats, a difference within noise) and cuts the final block by two
 * thirds; with isolated passages (block fine-tuned models, trained on the paper's segmentation) it
 * costs fidelity (KL 7.0e-3 vs 4.7e-3, worse on 34 of 40 prompts), so it stays in the final block.
 */
export function answerInstructionFor(mode: QualityMode): AnswerInstructionPlacement {
  return mode === 'isolated' ? 'final' : 'instruction';
}

/** The placement for the model's default quality mode (an answer context follows its own mode). */
export function defaultAnswerInstruction(engine: Pick<Engine, 'model'>): AnswerInstructionPlacement {
  return answerInstructionFor(defaultQualityMode(engine));
}

/** The token ids of the texts a question's prompt is made of, for one model and system prompt. */
export interface PromptFrame {
  /** The system turn's text (SYSTEM_INSTRUCTION unless the user set their own). */
  system: string;
  /** Instruction block (block 0): the same for every question, so its KV is computed once per engine. */
  instructionIds: number[];
  answerInstruction: AnswerInstructionPlacement;
  /** Text appended after the question (closes the user turn, opens the assistant turn). */
  after: string;
  /** Whether a chat template is used (false: raw texts). */
  templated: boolean;
}

/**
 * `answerInstruction`: where the answer instruction sits (default: the model's default quality
 * mode's placement). `systemPrompt` replaces SYSTEM_INSTRUCTION as the system turn (blank: the
 * default). Both are part of the instruction block, so shared-prefix passage KV computed after it is
 * a different KvStore variant (quality-modes.ts kvVariant hashes the instruction ids). Needs the
 * model folder and tokenizer only (no session): `quire status` computes KV keys without loading a
 * model.
 */
export function promptFrame(
  engine: Pick<Engine, 'model' | 'tokenizer'>,
  answerInstruction: AnswerInstructionPlacement = defaultAnswerInstruction(engine),
  systemPrompt?: string,
): PromptFrame {
  const system = systemPrompt?.trim() || SYSTEM_INSTRUCTION;
  const frame = chatFrame(engine.model, system);
  const intro = (answerInstruction === 'instruction' ? ANSWER_INSTRUCTION : '') + DOCUMENTS_INTRO;
  if (!frame) {
    return {
      system,
      instructionIds: engine.tokenizer.encode(`${system}\n${intro}`, { bos: true }),
      answerInstruction,
      after: '\nAnswer:',
      templated: false,
    };
  }
  return { system, instructionIds: engine.tokenizer.encode(frame.before + intro), answerInstruction, after: frame.after, templated: true };
}

/** A passage block's text: the indexer's block format (title line, then the text). */
export function passageBlockText(passage: { title: string | null; text: string }): string {
  return blockText(passage.title ?? '', passage.text);
}

export function finalBlockText(question: string, frame: PromptFrame): string {
  return `${frame.answerInstruction === 'final' ? ANSWER_INSTRUCTION : ''}Question: ${question.trim()}\n${frame.after}`;
}
