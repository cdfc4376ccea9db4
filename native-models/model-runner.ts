// One decoder session and its input/output contract, read from the session's metadata (and, for
// onnxruntime-genai exports, genai_config.json): which inputs exist, the KV names, element type and
// shape, where positions come from, and whether several new tokens may follow a past.
import ort from 'onnxruntime-node';
import { ModelLoadError } from './errors.ts';
import { GRAPH_LAYOUTS, graphLayoutOf, type DecoderIoNames, type GraphLayout } from './export-style.ts';
import { emptyKv, type KvCache, type KvData, type KvShape } from './kv.ts';
import { disposeDeviceKv, isDeviceKv, KvDownloader, kvBytesPerToken, releaseKv, type DeviceKv, type KvTraffic } from './device-kv.ts';
import { float16ToFloat32Array } from './float16.ts';
import type { ModelFolder } from './model-folder.ts';
import { createSession, openSession, type ProviderAttempt, type ProviderChoice, type SessionOptions } from './session.ts';

export interface ForwardResult {
  /** Logits of the last new token, or of every new token with `allLogits` (rows of length vocab). */
  logits: Float32Array[];
  /** Past and new tokens' KV together. */
  present: KvCache;
}

/** forwardOnDevice's result: the present stays on the device when the runner keeps KV there. */
export interface DeviceForwardResult {
  logits: Float32Array[];
  present: KvCache | DeviceKv;
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
  /** KV bytes this runner moved between the CPU and a GPU provider's device (device-kv.ts). */
  readonly kvTraffic: KvTraffic = { uploadedBytes: 0, downloadedBytes: 0 };
  /** Set when present KV outputs stay on the WebGPU device (SessionOptions.kvOnDevice). */
  private downloader?: KvDownloader;
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
    const onDevice = (options.kvOnDevice ?? true) && opened.provider === 'webgpu' ? await reopenWithKvOnDevice(model, opened.session, names, options.threads) : undefined;
    const runner = new ModelRunner(
      onDevice?.session ?? opened.session,
      names,
      graphLayoutOf(model),
      layout.sharedKvBuffer(model),
      readKvShape(opened.session, names, model),
      opened.provider,
      opened.fallbacks,
      Number(model.config.vocab_size),
      opened.reason,
    );
    runner.downloader = onDevice?.downloader;
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
      releaseKv((await this.runOnce([0, 0], [1, 2], first.present, false, { logSeverityLevel: 4 })).present);
      return true;
    } catch {
      return false;
    } finally {
      releaseKv(first.present);
    }
  }

  /** Whether present KV stays on the WebGPU device between runs (forwardOnDevice keeps it there). */
  get kvOnDevice(): boolean {
    return this.downloader !== undefined;
  }

  /** Runs new tokens at the given positions after `past`; feeds them one per run where the model needs it. */
  async forward(ids: readonly number[], positions: readonly number[], past: KvCache | DeviceKv, options: { allLogits?: boolean } = {}): Promise<ForwardResult> {
    const { logits, present } = await this.forwardOnDevice(ids, positions, past, options);
    return { logits, present: await this.kvToCpu(present) };
  }

  /**
   * forward() that leaves the present on the device when the runner keeps KV there (a DeviceKv to
   * feed back as the next past; the caller disposes it, or hands it to kvToCpu), else on the CPU.
   * `past` is left as it is, on the device or not.
   */
  async forwardOnDevice(
    ids: readonly number[],
    positions: readonly number[],
    past: KvCache | DeviceKv,
    options: { allLogits?: boolean } = {},
  ): Promise<DeviceForwardResult> {
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
      // the intermediate presents are this loop's own: free their device buffers as they are passed
      if (present !== past && isDeviceKv(present)) disposeDeviceKv(present);
      present = step.present;
    }
    return { logits, present };
  }

  /** The cache on the CPU: a DeviceKv is downloaded and its device buffers freed; a CPU cache is returned as is. */
  async kvToCpu(kv: KvCache | DeviceKv): Promise<KvCache> {
    if (!isDeviceKv(kv)) return kv;
    if (!this.downloader) throw new Error('kvToCpu: this runner does not keep KV on a device');
    const cpu = await this.downloader.download(kv);
    this.kvTraffic.downloadedBytes += kv.tokens * kvBytesPerToken(kv);
    disposeDeviceKv(kv);
    return cpu;
  }

  private async runOnce(
    ids: readonly number[],
    positions: readonly number[],
    past: KvCache | DeviceKv,
    allLogits: boolean,
    runOptions: ort.InferenceSession.RunOptions = {},
  ): Promise<DeviceForwardResult> {
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
      feeds[this.names.pastKeys[l]] = isDeviceKv(past) ? past.keys[l] : new ort.Tensor(dtype, past.keys[l], pastDims);
      feeds[this.names.pastValues[l]] = isDeviceKv(past) ? past.values[l] : new ort.Tensor(dtype, past.values[l], pastDims);
    }
    const out = await this.session.run(feeds, runOptions);
    const onDevice = this.countKvTraffic(past, out, total);
    const logits = logitRows(toFloat32(out[this.names.logits].data), n, allLogits);
    if (onDevice) return { logits, present: this.deviceKvOf(out, total) };
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
   * Whether one run can prefill several blocks from an empty past (prefillRows): the graph takes
   * positions and a per-row attention mask, and its batch axis is not fixed at 1.
   */
  get batchPrefill(): boolean {
    const meta = (this.session.inputMetadata as unknown as Metadata[]).find((m) => m.name === this.names.inputIds);
    const batch = meta?.shape?.[0];
    return Boolean(this.names.positionIds && this.names.attentionMask) && batch !== 1;
  }

  /**
   * The KV of each row computed alone from position 0, all rows in one run: rows are right-padded to
   * the longest, and each row's attention mask leaves its padding out, so a real token sees exactly
   * its own row's earlier tokens (what a run of that row alone computes); each row's KV is cut to its
   * own length. Only where batchPrefill holds (prefill.ts prefillBlocks decides).
   */
  async prefillRows(rows: readonly (readonly number[])[]): Promise<KvCache[]> {
    if (!this.batchPrefill) throw new Error('prefillRows: this model cannot run several blocks at once (no position_ids or attention_mask input, or a fixed batch of 1)');
    if (rows.length === 0) return [];
    if (rows.some((r) => r.length === 0)) throw new Error('prefillRows: an empty row');
    const { dtype, layers, kvHeads, headDim } = this.kvShape;
    const batch = rows.length;
    const width = Math.max(...rows.map((r) => r.length));
    const ids = new BigInt64Array(batch * width); // padding: token 0, never attended to by a real token
    const mask = new BigInt64Array(batch * width);
    const positions = new BigInt64Array(batch * width);
    rows.forEach((row, b) => {
      for (let i = 0; i < width; i++) {
        positions[b * width + i] = BigInt(i);
        if (i < row.length) {
          ids[b * width + i] = BigInt(row[i]);
          mask[b * width + i] = 1n;
        }
      }
    });
    const feeds: Record<string, ort.Tensor> = {
      [this.names.inputIds]: new ort.Tensor('int64', ids, [batch, width]),
      [this.names.attentionMask!]: new ort.Tensor('int64', mask, [batch, width]),
      [this.names.positionIds!]: new ort.Tensor('int64', positions, [batch, width]),
    };
    if (this.names.useCacheBranch) feeds[this.names.useCacheBranch] = new ort.Tensor('bool', new Uint8Array([0]), [1]);
    const empty = emptyKv(this.kvShape);
    for (let l = 0; l < layers; l++) {
      feeds[this.names.pastKeys[l]] = new ort.Tensor(dtype, empty.keys[l], [batch, kvHeads, 0, headDim]);
      feeds[this.names.pastValues[l]] = new ort.Tensor(dtype, empty.values[l], [batch, kvHeads, 0, headDim]);
    }
    // only the KV is fetched (the rows' logits are not needed), except with KV on the device: there
    // onnxruntime-node 1.30 fails a run that fetches some outputs only ("Tensor size mismatch")
    const kvNames = [...this.names.presentKeys, ...this.names.presentValues];
    const out = await (this.kvOnDevice ? this.session.run(feeds) : this.session.run(feeds, kvNames));
    const onDevice = out[this.names.presentKeys[0]].location === 'gpu-buffer';
    let keys: KvData[];
    let values: KvData[];
    if (this.provider !== 'cpu') this.kvTraffic.downloadedBytes += batch * width * kvBytesPerToken(this.kvShape);
    if (onDevice) {
      const deviceKv = this.deviceKvOf(out, width);
      try {
        ({ keys, values } = await this.downloader!.download(deviceKv));
      } finally {
        disposeDeviceKv(deviceKv);
      }
    } else {
      keys = this.names.presentKeys.map((name) => out[name].data as KvData);
      values = this.names.presentValues.map((name) => out[name].data as KvData);
    }
    const expected = batch * kvHeads * width * headDim;
    if ([...keys, ...values].some((k) => k.length !== expected)) {
      throw new Error(`present KV holds ${keys[0].length} elements, expected ${expected}: caches that do not hold every token (sliding-window caches) are not supported`);
    }
    return rows.map((row, b) => ({
      ...this.kvShape,
      tokens: row.length,
      keys: keys.map((data) => cutRow(data, b, kvHeads, width, headDim, row.length)),
      values: values.map((data) => cutRow(data, b, kvHeads, width, headDim, row.length)),
    }));
  }

  /** Counts a run's KV copies (GPU providers); true when its presents stayed on the device. */
  private countKvTraffic(past: KvCache | DeviceKv, out: ort.InferenceSession.ReturnType, total: number): boolean {
    const onDevice = out[this.names.presentKeys[0]].location === 'gpu-buffer';
    if (this.provider === 'cpu') return onDevice;
    const perToken = kvBytesPerToken(this.kvShape);
    if (!isDeviceKv(past)) this.kvTraffic.uploadedBytes += past.tokens * perToken;
    if (!onDevice) this.kvTraffic.downloadedBytes += total * perToken;
    return onDevice;
  }

  /** The presents of a run as a DeviceKv, checked to hold every token as the CPU path checks them. */
  private deviceKvOf(out: ort.InferenceSession.ReturnType, total: number): DeviceKv {
    const kv: DeviceKv = {
      ...this.kvShape,
      onDevice: true,
      tokens: total,
      keys: this.names.presentKeys.map((name) => out[name] as ort.Tensor),
      values: this.names.presentValues.map((name) => out[name] as ort.Tensor),
    };
    const wrong = [...kv.keys, ...kv.values].find((t) => t.dims[2] !== total);
    if (wrong) {
      disposeDeviceKv(kv);
      throw new Error(`present KV holds ${wrong.dims[2]} tokens, expected ${total}: caches that do not hold every token (sliding-window caches) are not supported`);
    }
    return kv;
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
    await this.downloader?.release();
    await this.session.release();
  }
}

