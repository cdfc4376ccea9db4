// A question's prompt fitted to the model's context before any KV is loaded: the fixed parts (the
// instruction block or a chat's past, the follow-up intro, the final block with the question) plus
// the passages must leave room for the answer, so the retrieved passages are kept whole in rank
// order until the next one would not fit, and the lower-ranked rest is left out. Only when not even
// the top passage fits whole is it shortened to the room left (a shortened block is computed at
// question time: its token ids differ from the stored block's). Token counts are the model's own
// tokenizer's (passageIds, memoised per passage), the ids the blocks are made of, so every script
// (CJK included) is counted as the model will see it.
//
// A chat's history that no longer fits starts the context over (ChatSession.release) instead of
// dropping its oldest turns: the chat's KV is one causal cache in which every later token attended
// to the earlier turns, so cutting the oldest turns out and rotating the rest back would keep KV
// computed against text the model no longer sees, and the passages' [n] numbering (by order of
// joining) would shift under the earlier answers' citations. Starting over uses only blocks computed
// alone (stored, position-independent): the follow-up's own retrieval first, then the chat's earlier
// passages newest first (the transcript's last passages, for a follow-up that refers to them),
// fitted as a first question. The earlier answers' text stays in the transcript but leaves the context.
import { PromptTooLongError } from '../../native-models/errors.ts';
import type { RetrievedPassage } from './retrieve.ts';
import { FOLLOW_UP_INTRO, type ChatSession } from './chat-context.ts';
import { passageIds, type AnswerContext } from './passage-kv.ts';
import { passageBlockText } from './prompt-blocks.ts';

/** Tokens kept for the answer when maxNewTokens is not given (decode's default). */
export const DEFAULT_ANSWER_RESERVE = 256;

/** A passage is shortened only to at least this many tokens (title line included); below that it is left out. */
export const MIN_SHORTENED_BLOCK_TOKENS = 32;

/** Tokens kept for the answer: maxNewTokens (default 256), at most a quarter of the context, at least 1. */
export function answerReserve(maxPositions: number, maxNewTokens?: number): number {
  return Math.max(1, Math.min(Math.floor(maxNewTokens ?? DEFAULT_ANSWER_RESERVE), Math.floor(maxPositions / 4)));
}

/**
 * A question that does not fit the model's context even with no passage: refused, nothing stored.
 * A PromptTooLongError (`tokens`: the instruction and final blocks), so callers that refuse the
 * engine's own length check as the client's to fix refuse this one alike, with its plainer message.
 */
export class QuestionTooLongError extends PromptTooLongError {
  constructor(
    tokens: number,
    maxPositions: number,
    /** Tokens kept for the answer. */
    readonly reserve: number,
  ) {
    super(tokens, maxPositions);
    this.message =
      `This question is too long for the model: with the answering instructions it takes ${tokens} tokens, ` +
      `and the model reads ${maxPositions} tokens in all, ${reserve} of them kept for the answer. ` +
      `Shorten it by about ${tokens + reserve - maxPositions} tokens.`;
    this.name = 'QuestionTooLongError';
  }
}

/** How the passages were fitted, part of the answer's figures. */
export interface PassageFitFigures {
  /** Passages this answer added to the context (a follow-up: the new ones), shortened ones included. */
  passagesUsed: number;
  /** Passages found (and not already in the chat) but left out, lowest ranked first, to fit the context. */
  passagesDropped: number;
  /** Passages cut short to fit (0 or 1: only the top passage, when not even it fits whole). */
  passagesShortened: number;
  /** The chat's history did not fit with the follow-up, so its context started over. */
  contextRestarted: boolean;
}

/** The prompt's parts besides passages, in tokens, as the caller will feed them. */
export interface FixedPrompt {
  /** The instruction block (a first question, or a chat that starts over). */
  instructionTokens: number;
  /** The final block: the question with its instructions and the template's text around it. */
  finalTokens: number;
}

export interface PassageFit {
  /** The passages to add to the context, in rank order. */
  passages: RetrievedPassage[];
  figures: PassageFitFigures;
}

/**
 * The passages of `found` (rank order) that fit the context with `prompt`'s final block, the
 * instruction block or `chat`'s past, and the answer's reserve. Starts `chat`'s context over when
 * its history leaves no room (see the file comment). Throws QuestionTooLongError when the question
 * does not fit even alone.
 */
