// One decoder session and its input/output contract, read from the session's metadata (and, for
// onnxruntime-genai exports, genai_config.json): which inputs exist, the KV names, element type and
// shape, where positions come from, and whether several new tokens may follow a past.
import ort from 'onnxruntime-node';
import { ModelLoadError } from './errors.ts';
import { GRAPH_LAYOUTS, graphLayoutOf, type DecoderIoNames, type GraphLayout } from './export-style.ts';
import { emptyKv, type KvCache, type KvData, type KvShape } from './kv.ts';
import { float16ToFloat32Array } from './float16.ts';
import type { ModelFolder } from './model-folder.ts';
import { openSession, type ProviderAttempt, type ProviderChoice, type SessionOptions } from './session.ts';

export interface ForwardResult {
  /** Logits of the last new token, or of every new token with `allLogits` (rows of length vocab). */
  logits: Float32Array[];
  /** Past and new tokens' KV together. */
  present: KvCache;
}

/** What the engine learned about a loaded decoder, for callers that explain or adapt to it. */
export interface DecoderContract {
  layout: GraphLayout;
  /**
   * `position_ids`: any position can be given. `after-past`: the graph has no position_ids input
   * and places new tokens right after the past (positions from the attention mask or the past's
   * length, as onnxruntime-genai's GroupQueryAttention does).
   */
  positions: 'position_ids' | 'after-past';
  /** The exporter's runtime shares one max-length past/present buffer (the engine feeds exact lengths). */
  sharedKvBuffer: boolean;
  /** False for exports that take only one new token per run once a past exists (probed at load). */
  multiTokenWithPast: boolean;
}

/** A run that the model's contract cannot express (tokens at positions that do not follow the past). */
export class UnsupportedPositionsError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'UnsupportedPositionsError';
  }
}

type Metadata = { name: string; isTensor: boolean; type?: string; shape?: readonly (number | string)[] };

function readNames(session: ort.InferenceSession, model: ModelFolder): DecoderIoNames {
  const ins = session.inputNames;
  const names = GRAPH_LAYOUTS[graphLayoutOf(model)].names(ins, session.outputNames, model);
  if (!names.inputIds) throw new ModelLoadError('model has no input_ids input: not a decoder-only language model');
  if (!names.logits) throw new ModelLoadError('model has no logits output: not a causal language model');
  if (names.pastKeys.length === 0) {
    throw new ModelLoadError('model has no past_key_values inputs: its KV states cannot be stored (export it "with past")');
  }
  if (
    names.pastKeys.length !== names.pastValues.length ||
    names.presentKeys.length !== names.pastKeys.length ||
    names.presentValues.length !== names.pastKeys.length
  ) {
    throw new ModelLoadError('model has mismatched past_key_values inputs and present outputs');
  }
  const others = ins.filter(
    (n) => ![names.inputIds, names.attentionMask, names.positionIds, names.useCacheBranch, ...names.pastKeys, ...names.pastValues].includes(n),
  );
  if (others.length) throw new ModelLoadError(`model has inputs the engine cannot feed: ${others.join(', ')}`);
  return names;
}

function readKvShape(session: ort.InferenceSession, names: DecoderIoNames, model: ModelFolder): KvShape {
  const meta = (session.inputMetadata as unknown as Metadata[]).find((m) => m.name === names.pastKeys[0]);
  const type = meta?.type;
  if (type !== 'float32' && type !== 'float16') {
    throw new ModelLoadError(`KV element type ${type ?? 'unknown'} is not supported (float32 and float16 are)`);
  }
  const dims = meta?.shape ?? [];
  const cfg = model.config;
  const kvHeads = typeof dims[1] === 'number' ? dims[1] : Number(cfg.num_key_value_heads ?? cfg.num_attention_heads);
  const headDim = typeof dims[3] === 'number' ? dims[3] : model.rope.headDim;
  if (!(kvHeads > 0) || !(headDim > 0)) throw new ModelLoadError('cannot tell the KV heads and head size of this model');
  return { dtype: type, layers: names.pastKeys.length, kvHeads, headDim };
}

function toFloat32(data: unknown): Float32Array {
  if (data instanceof Float32Array) return data;
  if (data instanceof Uint16Array) return float16ToFloat32Array(data);
  throw new Error('unexpected logits element type');
}