/** Row `b` of a [batch, heads, width, headDim] tensor, its first `tokens` tokens, as [heads, tokens, headDim]. */
function cutRow(data: KvData, b: number, heads: number, width: number, headDim: number, tokens: number): KvData {
  const out = data instanceof Uint16Array ? new Uint16Array(heads * tokens * headDim) : new Float32Array(heads * tokens * headDim);
  for (let h = 0; h < heads; h++) {
    const from = ((b * heads + h) * width) * headDim;
    out.set(data.subarray(from, from + tokens * headDim), h * tokens * headDim);
  }
  return out;
}

/**
 * The session again with its present KV outputs on the device (logits stay on the CPU), and the
 * downloader for them. The output names come from the session opened first (preferredOutputLocation
 * names them before a session exists), which is released: loading twice is the price of the option.
 */
async function reopenWithKvOnDevice(
  model: ModelFolder,
  first: ort.InferenceSession,
  names: DecoderIoNames,
  threads: number | undefined,
): Promise<{ session: ort.InferenceSession; downloader: KvDownloader }> {
  await first.release();
  const session = await createSession(model.onnxPath, 'webgpu', threads, [...names.presentKeys, ...names.presentValues]);
  const downloader = await KvDownloader.open(readKvShape(session, names, model));
  return { session, downloader };
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
