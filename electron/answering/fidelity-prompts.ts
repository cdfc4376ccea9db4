// Where `quire fidelity`'s prompts come from, turned into token ids as the question path frames them:
// - a JSONL file, one {"blocks": [text, ...], "question": text} a line: blocks[0] is the instruction
//   block (BOS on it), blocks[1..] passages, question the final block. Raw texts for a model without
//   a chat template; with one, framed as a question is (prompt-blocks.ts): the template's system turn
//   and user header before blocks[0], its text after the user content (through the assistant
//   header) after the question;
// - the user's own library: a few questions made from indexed documents, each retrieved and cut into
//   blocks exactly as `ask` does (instruction block, passage blocks, final block with the answer
//   instruction);
// - for a base story model (no chat template): the built-in stories (fidelity-stories.ts).
import fs from 'node:fs';
import { listDocuments } from '../../db/documents.ts';
import type { Db } from '../../db/open.ts';
import { listPassages } from '../../db/passages.ts';
import { chatFrame } from '../../native-models/chat-template.ts';
import type { Engine } from '../../native-models/engine.ts';
import type { FidelityPrompt } from './fidelity.ts';
import { finalBlockText, passageBlockText, promptFrame, SYSTEM_INSTRUCTION } from './prompt-blocks.ts';
import { DEFAULT_TOP_K, retrieve } from './retrieve.ts';

/** A prompt as texts: blocks[0] the instruction block, blocks[1..] passages, question the final block. */
export interface FidelityTextPrompt {
  blocks: string[];
  question: string;
}

export class PromptFileError extends Error {
  override name = 'PromptFileError';
}

const KEYS = ['blocks', 'question'];

/** The prompts of a JSONL text (blank lines skipped), each with its line number; errors name the line. */
export function parsePromptLines(text: string, source: string): { line: number; prompt: FidelityTextPrompt }[] {
  const out: { line: number; prompt: FidelityTextPrompt }[] = [];
  text.split(/\r?\n/).forEach((raw, i) => {
    if (raw.trim() === '') return;
    const at = `${source}:${i + 1}`;
    let value: unknown;
    try {
      value = JSON.parse(raw);
    } catch (e) {
      throw new PromptFileError(`${at}: not JSON (${(e as Error).message})`);
    }
    if (typeof value !== 'object' || value === null || Array.isArray(value)) {
      throw new PromptFileError(`${at}: expected an object {"blocks": [text, ...], "question": text}`);
    }
    const o = value as Record<string, unknown>;
    const unknown = Object.keys(o).filter((k) => !KEYS.includes(k));
    if (unknown.length > 0) throw new PromptFileError(`${at}: unknown key ${JSON.stringify(unknown[0])} (a line has "blocks" and "question")`);
    const { blocks, question } = o;
    if (!Array.isArray(blocks) || blocks.length === 0) {
      throw new PromptFileError(`${at}: "blocks" must be a non-empty array of texts (blocks[0] is the instruction block, the rest passages)`);
    }
    const bad = blocks.findIndex((b) => typeof b !== 'string' || b.trim() === '');
    if (bad >= 0) throw new PromptFileError(`${at}: blocks[${bad}] must be a non-empty text`);
    if (typeof question !== 'string' || question.trim() === '') throw new PromptFileError(`${at}: "question" must be a non-empty text`);
    out.push({ line: i + 1, prompt: { blocks: blocks as string[], question } });
  });
  if (out.length === 0) throw new PromptFileError(`${source}: no prompts (one JSON object a line)`);
  return out;
}

export interface PromptFile {
  file: string;
  lines: { line: number; prompt: FidelityTextPrompt }[];
}

/** A prompt file read and checked (before any model is loaded); an error names the file and line. */
export function loadPromptFile(file: string): PromptFile {
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch (e) {
    throw new PromptFileError(`cannot read ${file}: ${(e as Error).message}`);
  }
  return { file, lines: parsePromptLines(text, file) };
}

