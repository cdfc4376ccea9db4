// What a question needs before its final block runs, in one place for the two callers that need
// it: ask (at Enter) and prepareQuestion (while the question is typed, prepared-question.ts), so a
// prepared past is made exactly as the question would make it. planQuestion decides the prompt
// (retrieval, the final block's ids, the passages that fit); contextBlocks computes the blocks that
// come before the final block in block mode (the chat's past or the instruction block, the
// follow-up intro, the passages' blocks loaded or computed).
import type { AttentionMode as AnswerMode } from '../../native-models/attention-modes.ts';
import type { PromptBlock } from '../../native-models/assemble.ts';
import type { KvCache } from '../../native-models/kv.ts';
import { positionRange } from '../../native-models/prefill.ts';
import { FOLLOW_UP_INTRO, type ChatSession } from './chat-context.ts';
import { plainChatFrame, plainFinalText, transcriptText, type ChatTurn } from './conversation.ts';
import { passageBlocks, type AnswerContext } from './passage-kv.ts';
import { fitPassages, type PassageFit } from './prompt-fit.ts';
import { finalBlockText, type PromptFrame } from './prompt-blocks.ts';
import type { QualityMode } from './quality-modes.ts';
import { retrieve, type RetrievedPassage } from './retrieve.ts';

/** The options of ask that decide the prompt (AskOptions in ask.ts adds how the answer is decoded). */
export interface PlanOptions {
  /** Passages to retrieve (default 10). */
  k?: number;
  perDocument?: number;
  folderId?: number;
  /** Use these passages instead of retrieving (benchmarks, a UI's "ask about this passage"); fitted to the context as retrieved ones. */
  passages?: readonly RetrievedPassage[];
  /** block (default): stored passage KV + final block; full: one causal prefill of everything. */
  mode?: AnswerMode;
  /** How passage blocks are computed (default: the context's, see quality-modes.ts). */
  quality?: QualityMode;
  /** EPIC boundary recompute: first k tokens of each passage block at question time (default 0). */
  boundaryTokens?: number;
  /** A chat to continue: earlier turns stay in the context; messages are recorded if it has a chatId. */
  chat?: ChatSession;
  /**
   * A plain chat: no retrieval and no passages; the model answers from the conversation alone, under
   * `system` (default SYSTEM_INSTRUCTION). One causal pass: there are no blocks to reuse.
   */
  plainChat?: { system?: string };
  /**
   * Earlier turns that `chat` does not hold in its KV (an API client sends its whole transcript):
   * rendered through the chat template in a plain chat, as text before the question otherwise
   * (conversation.ts). Ignored when the chat has a past: the turns are in its KV.
   */
  history?: readonly ChatTurn[];
  /** At most this many answer tokens; also the room kept for the answer, up to a quarter of the context (prompt-fit.ts). */
  maxNewTokens?: number;
}

export interface QuestionPlan {
  /** The final block as it will be fed, and the frame it was made with. */
  finalIds: number[];
  frame: PromptFrame;
  /** How the retrieved passages were fitted; fit.passages: the new passages, rank order. */
  fit: PassageFit;
  fresh: RetrievedPassage[];
  /** The chat's passages so far, then the fresh ones: numbered [1]..[n]. */
  all: RetrievedPassage[];
  mode: AnswerMode;
  quality: QualityMode;
  boundaryTokens: number;
}

/**
 * The question's prompt: retrieval (none for a plain chat), the final block, the passages that fit.
 * Changes `options.chat` as the question will (another model's past released; a history that no
 * longer fits starts over: prompt-fit.ts); plan on ChatSession.copy() to leave the chat as it is.
 */
export function planQuestion(ctx: AnswerContext, question: string, options: PlanOptions): QuestionPlan {
  const found = options.plainChat
    ? []
    : options.passages
      ? [...options.passages]
      : retrieve(ctx.db, question, { k: options.k, perDocument: options.perDocument, folderId: options.folderId });
  const chat = options.chat;
  chat?.useModel(ctx.fingerprint); // another model's chat KV is never reused (chat-context.ts)
  // the final block as it will be fed (a plain chat's frame carries the transcript; a library
  // question gets earlier turns not in the chat's KV as text before it: conversation.ts)
  const history = chat?.past ? [] : (options.history ?? []);
  const frame = options.plainChat ? plainChatFrame(ctx.engine, options.plainChat.system, history) : ctx.frame;
  const finalIds = ctx.engine.tokenizer.encode(
    options.plainChat ? plainFinalText(question, frame) : transcriptText(history) + finalBlockText(question, frame),
  );
  // the new passages that fit the context, rank order (may start the chat's context over; throws
  // QuestionTooLongError for a question that does not fit alone)
  const fit = fitPassages(ctx, { instructionTokens: frame.instructionIds.length, finalTokens: finalIds.length }, found, chat, options.maxNewTokens);
  const fresh = fit.passages;
  return {
    finalIds,
    frame,
    fit,
    fresh,
    all: [...(chat?.passages ?? []), ...fresh],
    mode: options.plainChat ? 'full' : (options.mode ?? 'block'),
    quality: options.quality ?? ctx.defaultQuality,
    boundaryTokens: Math.max(0, Math.floor(options.boundaryTokens ?? 0)),
  };
}

export interface ContextBlocks {
  /** The chat's past (with the follow-up intro) or the instruction block, then the fresh passages' blocks. */
  blocks: PromptBlock[];
  /** The past the passages follow: the chat's (or the instruction block's) KV before the intro. */
  base: KvCache;
  /** Aligned with the fresh passages: loaded from the store (false: computed now). */
  freshReused: boolean[];
  reused: number;
  computed: number;
  corrupt: number;
  loadMs: number;
  /** Missing blocks and the follow-up intro. */
  computeMs: number;
}

/** Block mode's blocks before the final block, on the engine (call inside an EngineQueue task). */
export async function contextBlocks(
  ctx: AnswerContext,
  chat: ChatSession | undefined,
  fresh: readonly RetrievedPassage[],
  quality: QualityMode,
  signal?: AbortSignal,
): Promise<ContextBlocks> {
  const { engine } = ctx;
  const t0 = performance.now();
  // the chat so far (through the next user header) or the instruction block
  const base = chat?.past ?? ctx.instructionKv;
  let start = base;
  if (chat?.past && fresh.length > 0) {
    const introIds = engine.tokenizer.encode(FOLLOW_UP_INTRO);
    start = (await engine.runner.forward(introIds, positionRange(base.tokens, introIds.length), base)).present;
  }
  const passages = await passageBlocks(ctx, fresh, quality, signal);
  const { loadMs, reused, computed, corrupt } = passages;
  // the follow-up intro, if any, counts as computed
  const computeMs = performance.now() - t0 - passages.loadMs;
  return { blocks: [{ kv: start }, ...passages.blocks], base, freshReused: passages.blocks.map((b) => b.reused), reused, computed, corrupt, loadMs, computeMs };
}
