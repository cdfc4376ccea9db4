// A question, start to finish: retrieve passages, load (or prefill) their blocks' KV, re-encode,
// compute the final block only, stream the answer, map its [n] markers to passages. With a prepared
// question whose plan is the same (prepared-question.ts: made while the question was typed), only
// the final block runs.
// Questions on one engine are queued (EngineQueue), never interleaved; an AbortSignal takes a
// waiting question out of the queue at once and stops a running one at its next step.
import { addMessage, type AnswerFigures as StoredFigures } from '../../db/chats.ts';
import type { AttentionMode as AnswerMode } from '../../native-models/attention-modes.ts';
import type { PromptBlock } from '../../native-models/assemble.ts';
import type { StopReason } from '../../native-models/decode.ts';
import { positionRange } from '../../native-models/prefill.ts';
import type { SamplingOptions } from '../../native-models/sampling.ts';
import { ChatSession, FOLLOW_UP_INTRO, turnSeparator } from './chat-context.ts';
import { citationsFor, NO_PASSAGES_ANSWER, toStoredCitation, type AnswerCitation } from './citations.ts';
import type { AnswerContext } from './passage-kv.ts';
import type { PreparedPast, PreparedQuestion } from './prepared-question.ts';
import type { PassageFitFigures } from './prompt-fit.ts';
import { passageBlockText, type PromptFrame } from './prompt-blocks.ts';
import { contextBlocks, planQuestion, type PlanOptions, type QuestionPlan } from './question-plan.ts';
import type { QualityMode } from './quality-modes.ts';
import type { RetrievedPassage } from './retrieve.ts';

export type { AnswerMode };

export interface AskOptions extends PlanOptions {
  sampling?: SamplingOptions;
  stopStrings?: readonly string[];
  signal?: AbortSignal;
  onText?: (piece: string) => void;
  /**
   * A question prepared while it was typed (prepared-question.ts): used when this question's plan
   * is the one it was prepared for, else aborted. Either way this question consumes it.
   */
  prepared?: PreparedQuestion;
}

export interface AnswerFigures extends PassageFitFigures {
  mode: AnswerMode;
  quality: QualityMode;
  boundaryTokens: number;
  provider: string;
  reusedBlocks: number;
  computedBlocks: number;
  /** Stored blocks that failed verification and were recomputed. */
  corruptBlocks: number;
  /** From the start of the question's turn on the engine to the first token (= load + compute + reencode + final). */
  ttftMs: number;
  /** KvStore read of the passage blocks. */
  loadMs: number;
  /** Prefill of missing blocks (0 when every block was stored). */
  computeMs: number;
  /** Rotating and laying out the blocks (and boundary recompute when asked): Engine.answer's assembleMs. */
  reencodeMs: number;
  /** Final block (full mode: the whole prompt) to the first token. */
  finalMs: number;
  /** Waiting for the engine behind other questions. */
  queuedMs: number;
  /**
   * The past was prepared while the question was typed (prepared-question.ts): only the final block
   * ran, so loadMs, computeMs and reencodeMs are ~0 and reused/computedBlocks say how the prepare made it.
   */
  prefetched: boolean;
  totalMs: number;
  promptTokens: number;
  outputTokens: number;
  /** Generated tokens after the first over the time from the first to the last (decode.ts); null below two tokens. */
  tokensPerSecond: number | null;
}

export interface AskResult {
  answer: string;
  citations: AnswerCitation[];
  /** The passages in the context, numbered [1]..[n] (in a chat: every passage so far). */
  passages: RetrievedPassage[];
  /**
   * Aligned with passages: true when that passage's KV was reused (loaded from the store, or kept in
   * the chat from an earlier turn), false when it was computed for this answer (always in full mode).
   */
  passageKvReused: boolean[];
  /** False when no passage was found and the fixed message was given without running the model. */
  ranModel: boolean;
  stopReason: StopReason | 'no-passages';
  tokenIds: number[];
  /** The 10 largest logits of the first generated position, as [id, value]. */
  topLogits: [number, number][];
  figures: AnswerFigures;
  /** The stored assistant message, when the chat records to the database (ChatSession.chatId). */
  messageId?: number;
}