export class ModelRunner {
  /** False for exports that take only one new token per run once a past exists (probed at load). */
  multiTokenWithPast = true;
  /** Ones for the attention mask, shared by every run (see onesMask). */
  private ones = new BigInt64Array(0);

  private constructor(
    readonly session: ort.InferenceSession,
    private readonly names: DecoderIoNames,
    private readonly layout: GraphLayout,
    private readonly sharedKvBuffer: boolean,
    readonly kvShape: KvShape,
    readonly provider: Exclude<ProviderChoice, 'auto'>,
    readonly fallbacks: ProviderAttempt[],
    readonly vocabSize: number,
    /** Why this provider runs the model (provider-choice.ts). */
    readonly providerReason = '',
  ) {}

  static async open(model: ModelFolder, options: SessionOptions = {}): Promise<ModelRunner> {
    const layout = GRAPH_LAYOUTS[graphLayoutOf(model)];
    const refusal = layout.refusal(model);
    if (refusal) throw new ModelLoadError(`unsupported model: ${refusal}`);
    let opened;
    try {
      // `auto` times candidate sessions through this same runner (the code users run)
      opened = await openSession(model, options, (session, provider) => ModelRunner.forSession(session, model, provider));
    } catch (e) {
      throw new ModelLoadError(`cannot load ${model.onnxPath}: ${(e as Error).message}`, { cause: e });
    }
    const names = readNames(opened.session, model);
    const runner = new ModelRunner(
      opened.session,
      names,
      graphLayoutOf(model),
      layout.sharedKvBuffer(model),
      readKvShape(opened.session, names, model),
      opened.provider,
      opened.fallbacks,
      Number(model.config.vocab_size),
      opened.reason,
    );
    runner.multiTokenWithPast = await runner.probeMultiTokenWithPast();
    return runner;
  }

  /** A runner around an opened session, without the load-time probe: what `auto` times providers with. */
  static forSession(session: ort.InferenceSession, model: ModelFolder, provider: Exclude<ProviderChoice, 'auto'>): ModelRunner {
    const layout = graphLayoutOf(model);
    const names = readNames(session, model);
    const kvShape = readKvShape(session, names, model);
    return new ModelRunner(session, names, layout, GRAPH_LAYOUTS[layout].sharedKvBuffer(model), kvShape, provider, [], Number(model.config.vocab_size));
  }

  get contract(): DecoderContract {
    return {
      layout: this.layout,
      positions: this.names.positionIds ? 'position_ids' : 'after-past',
      sharedKvBuffer: this.sharedKvBuffer,
      multiTokenWithPast: this.multiTokenWithPast,
    };
  }

  /** Plain sentences on how this model is fed, for `quire` to show and for bug reports. */
  describe(): string[] {
    const c = this.contract;
    const lines = [
      c.layout === 'genai' ? 'onnxruntime-genai export (genai_config.json)' : 'Optimum / transformers.js export',
      `KV cache: ${this.kvShape.layers} layers x ${this.kvShape.kvHeads} KV heads x head size ${this.kvShape.headDim}, ${this.kvShape.dtype}`,
    ];
    if (c.positions === 'after-past') {
      lines.push(
        'no position_ids input: the model places new tokens right after the past (positions from the attention mask); block mode is exact because blocks are prefilled from position 0 and the final block follows the assembled past, but a block cannot be computed at any other offset',
      );
    }
    if (c.sharedKvBuffer) {
      lines.push('past and present share a max-length buffer in onnxruntime-genai; the engine feeds the past at its length instead');
    }
    if (!c.multiTokenWithPast) lines.push('takes one new token per run once a past exists: a final block is fed token by token');
    return lines;
  }

  private async probeMultiTokenWithPast(): Promise<boolean> {
    const first = await this.runOnce([0], [0], emptyKv(this.kvShape), false);
    try {
      // the expected failure is logged by onnxruntime at error level: keep the probe quiet
      await this.runOnce([0, 0], [1, 2], first.present, false, { logSeverityLevel: 4 });
      return true;
    } catch {
      return false;
    }
  }

