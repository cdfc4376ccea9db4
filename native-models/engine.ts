// The engine facade: a loaded model (folder, tokenizer, session) that turns block texts and a final
// prompt into a streamed answer, in block mode (blocks prefilled alone, re-encoded, final block only)
// or full mode (one causal prefill of everything).
import { assembleBlocks, type AssembledPast, type AssembleOptions, type PromptBlock } from './assemble.ts';
import { chatFrame } from './chat-template.ts';
import { decode, type StopReason } from './decode.ts';
import { PromptTooLongError } from './errors.ts';
import type { KvCache } from './kv.ts';
import { loadModelFolder, type ModelFolder } from './model-folder.ts';
import { ModelRunner } from './model-runner.ts';
import { prefillBlock } from './prefill.ts';
import { createSampler, topLogits, type SamplingOptions } from './sampling.ts';
import type { SessionOptions } from './session.ts';
import { TextTokenizer } from './tokenizer.ts';

import type { AttentionMode } from './attention-modes.ts';

export type { AttentionMode } from './attention-modes.ts';

export interface PromptSegments {
  /** Token ids of each block, in prompt order. */
  blockIds: number[][];
  /** Token ids of the final block. */
  finalIds: number[];
}

export interface GenerateRequest {
  blocks: readonly string[];
  prompt: string;
  /** No chat template: blocks and prompt are used as written. */
  raw?: boolean;
  mode?: AttentionMode;
  sampling?: SamplingOptions;
  maxNewTokens?: number;
  stopStrings?: readonly string[];
  signal?: AbortSignal;
  onText?: (piece: string) => void;
}

/** Options of the question-time path (Engine.answer). */
export interface AnswerRequest extends Pick<GenerateRequest, 'sampling' | 'maxNewTokens' | 'stopStrings' | 'signal' | 'onText'> {
  /** EPIC boundary recompute of the first k tokens of every block after the first (see assemble.ts). */
  boundaryTokens?: number;
}

export interface AnswerResult {
  tokenIds: number[];
  text: string;
  stopReason: StopReason;
  provider: string;
  /** Tokens in the prompt: the blocks and the final block. */
  promptTokens: number;
  /** From this call to the first token: assembly + final block. */
  ttftMs: number;
  /** Rotating the blocks to their starts, laying them out, and boundary recompute when asked. */
  assembleMs: number;
  /** The final block to the first token. */
  finalMs: number;
  /** See DecodeResult.tokensPerSecond (decode.ts): the one definition. */
  tokensPerSecond: number | null;
  /** The 10 largest logits of the first generated position, as [id, value]. */
  topLogits: [number, number][];
  /** The prompt and the generated tokens that were fed back (not the last sampled one). */
  present: KvCache;
}

export interface GenerateResult extends Omit<AnswerResult, 'present'> {
  promptTokenIds: number[];
  mode: AttentionMode;
  /** Block mode: from assembling the prefilled blocks to the first token; full mode: from the prefill. */
  ttftMs: number;
  /** Block mode: time spent prefilling the blocks before the question (0 in full mode). */
  blockPrefillMs: number;
}

export class Engine {
  private constructor(
    readonly model: ModelFolder,
    readonly tokenizer: TextTokenizer,
    readonly runner: ModelRunner,
  ) {}

  static async load(dir: string, options: SessionOptions = {}): Promise<Engine> {
    const model = loadModelFolder(dir);
    const tokenizer = new TextTokenizer(model);
    const runner = await ModelRunner.open(model, options);
    return new Engine(model, tokenizer, runner);
  }

  get provider(): string {
    return this.runner.provider;
  }

  /** Tokens that end generation: the model's EOS ids and the tokenizer's end-of-turn tokens. */
  get stopTokenIds(): number[] {
    const ids = new Set(this.model.eosTokenIds);
    for (const name of ['<|im_end|>', '<|eot_id|>', '<|end|>', '</s>', '<end_of_turn>']) {
      const id = this.tokenizer.tokenId(name);
      if (id !== undefined && this.tokenizer.specialTokens.has(id)) ids.add(id);
    }
    return [...ids];
  }

