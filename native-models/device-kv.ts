// KV that stays on the WebGPU device between runs (the runner option `kvOnDevice`). With the
// session option preferredOutputLocation, onnxruntime-node 1.30 returns present KV as 'gpu-buffer'
// tensors and takes them back as the next run's past without a copy, so a decode step moves only
// its logits. What 1.30 does not do, and how this file works around it:
// - a 'gpu-buffer' output cannot be downloaded: Tensor.getData() calls the binding's `download`,
//   which throws a C string ("not implemented") that aborts the process (js/node/src/tensor_helper.cc,
//   OrtValueToNapiValue). KvDownloader runs the tensors through an Identity graph on the same
//   WebGPU device whose outputs are on the CPU: onnxruntime copies them down as for any output.
// - the tensor holds its device buffer until dispose() (the binding gives the External no
//   finalizer), so every DeviceKv is disposed by whoever drops it: garbage collection frees nothing.
// - the output location is fixed per session, not per run (a pre-allocated CPU tensor in `fetches`
//   is ignored), so a runner with `kvOnDevice` downloads the presents of plain forward() calls.
import ort from 'onnxruntime-node';
import { identityModel } from './identity-graph.ts';
import type { KvCache, KvData, KvShape } from './kv.ts';

/** KV states of `tokens` tokens in the same layout as KvCache, held by 'gpu-buffer' tensors. */
export interface DeviceKv extends KvShape {
  readonly onDevice: true;
  tokens: number;
  keys: ort.Tensor[];
  values: ort.Tensor[];
}

export function isDeviceKv(kv: KvCache | DeviceKv): kv is DeviceKv {
  return (kv as DeviceKv).onDevice === true;
}

/** Frees the device buffers (a DeviceKv is unusable afterwards). */
export function disposeDeviceKv(kv: DeviceKv): void {
  for (const t of [...kv.keys, ...kv.values]) t.dispose();
  kv.keys = [];
  kv.values = [];
}

/** Frees the device buffers of a DeviceKv; a CPU cache needs nothing. */
export function releaseKv(kv: KvCache | DeviceKv): void {
  if (isDeviceKv(kv)) disposeDeviceKv(kv);
}

/** Bytes of KV one token adds (keys and values of every layer). */
export function kvBytesPerToken(shape: KvShape): number {
  return 2 * shape.layers * shape.kvHeads * shape.headDim * (shape.dtype === 'float16' ? 2 : 4);
}

/**
 * Bytes of KV moved between the CPU and a GPU provider's device by a runner: pasts fed from the CPU
 * are uploaded, presents returned to the CPU are downloaded (counted for GPU providers only; the
 * CPU provider copies nothing). Logits are not counted: every mode downloads them alike.
 */
export interface KvTraffic {
  uploadedBytes: number;
  downloadedBytes: number;
}

/** Brings DeviceKv back to the CPU through an Identity graph on the same device (see above). */
export class KvDownloader {
  private constructor(
    private readonly session: ort.InferenceSession,
    private readonly layers: number,
  ) {}

  static async open(shape: KvShape): Promise<KvDownloader> {
    const model = identityModel(2 * shape.layers, shape.dtype, 4);
    const session = await ort.InferenceSession.create(model, { executionProviders: ['webgpu'] });
    return new KvDownloader(session, shape.layers);
  }

  /** A CPU copy of `kv`; the device tensors stay as they are (the caller disposes them). */
  async download(kv: DeviceKv): Promise<KvCache> {
    if (kv.keys.length !== this.layers) throw new Error('KvDownloader: the cache has been disposed or has another shape');
    const feeds: Record<string, ort.Tensor> = {};
    for (let l = 0; l < this.layers; l++) {
      feeds[`in${2 * l}`] = kv.keys[l];
      feeds[`in${2 * l + 1}`] = kv.values[l];
    }
    const out = await this.session.run(feeds);
    const data = (i: number) => out[`out${i}`].data as KvData;
    return {
      dtype: kv.dtype,
      layers: kv.layers,
      kvHeads: kv.kvHeads,
      headDim: kv.headDim,
      tokens: kv.tokens,
      keys: Array.from({ length: this.layers }, (_, l) => data(2 * l)),
      values: Array.from({ length: this.layers }, (_, l) => data(2 * l + 1)),
    };
  }

  async release(): Promise<void> {
    await this.session.release();
  }
}