/** Answers `question` over the context's database; see AskOptions. */
export async function ask(ctx: AnswerContext, question: string, options: AskOptions = {}): Promise<AskResult> {
  const queuedAt = performance.now();
  const chat = options.chat;
  let plan: QuestionPlan;
  try {
    options.signal?.throwIfAborted();
    plan = planQuestion(ctx, question, options);
  } catch (e) {
    options.prepared?.abort(); // a refused question leaves no prepare running
    throw e;
  }
  const { finalIds, frame, fit, fresh, all, mode, quality, boundaryTokens } = plan;
  if (all.length === 0 && fit.figures.passagesDropped === 0 && !options.plainChat) {
    options.prepared?.abort();
    options.onText?.(NO_PASSAGES_ANSWER);
    const result: AskResult = {
      answer: NO_PASSAGES_ANSWER,
      citations: [],
      passages: [],
      passageKvReused: [],
      ranModel: false,
      stopReason: 'no-passages',
      tokenIds: [],
      topLogits: [],
      figures: { ...emptyFigures(ctx, mode, quality, boundaryTokens, performance.now() - queuedAt), ...fit.figures },
    };
    result.messageId = record(ctx, chat, question, result);
    return result;
  }
  // the past prepared while the question was typed, when this is the plan it was prepared for
  // (take aborts it otherwise)
  const prepared = await options.prepared?.take(plan, ctx, chat);
  const answered = await ctx.queue.run(
    () => answerOnEngine(ctx, chat, fresh, all, { ...options, mode, quality, boundaryTokens, finalIds, frame }, queuedAt, prepared),
    { signal: options.signal },
  );
  const result: AskResult = { ...answered, figures: { ...answered.figures, ...fit.figures } };
  result.messageId = record(ctx, chat, question, result);
  return result;
}

type Resolved = AskOptions & { mode: AnswerMode; quality: QualityMode; boundaryTokens: number; finalIds: number[]; frame: PromptFrame };