  /**
   * Token ids of each block and of the final block. Raw: the first block gets BOS when the tokenizer
   * uses one, the rest no special tokens, and the prompt gets BOS only when it is the only block.
   * Templated: the template's text before the user content opens the first block (it carries BOS
   * where the template writes one) and its text after, through the assistant header, closes the final block.
   */
  segment(blocks: readonly string[], prompt: string, raw = false): PromptSegments {
    const frame = raw ? undefined : chatFrame(this.model);
    if (!frame) {
      return {
        blockIds: blocks.map((b, i) => this.tokenizer.encode(b, { bos: i === 0 })),
        finalIds: this.tokenizer.encode(prompt, { bos: blocks.length === 0 }),
      };
    }
    if (blocks.length === 0) return { blockIds: [], finalIds: this.tokenizer.encode(frame.before + prompt + frame.after) };
    return {
      blockIds: blocks.map((b, i) => this.tokenizer.encode(i === 0 ? frame.before + b : b)),
      finalIds: this.tokenizer.encode(prompt + frame.after),
    };
  }

  /** A block's KV, computed alone at positions 0..L-1. */
  prefill(ids: readonly number[]): Promise<KvCache> {
    return prefillBlock(this.runner, ids);
  }

  checkLength(tokens: number): void {
    if (tokens > this.model.maxPositions) throw new PromptTooLongError(tokens, this.model.maxPositions);
  }

  async generate(request: GenerateRequest): Promise<GenerateResult> {
    const mode = request.mode ?? 'block';
    const { blockIds, finalIds } = this.segment(request.blocks, request.prompt, request.raw);
    const promptTokenIds = [...blockIds.flat(), ...finalIds];
    this.checkLength(promptTokenIds.length);
    if (finalIds.length === 0) throw new Error('the final block is empty: give a prompt');
    const blocks: PromptBlock[] = [];
    let blockPrefillMs = 0;
    if (mode === 'block') {
      const t0 = performance.now();
      for (const ids of blockIds) {
        request.signal?.throwIfAborted();
        blocks.push({ kv: await this.prefill(ids), ids });
      }
      blockPrefillMs = performance.now() - t0;
    }
    // the result does not hold on to the prompt's KV
    const { present: _present, ...answered } = await this.answer(blocks, mode === 'block' ? finalIds : promptTokenIds, request);
    return { ...answered, promptTokenIds, mode, blockPrefillMs };
  }

  /** The prompt's past from blocks in prompt order (see assemble.ts), with this model's RoPE and forward pass. */
  assemble(blocks: readonly PromptBlock[], options: AssembleOptions = {}): Promise<AssembledPast> {
    return assembleBlocks(blocks, { rope: this.model.rope, kvShape: this.runner.kvShape, runner: this.runner }, options);
  }

  /**
   * The question-time path, the one every caller takes (generate, answering, the benchmarks): blocks
   * computed alone (in prompt order; none for full mode) are assembled, then the final block and
   * the answer are decoded with this model's stop tokens, within its context length.
   */
  async answer(blocks: readonly PromptBlock[], finalIds: readonly number[], request: AnswerRequest = {}): Promise<AnswerResult> {
    const startedAt = performance.now();
    const promptTokens = blocks.reduce((n, b) => n + b.kv.tokens, 0) + finalIds.length;
    this.checkLength(promptTokens);
    const { past } = await this.assemble(blocks, { boundaryTokens: request.boundaryTokens, signal: request.signal });
    request.signal?.throwIfAborted();
    const finalStart = performance.now();
    const decoded = await decode(this.runner, this.tokenizer, {
      past,
      finalIds,
      sampler: createSampler(request.sampling),
      maxNewTokens: Math.min(request.maxNewTokens ?? 256, this.model.maxPositions - promptTokens),
      stopTokenIds: this.stopTokenIds,
      stopStrings: request.stopStrings,
      signal: request.signal,
      onText: request.onText,
      startedAt: finalStart,
    });
    return {
      tokenIds: decoded.tokenIds,
      text: decoded.text,
      stopReason: decoded.stopReason,
      provider: this.provider,
      promptTokens,
      ttftMs: finalStart - startedAt + decoded.ttftMs,
      assembleMs: finalStart - startedAt,
      finalMs: decoded.ttftMs,
      tokensPerSecond: decoded.tokensPerSecond,
      topLogits: topLogits(decoded.firstLogits, 10),
      present: decoded.present,
    };
  }

  async release(): Promise<void> {
    await this.runner.release();
  }
}