/** A prompt file's prompts tokenized for `engine`; one that does not fit the model names its line. */
export function tokenizePromptFile(engine: Pick<Engine, 'model' | 'tokenizer'>, { file, lines }: PromptFile): FidelityPrompt[] {
  return lines.map(({ line, prompt }) => {
    const ids = tokenizeTextPrompt(engine, prompt);
    const tokens = ids.blockIds.reduce((n, b) => n + b.length, 0) + ids.finalIds.length;
    if (tokens > engine.model.maxPositions) {
      throw new PromptFileError(`${file}:${line}: ${tokens} tokens do not fit the model's ${engine.model.maxPositions} positions`);
    }
    return ids;
  });
}

/** loadPromptFile then tokenizePromptFile. */
export function readPromptFile(engine: Pick<Engine, 'model' | 'tokenizer'>, file: string): FidelityPrompt[] {
  return tokenizePromptFile(engine, loadPromptFile(file));
}

/** Token ids of a text prompt: raw for a model without a chat template, else framed as a question is. */
export function tokenizeTextPrompt(engine: Pick<Engine, 'model' | 'tokenizer'>, prompt: FidelityTextPrompt): FidelityPrompt {
  const { tokenizer } = engine;
  const frame = chatFrame(engine.model, SYSTEM_INSTRUCTION);
  const [first, ...passages] = prompt.blocks;
  const passageIds = passages.map((p) => tokenizer.encode(p));
  if (!frame) {
    return { blockIds: [tokenizer.encode(first, { bos: true }), ...passageIds], finalIds: tokenizer.encode(prompt.question) };
  }
  return { blockIds: [tokenizer.encode(frame.before + first), ...passageIds], finalIds: tokenizer.encode(prompt.question + frame.after) };
}

/** Which built-in set fits a model: stories for a base model without a chat template, else the library. */
export function builtInPromptSet(engine: Pick<Engine, 'model'>): 'stories' | 'library' {
  return engine.model.chatTemplate ? 'library' : 'stories';
}

export interface LibraryPromptOptions {
  /** Questions to make (default 5), from documents spread over the library. */
  questions?: number;
  /** Passages retrieved per question (default ask's); fewer where the model's context is short. */
  k?: number;
}

export const LIBRARY_QUESTIONS = 5;
const TOPIC_WORDS = 8;

/**
 * Prompts from the user's library, as `ask` builds them: for documents spread evenly over the
 * indexed ones, a question about the opening words of the document's first passage, its passages
 * retrieved with ask's ranking, the instruction block, passage blocks and the final block from
 * prompt-blocks.ts. Passages are dropped from the end while the prompt exceeds the model's context.
 */
export function libraryPrompts(db: Db, engine: Pick<Engine, 'model' | 'tokenizer'>, options: LibraryPromptOptions = {}): { prompts: FidelityPrompt[]; questions: string[] } {
  const frame = promptFrame(engine);
  const docs = listDocuments(db, { status: 'indexed' });
  const wanted = Math.min(options.questions ?? LIBRARY_QUESTIONS, docs.length);
  const prompts: FidelityPrompt[] = [];
  const questions: string[] = [];
  for (let i = 0; i < wanted; i++) {
    const doc = docs[Math.floor((i * docs.length) / wanted)];
    const first = listPassages(db, doc.id)[0];
    const topic = first?.text.match(/[\p{L}\p{N}][\p{L}\p{N}'-]*/gu)?.slice(0, TOPIC_WORDS).join(' ');
    if (!topic) continue;
    const question = `What do the documents say about ${topic}?`;
    const passages = retrieve(db, question, { k: options.k ?? DEFAULT_TOP_K });
    const finalIds = engine.tokenizer.encode(finalBlockText(question, frame));
    const blockIds = [frame.instructionIds, ...passages.map((p) => engine.tokenizer.encode(passageBlockText(p)))];
    const length = () => blockIds.reduce((n, b) => n + b.length, 0) + finalIds.length;
    while (blockIds.length > 1 && length() > engine.model.maxPositions) blockIds.pop();
    if (blockIds.length < 2 || length() > engine.model.maxPositions) continue; // no passage fits
    prompts.push({ blockIds, finalIds });
    questions.push(question);
  }
  return { prompts, questions };
}
