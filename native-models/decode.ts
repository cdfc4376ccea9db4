// The decoding loop: run the final block against a past, then generate one token at a time with
// streaming, stop tokens, stop strings, a token limit and cancellation.
import { DecodeKv } from './decode-kv.ts';
import type { KvCache } from './kv.ts';
import type { ModelRunner } from './model-runner.ts';
import { positionRange } from './prefill.ts';
import type { Sampler } from './sampling.ts';
import type { TextTokenizer } from './tokenizer.ts';

export interface DecodeRequest {
  past: KvCache;
  /** The final block's tokens; they sit right after the past. */
  finalIds: readonly number[];
  sampler: Sampler;
  maxNewTokens: number;
  stopTokenIds: readonly number[];
  stopStrings?: readonly string[];
  signal?: AbortSignal;
  /** Called with each piece of text as soon as it is known. */
  onText?: (piece: string) => void;
  /** performance.now() when the question arrived, if earlier than this call (assembly counts towards TTFT). */
  startedAt?: number;
}

export type StopReason = 'eos' | 'stop-string' | 'max-tokens';

export interface DecodeResult {
  tokenIds: number[];
  text: string;
  stopReason: StopReason;
  /** Logits of the first generated position (after the final block). */
  firstLogits: Float32Array;
  /** From `startedAt` (or the call) to the first sampled token. */
  ttftMs: number;
  /**
   * THE tokens-per-second figure (live and stored alike): the generated tokens after the first,
   * divided by the time from the first sampled token to the last. Prefill and the first token's wait
   * are TTFT's, not part of it. Null when fewer than two tokens were generated (no interval).
   */
  tokensPerSecond: number | null;
  /** The past, the final block and the generated tokens that were fed back (not the last sampled one). */
  present: KvCache;
}

export async function decode(runner: ModelRunner, tokenizer: TextTokenizer, request: DecodeRequest): Promise<DecodeResult> {
  const kv = new DecodeKv(runner);
  try {
    return await decodeLoop(kv, tokenizer, request);
  } finally {
    kv.release();
  }
}

/** `runner` steps through DecodeKv, so a runner that keeps KV on the device copies only logits per step. */
async function decodeLoop(runner: DecodeKv, tokenizer: TextTokenizer, request: DecodeRequest): Promise<DecodeResult> {
  const started = request.startedAt ?? performance.now();
  const { signal } = request;
  signal?.throwIfAborted();
  const stream = tokenizer.streamDecoder();
  const stopStrings = request.stopStrings ?? [];
  const tokenIds: number[] = [];
  let text = '';
  let stopReason: StopReason = 'max-tokens';
  let position = request.past.tokens;
  let step = await runner.forward(request.finalIds, positionRange(position, request.finalIds.length), request.past);
  position += request.finalIds.length;
  const firstLogits = step.logits[0];
  let ttftMs = 0;
  let firstAt = 0;
  let lastAt = 0;
  // text[0..shown) has gone to onText. A tail that may be the start of a stop string is held back
  // until the next piece says whether it is one, so a stream never shows part of a stop string.
  let shown = 0;
  const show = (upTo: number) => {
    if (upTo <= shown) return;
    request.onText?.(text.slice(shown, upTo));
    shown = upTo;
  };
  const emit = (piece: string) => {
    if (!piece) return false;
    const before = text.length;
    text += piece;
    const hit = stopStrings
      .map((s) => text.indexOf(s, Math.max(0, before - s.length + 1)))
      .filter((i) => i >= 0)
      .sort((a, b) => a - b)[0];
    if (hit !== undefined) {
      text = text.slice(0, hit);
      show(text.length);
      return true;
    }
    show(text.length - heldBack(text, shown, stopStrings));
    return false;
  };
  while (tokenIds.length < request.maxNewTokens) {
    signal?.throwIfAborted();
    const token = request.sampler(step.logits[step.logits.length - 1]);
    const sampledAt = performance.now();
    if (tokenIds.length === 0) {
      firstAt = sampledAt;
      ttftMs = firstAt - started;
    }
    if (request.stopTokenIds.includes(token)) {
      stopReason = 'eos';
      break;
    }
    tokenIds.push(token);
    lastAt = sampledAt;
    if (emit(stream.push(token))) {
      stopReason = 'stop-string';
      break;
    }
    if (tokenIds.length >= request.maxNewTokens) break;
    step = await runner.forward([token], [position], step.present);
    position += 1;
  }
  if (stopReason !== 'stop-string' && emit(stream.flush())) stopReason = 'stop-string';
  show(text.length);
  return {
    tokenIds,
    text,
    stopReason,
    firstLogits,
    ttftMs,
    tokensPerSecond: tokensPerSecond(tokenIds.length, firstAt, lastAt),
    present: await runner.toCpu(step.present),
  };
}

/** Length of the longest tail of text[from..] that is a proper prefix of a stop string (0 when none). */
function heldBack(text: string, from: number, stopStrings: readonly string[]): number {
  let held = 0;
  for (const s of stopStrings) {
    for (let n = Math.min(s.length - 1, text.length - from); n > held; n--) {
      if (text.endsWith(s.slice(0, n))) {
        held = n;
        break;
      }
    }
  }
  return held;
}

/** See DecodeResult.tokensPerSecond: `count` tokens, the first sampled at `firstAt`, the last at `lastAt` (ms). */
export function tokensPerSecond(count: number, firstAt: number, lastAt: number): number | null {
  return count > 1 && lastAt > firstAt ? ((count - 1) * 1000) / (lastAt - firstAt) : null;
}
