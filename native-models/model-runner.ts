// One decoder session and its input/output contract, read from the session's metadata: which inputs
// exist, the KV names, element type and shape, and whether several new tokens may follow a past.
import ort from 'onnxruntime-node';
import { ModelLoadError } from './errors.ts';
import { emptyKv, type KvCache, type KvData, type KvDtype, type KvShape } from './kv.ts';
import { float16ToFloat32Array } from './float16.ts';
import type { ModelFolder } from './model-folder.ts';
import { openSession, type ProviderAttempt, type ProviderChoice, type SessionOptions } from './session.ts';

interface DecoderNames {
  inputIds: string;
  attentionMask?: string;
  positionIds?: string;
  useCacheBranch?: string;
  pastKeys: string[];
  pastValues: string[];
  logits: string;
  presentKeys: string[];
  presentValues: string[];
}

export interface ForwardResult {
  /** Logits of the last new token, or of every new token with `allLogits` (rows of length vocab). */
  logits: Float32Array[];
  /** Past and new tokens' KV together. */
  present: KvCache;
}

type Metadata = { name: string; isTensor: boolean; type?: string; shape?: readonly (number | string)[] };

function layerNames(names: readonly string[], pattern: RegExp, kind: 'key' | 'value'): string[] {
  const found = new Map<number, string>();
  for (const n of names) {
    const m = pattern.exec(n);
    if (m && m[2] === kind) found.set(Number(m[1]), n);
  }
  return [...found.keys()].sort((a, b) => a - b).map((i) => found.get(i)!);
}

function readNames(session: ort.InferenceSession): DecoderNames {
  const ins = session.inputNames;
  const outs = session.outputNames;
  const past = /^past(?:_key_values)?\.(\d+)\.(key|value)$/;
  const present = /^present(?:_key_values)?\.(\d+)\.(key|value)$/;
  const names: DecoderNames = {
    inputIds: ins.find((n) => n === 'input_ids') ?? '',
    attentionMask: ins.find((n) => n === 'attention_mask'),
    positionIds: ins.find((n) => n === 'position_ids'),
    useCacheBranch: ins.find((n) => n === 'use_cache_branch'),
    pastKeys: layerNames(ins, past, 'key'),
    pastValues: layerNames(ins, past, 'value'),
    logits: outs.find((n) => n === 'logits') ?? '',
    presentKeys: layerNames(outs, present, 'key'),
    presentValues: layerNames(outs, present, 'value'),
  };
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

function readKvShape(session: ort.InferenceSession, names: DecoderNames, model: ModelFolder): KvShape {
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
  return { dtype: type as KvDtype, layers: names.pastKeys.length, kvHeads, headDim };
}

function toFloat32(data: unknown): Float32Array {
  if (data instanceof Float32Array) return data;
  if (data instanceof Uint16Array) return float16ToFloat32Array(data);
  throw new Error('unexpected logits element type');
}

export class ModelRunner {
  /** False for exports that take only one new token per run once a past exists (probed at load). */
  multiTokenWithPast = true;

  private constructor(
    readonly session: ort.InferenceSession,
    private readonly names: DecoderNames,
    readonly kvShape: KvShape,
    readonly provider: Exclude<ProviderChoice, 'auto'>,
    readonly fallbacks: ProviderAttempt[],
    readonly vocabSize: number,
    /** Why this provider runs the model (provider-choice.ts). */
    readonly providerReason = '',
  ) {}

  static async open(model: ModelFolder, options: SessionOptions = {}): Promise<ModelRunner> {
    let opened;
    try {
      // `auto` times candidate sessions through this same runner (the code users run)
      opened = await openSession(model, options, (session, provider) => ModelRunner.forSession(session, model, provider));
    } catch (e) {
      throw new ModelLoadError(`cannot load ${model.onnxPath}: ${(e as Error).message}`, { cause: e });
    }
    const names = readNames(opened.session);
    const runner = new ModelRunner(
      opened.session,
      names,
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
    const names = readNames(session);
    return new ModelRunner(session, names, readKvShape(session, names, model), provider, [], Number(model.config.vocab_size));
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
      feeds[this.names.attentionMask] = new ort.Tensor('int64', new BigInt64Array(total).fill(1n), [1, total]);
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
    const logitsAll = toFloat32(out[this.names.logits].data);
    const vocab = logitsAll.length / n;
    const rows = allLogits ? Array.from({ length: n }, (_, i) => i) : [n - 1];
    const logits = rows.map((r) => logitsAll.slice(r * vocab, (r + 1) * vocab));
    const present: KvCache = {
      ...this.kvShape,
      tokens: total,
      keys: this.names.presentKeys.map((name) => out[name].data as KvData),
      values: this.names.presentValues.map((name) => out[name].data as KvData),
    };
    const expected = kvHeads * total * headDim;
    if (present.keys.some((k) => k.length !== expected)) {
      throw new Error(`present KV holds ${present.keys[0].length} elements, expected ${expected}: sliding-window caches are not supported`);
    }
    return { logits, present };
  }

  async release(): Promise<void> {
    await this.session.release();
  }
}
