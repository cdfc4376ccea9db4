// Prefetch while typing (issue 15): while a question is typed, the app asks for it to be prepared:
// retrieved, fitted, its passages' blocks loaded (or computed) and assembled into the past the final
// block will run against, exactly as ask would (question-plan.ts), on the engine queue at background
// priority. When Enter sends a question whose plan is the same (the same fresh passages, same text,
// same order; the same chat past, instruction block, model, quality and boundary), ask runs only the
// final block against the prepared past (Engine.answer takes a single block at 0 as it is, without
// copying: assemble.ts); any other question drops it.
//
// A prepare never delays a real question: it yields (aborts at its next step) as soon as any
// question is queued on the engine, and a question that does not match aborts it. A question that
// matches a prepare already running waits for it (its work is the question's own); one that matches
// a prepare still queued aborts it and does the work itself, ahead of the background queue. A failed
// or aborted prepare leaves the question to the ordinary path. Plain chats, full mode and a question
// that adds no passage are not prepared: they have nothing to load.
import type { KvCache } from '../../native-models/kv.ts';
import type { ChatSession } from './chat-context.ts';
import type { AnswerContext } from './passage-kv.ts';
import { passageBlockText, type PromptFrame } from './prompt-blocks.ts';
import { contextBlocks, planQuestion, type ContextBlocks, type PlanOptions, type QuestionPlan } from './question-plan.ts';
import type { QualityMode } from './quality-modes.ts';

/**
 * The prompt's past before the final block, ready for Engine.answer, and how it was made (the
 * figures of ContextBlocks, taken by the prepare, not the question; assembleMs: the assembly).
 */
export type PreparedPast = Omit<ContextBlocks, 'blocks' | 'base'> & { past: KvCache; assembleMs: number };

/** What a prepared past is the past of; a question's plan must be the same to use it. */
interface PreparedFor {
  ctx: AnswerContext;
  frame: PromptFrame;
  /** The KV the passages follow (the chat's past, or the instruction block), by identity. */
  base: KvCache;
  turns: number;
  /** Each fresh passage's id and block text, in order. */
  passages: { passageId: number; text: string }[];
  quality: QualityMode;
  boundaryTokens: number;
}

export class PreparedQuestion {
  private readonly controller = new AbortController();
  private started = false;
  /** The past, or undefined when the prepare failed or was aborted. */
  readonly ready: Promise<PreparedPast | undefined>;

  private constructor(
    private readonly ctx: AnswerContext,
    private readonly preparedFor: PreparedFor,
    plan: QuestionPlan,
    chat: ChatSession | undefined,
  ) {
    const signal = this.controller.signal;
    // any question queued on the engine stops the prepare at its next step
    const yieldToQuestions = ctx.queue.onQuestionQueued(() => this.abort());
    this.ready = ctx.queue
      .run(
        async (): Promise<PreparedPast> => {
          this.started = true;
          const made = await contextBlocks(ctx, chat, plan.fresh, plan.quality, signal);
          signal.throwIfAborted();
          const t0 = performance.now();
          const { past } = await ctx.engine.assemble(made.blocks, { boundaryTokens: plan.boundaryTokens, signal });
          const { blocks: _blocks, base: _base, ...figures } = made;
          return { ...figures, past, assembleMs: performance.now() - t0 };
        },
        { priority: 'background', signal },
      )
      .catch(() => undefined) // a failed or aborted prepare: the question takes the ordinary path
      .finally(yieldToQuestions);
  }

  /**
   * Starts preparing `question` (see the file comment); undefined when there is nothing to prepare.
   * Leaves `options.chat` as it is (the plan is made on a copy); throws what planning throws
   * (QuestionTooLongError), as ask would.
   */
  static start(ctx: AnswerContext, question: string, options: PlanOptions): PreparedQuestion | undefined {
    if (options.plainChat) return undefined;
    const chat = options.chat?.copy();
    const plan = planQuestion(ctx, question, { ...options, chat });
    if (plan.mode !== 'block' || plan.fresh.length === 0) return undefined;
    return new PreparedQuestion(ctx, preparedFor(ctx, chat, plan), plan, chat);
  }

  /** Stops the prepare (a queued one leaves the queue; a running one stops at its next step). */
  abort(): void {
    this.controller.abort();
  }

  /**
   * The prepared past when `plan` (the question's, made on `chat` at Enter) is the one it was
   * prepared for and the prepare has started or finished; otherwise the prepare is aborted and
   * undefined returned, and the question takes the ordinary path.
   */
  async take(plan: QuestionPlan, ctx: AnswerContext, chat: ChatSession | undefined): Promise<PreparedPast | undefined> {
    if (!this.started || plan.mode !== 'block' || !samePlan(this.preparedFor, preparedFor(ctx, chat, plan))) {
      this.abort();
      return undefined;
    }
    return await this.ready;
  }

  /** The context it was prepared on (a model change or a new system prompt makes another). */
  get context(): AnswerContext {
    return this.ctx;
  }
}

function preparedFor(ctx: AnswerContext, chat: ChatSession | undefined, plan: QuestionPlan): PreparedFor {
  return {
    ctx,
    frame: plan.frame,
    base: chat?.past ?? ctx.instructionKv,
    turns: chat?.turns ?? 0,
    passages: plan.fresh.map((p) => ({ passageId: p.passageId, text: passageBlockText(p) })),
    quality: plan.quality,
    boundaryTokens: plan.boundaryTokens,
  };
}

function samePlan(a: PreparedFor, b: PreparedFor): boolean {
  return (
    a.ctx.engine === b.ctx.engine &&
    a.ctx.fingerprint === b.ctx.fingerprint &&
    a.ctx.instructionKv === b.ctx.instructionKv &&
    a.frame === b.frame &&
    a.base === b.base &&
    a.turns === b.turns &&
    a.quality === b.quality &&
    a.boundaryTokens === b.boundaryTokens &&
    a.passages.length === b.passages.length &&
    a.passages.every((p, i) => p.passageId === b.passages[i].passageId && p.text === b.passages[i].text)
  );
}

/**
 * The one prepared question kept per answering service (the app has one question box): a new
 * prepare replaces (aborts) the old, a question takes it, and a chat, model or settings change
 * releases it. Keyed by where the question will be asked (a chat, or a new chat over a folder).
 */
export class PreparedQuestions {
  private entry: { key: string; prepared: PreparedQuestion } | undefined;

  /** Prepares `question` for `key`, replacing the entry held; returns the new prepare (undefined: nothing to prepare). */
  prepare(key: string, ctx: AnswerContext, question: string, options: PlanOptions): PreparedQuestion | undefined {
    this.release();
    const prepared = PreparedQuestion.start(ctx, question, options);
    if (prepared) this.entry = { key, prepared };
    return prepared;
  }

  /** The prepare held for `key`, handed over (the entry is emptied either way). */
  take(key: string): PreparedQuestion | undefined {
    const entry = this.entry;
    this.entry = undefined;
    if (entry && entry.key === key) return entry.prepared;
    entry?.prepared.abort();
    return undefined;
  }

  /** Drops the entry held (aborting it). */
  release(): void {
    this.entry?.prepared.abort();
    this.entry = undefined;
  }
}