  /** Runs new tokens at the given positions after `past`; feeds them one per run where the model needs it. */
  async forward(ids: readonly number[], positions: readonly number[], past: KvCache, options: { allLogits?: boolean } = {}): Promise<ForwardResult> {
    if (ids.length !== positions.length) throw new Error('forward: ids and positions differ in length');
    if (ids.length === 0) throw new Error('forward: no tokens');
    if (!this.names.positionIds && positions.some((p, i) => p !== past.tokens + i)) {
      throw new UnsupportedPositionsError(
        `this model has no position_ids input: it places new tokens right after the past (positions ${past.tokens}..${past.tokens + ids.length - 1}), so it cannot run tokens at positions ${positions[0]}..${positions[positions.length - 1]}`,
      );
    }
    if (this.multiTokenWithPast || past.tokens === 0 || ids.length === 1) {
      return this.runOnce(ids, positions, past, options.allLogits ?? false);
    }
    const logits: Float32Array[] = [];
    let present = past;
    for (let i = 0; i < ids.length; i++) {
      const step = await this.runOnce([ids[i]], [positions[i]], present, false);
      if (options.allLogits || i === ids.length - 1) logits.push(step.logits[0]);
      present = step.present;
    }
    return { logits, present };
  }

  private async runOnce(
    ids: readonly number[],
    positions: readonly number[],
    past: KvCache,
    allLogits: boolean,
    runOptions: ort.InferenceSession.RunOptions = {},
  ): Promise<ForwardResult> {
    const n = ids.length;
    const { dtype, layers, kvHeads, headDim } = this.kvShape;
    const total = past.tokens + n;
    const feeds: Record<string, ort.Tensor> = {
      [this.names.inputIds]: new ort.Tensor('int64', BigInt64Array.from(ids, BigInt), [1, n]),
    };
    if (this.names.attentionMask) {
      feeds[this.names.attentionMask] = new ort.Tensor('int64', this.onesMask(total), [1, total]);
    }
    if (this.names.positionIds) {
      feeds[this.names.positionIds] = new ort.Tensor('int64', BigInt64Array.from(positions, BigInt), [1, n]);
    }
    if (this.names.useCacheBranch) {
      feeds[this.names.useCacheBranch] = new ort.Tensor('bool', new Uint8Array([past.tokens > 0 ? 1 : 0]), [1]);
    }
    const pastDims = [1, kvHeads, past.tokens, headDim];
    for (let l = 0; l < layers; l++) {
      feeds[this.names.pastKeys[l]] = new ort.Tensor(dtype, past.keys[l], pastDims);
      feeds[this.names.pastValues[l]] = new ort.Tensor(dtype, past.values[l], pastDims);
    }
    const out = await this.session.run(feeds, runOptions);
    const logits = logitRows(toFloat32(out[this.names.logits].data), n, allLogits);
    const present: KvCache = {
      ...this.kvShape,
      tokens: total,
      keys: this.names.presentKeys.map((name) => out[name].data as KvData),
      values: this.names.presentValues.map((name) => out[name].data as KvData),
    };
    const expected = kvHeads * total * headDim;
    if ([...present.keys, ...present.values].some((k) => k.length !== expected)) {
      throw new Error(
        `present KV holds ${present.keys[0].length} elements, expected ${expected}: caches that do not hold every token (sliding-window caches) are not supported`,
      );
    }
    return { logits, present };
  }

  /**
   * An attention mask of `total` ones: a view of one buffer kept across runs (grown by doubling), so
   * a decoding step allocates no new mask. Safe to share: nothing ever writes to it after it is
   * filled, and the binding only reads it during the run.
   */
  private onesMask(total: number): BigInt64Array {
    if (this.ones.length < total) this.ones = new BigInt64Array(Math.max(total, 2 * this.ones.length)).fill(1n);
    return this.ones.subarray(0, total);
  }

  async release(): Promise<void> {
    await this.session.release();
  }
}

/**
 * The rows of logits a run returns: each row of `n` (allLogits) or the last. A one-token run's
 * logits are the binding's own fresh array, returned as it is (no copy of the vocabulary per
 * decoding step); rows of a longer run are copied out so the caller does not keep the whole
 * n x vocab array alive.
 */
export function logitRows(all: Float32Array, n: number, allLogits: boolean): Float32Array[] {
  if (n === 1) return [all];
  const vocab = all.length / n;
  const rows = allLogits ? Array.from({ length: n }, (_, i) => i) : [n - 1];
  return rows.map((r) => all.slice(r * vocab, (r + 1) * vocab));
}