async function answerOnEngine(
  ctx: AnswerContext,
  chat: ChatSession | undefined,
  fresh: RetrievedPassage[],
  all: RetrievedPassage[],
  o: Resolved,
  queuedAt: number,
  prepared: PreparedPast | undefined,
): Promise<Omit<AskResult, 'figures'> & { figures: EngineFigures }> {
  const { engine } = ctx;
  const startedAt = performance.now();
  const signal = o.signal;
  const { finalIds, frame } = o;
  const introIds = chat?.past && fresh.length > 0 ? engine.tokenizer.encode(FOLLOW_UP_INTRO) : [];
  let blocks: PromptBlock[];
  let finalForward = finalIds;
  let loadMs = 0;
  let computeMs = 0;
  let reused = 0;
  let computed: number;
  let corrupt = 0;
  let freshReused = fresh.map(() => false);
  if (o.mode === 'full') {
    // one causal pass over everything new: instruction (first turn), intro, passages, final block
    const passageTokens = fresh.flatMap((p) => engine.tokenizer.encode(passageBlockText(p)));
    const head = chat?.past ? [] : frame.instructionIds;
    blocks = chat?.past ? [{ kv: chat.past }] : [];
    finalForward = [...head, ...introIds, ...passageTokens, ...finalIds];
    computed = fresh.length;
  } else if (prepared) {
    // made while the question was typed: one block at 0, taken by Engine.answer as it is
    ({ reused, computed, corrupt, freshReused } = prepared);
    blocks = [{ kv: prepared.past }];
  } else {
    const made = await contextBlocks(ctx, chat, fresh, o.quality, signal);
    ({ loadMs, computeMs, reused, computed, corrupt, freshReused, blocks } = made);
  }
  signal?.throwIfAborted();
  const answerStart = performance.now();
  const answered = await engine.answer(blocks, finalForward, {
    boundaryTokens: o.boundaryTokens,
    sampling: o.sampling,
    maxNewTokens: o.maxNewTokens,
    stopStrings: o.stopStrings,
    signal,
    onText: o.onText,
  });
  const { promptTokens } = answered;
  const ttftMs = answerStart - startedAt + answered.ttftMs;
  if (chat) {
    // keep the turn: tokens generated but not fed back yet, then the template's close + next user header
    const fed = answered.present.tokens - promptTokens;
    const tail = [...answered.tokenIds.slice(Math.max(0, fed)), ...engine.tokenizer.encode(turnSeparator(engine.model, frame.system))];
    if (answered.present.tokens + tail.length > engine.model.maxPositions) {
      // an answer that ran to the end of the context leaves no room to close the turn: the next question starts over
      chat.release();
    } else {
      const step = await engine.runner.forward(tail, positionRange(answered.present.tokens, tail.length), answered.present);
      chat.past = step.present;
      chat.passages = all;
      chat.turns++;
    }
  }
  const answer = answered.text.trim();
  return {
    answer,
    citations: citationsFor(answer, all),
    passages: all,
    passageKvReused: [...all.slice(0, all.length - fresh.length).map(() => true), ...freshReused],
    ranModel: true,
    stopReason: answered.stopReason,
    tokenIds: answered.tokenIds,
    topLogits: answered.topLogits,
    figures: {
      mode: o.mode,
      quality: o.quality,
      boundaryTokens: o.boundaryTokens,
      provider: engine.provider,
      reusedBlocks: reused,
      computedBlocks: computed,
      corruptBlocks: corrupt,
      ttftMs,
      loadMs,
      computeMs,
      reencodeMs: answered.assembleMs,
      finalMs: answered.finalMs,
      queuedMs: startedAt - queuedAt,
      prefetched: prepared !== undefined,
      totalMs: performance.now() - queuedAt,
      promptTokens,
      outputTokens: answered.tokenIds.length,
      tokensPerSecond: answered.tokensPerSecond,
    },
  };
}

/** The figures measured on the engine; ask adds the passage fit's. */
type EngineFigures = Omit<AnswerFigures, keyof PassageFitFigures>;

function emptyFigures(ctx: AnswerContext, mode: AnswerMode, quality: QualityMode, boundaryTokens: number, totalMs: number): EngineFigures {
  return {
    mode,
    quality,
    boundaryTokens,
    provider: ctx.engine.provider,
    reusedBlocks: 0,
    computedBlocks: 0,
    corruptBlocks: 0,
    ttftMs: 0,
    loadMs: 0,
    computeMs: 0,
    reencodeMs: 0,
    finalMs: 0,
    queuedMs: 0,
    prefetched: false,
    totalMs,
    promptTokens: 0,
    outputTokens: 0,
    tokensPerSecond: null,
  };
}

/** Stores the turn in the chat's transcript; returns the assistant message's id. */
function record(ctx: AnswerContext, chat: ChatSession | undefined, question: string, r: AskResult): number | undefined {
  if (chat?.chatId === undefined) return undefined;
  const figures: StoredFigures = {
    provider: r.figures.provider,
    model: ctx.fingerprint.slice(0, 16),
    blocksReused: r.figures.reusedBlocks,
    blocksComputed: r.figures.computedBlocks,
    ttftMs: r.figures.ttftMs,
    totalMs: r.figures.totalMs,
    outputTokens: r.figures.outputTokens,
    tokensPerSecond: r.figures.tokensPerSecond,
    contextPassages: r.passages.length,
  };
  return ctx.db.transaction(() => {
    addMessage(ctx.db, chat.chatId!, { role: 'user', content: question });
    return addMessage(ctx.db, chat.chatId!, {
      role: 'assistant',
      content: r.answer,
      citations: r.citations.map((c) => toStoredCitation(c, r.passages)),
      figures,
    }).id;
  })();
}