export function fitPassages(
  ctx: AnswerContext,
  prompt: FixedPrompt,
  found: readonly RetrievedPassage[],
  chat: ChatSession | undefined,
  maxNewTokens?: number,
): PassageFit {
  const maxPositions = ctx.engine.model.maxPositions;
  const reserve = answerReserve(maxPositions, maxNewTokens);
  const { finalTokens } = prompt;
  const alone = prompt.instructionTokens + finalTokens;
  if (alone + reserve > maxPositions) throw new QuestionTooLongError(alone, maxPositions, reserve);
  const cost = (p: RetrievedPassage) => passageIds(ctx, p).length;

  let candidates = [...found];
  let restarted = false;
  if (chat?.past) {
    const known = new Set(chat.passages.map((p) => p.passageId));
    const fresh = found.filter((p) => !known.has(p.passageId));
    const introTokens = fresh.length > 0 ? ctx.engine.tokenizer.encode(FOLLOW_UP_INTRO).length : 0;
    const room = maxPositions - reserve - chat.past.tokens - introTokens - finalTokens;
    // continue the chat while its history leaves room for the question and its top new passage
    if (room >= 0 && (fresh.length === 0 || cost(fresh[0]) <= room)) {
      const kept = keepWhole(fresh, room, cost);
      return { passages: kept, figures: fitFigures(kept.length, fresh.length - kept.length, 0, false) };
    }
    const foundIds = new Set(found.map((p) => p.passageId));
    candidates = [...found, ...[...chat.passages].reverse().filter((p) => !foundIds.has(p.passageId))];
    const fingerprint = ctx.fingerprint;
    chat.release();
    chat.useModel(fingerprint);
    restarted = true;
  }

  const room = maxPositions - reserve - alone;
  const kept = keepWhole(candidates, room, cost);
  if (kept.length === 0 && candidates.length > 0) {
    const shortened = shorten(ctx, candidates[0], room);
    if (shortened) return { passages: [shortened], figures: fitFigures(1, candidates.length - 1, 1, restarted) };
  }
  return { passages: kept, figures: fitFigures(kept.length, candidates.length - kept.length, 0, restarted) };
}

function fitFigures(used: number, dropped: number, shortened: number, restarted: boolean): PassageFitFigures {
  return { passagesUsed: used, passagesDropped: dropped, passagesShortened: shortened, contextRestarted: restarted };
}

/** The longest rank-order prefix of `passages` whose blocks fit `room` tokens. */
function keepWhole(passages: readonly RetrievedPassage[], room: number, cost: (p: RetrievedPassage) => number): RetrievedPassage[] {
  const kept: RetrievedPassage[] = [];
  let left = room;
  for (const p of passages) {
    const n = cost(p);
    if (n > left) break;
    kept.push(p);
    left -= n;
  }
  return kept;
}

/**
 * `p` cut to the longest start whose block fits `room` tokens (at a space when one is near the cut,
 * never inside a surrogate pair), with its character range cut to match; undefined when the room is
 * below MIN_SHORTENED_BLOCK_TOKENS or not even the title line fits.
 */
function shorten(ctx: AnswerContext, p: RetrievedPassage, room: number): RetrievedPassage | undefined {
  if (room < MIN_SHORTENED_BLOCK_TOKENS) return undefined;
  const tokensOf = (n: number) => ctx.engine.tokenizer.encode(passageBlockText({ title: p.title, text: p.text.slice(0, n) })).length;
  // the longest prefix that fits: a prefix's token count grows with it (BPE merges may make a step
  // uneven, never a long way back), so a binary search over characters finds it in log2(length)
  // encodes; the cut found is checked again below
  let lo = 0;
  let hi = p.text.length;
  while (lo < hi) {
    const mid = Math.ceil((lo + hi) / 2);
    if (tokensOf(mid) <= room) lo = mid;
    else hi = mid - 1;
  }
  let cut = lo;
  if (cut > 0 && isHighSurrogate(p.text.charCodeAt(cut - 1))) cut--;
  if (cut < p.text.length && /\S/.test(p.text[cut])) {
    // inside a word: a word boundary within the last fifth reads better than a cut word
    const space = p.text.slice(0, cut).search(/\s\S*$/);
    if (space > cut * 0.8) cut = space;
  }
  const text = p.text.slice(0, cut).trimEnd();
  if (text.length === 0 || tokensOf(text.length) > room) return undefined;
  // a passage's text is its document's text from charStart to charEnd (indexing/passages.ts)
  const charEnd = p.charEnd - p.charStart === p.text.length ? p.charStart + text.length : p.charEnd;
  return { ...p, text, charEnd };
}

function isHighSurrogate(code: number): boolean {
  return code >= 0xd800 && code <= 0xdbff;
}
