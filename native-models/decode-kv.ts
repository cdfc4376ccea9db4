// The KV a decode loop carries from step to step, kept on the device when the runner keeps KV there
// (device-kv.ts): the past is uploaded once, by the final block's run, then each step's present is
// fed back as the next past where it lies, and only the last comes back to the CPU. Each present is
// freed once the next step has used it, and the last one when the loop ends however it ends.
import { releaseKv, type DeviceKv } from './device-kv.ts';
import type { KvCache } from './kv.ts';
import type { DeviceForwardResult, ModelRunner } from './model-runner.ts';

export class DecodeKv {
  /** The present of the latest step (the loop's only live one); the request's past is never freed here. */
  private live?: KvCache | DeviceKv;

  constructor(private readonly runner: ModelRunner) {}

  /** ModelRunner.forward for the loop: `past` is the request's past or the previous step's present. */
  async forward(ids: readonly number[], positions: readonly number[], past: KvCache | DeviceKv): Promise<DeviceForwardResult> {
    const step = await this.runner.forwardOnDevice(ids, positions, past);
    if (this.live && this.live === past) releaseKv(this.live);
    this.live = step.present;
    return step;
  }

  /** The latest present on the CPU (downloaded once, at the end). */
  async toCpu(kv: KvCache | DeviceKv): Promise<KvCache> {
    const cpu = await this.runner.kvToCpu(kv);
    if (kv === this.live) this.live = undefined;
    return cpu;
  }

  /** Frees the device buffers of a present still held (after cancellation or an error). */
  release(): void {
    if (this.live) releaseKv(this.live);
    this.live = undefined;
  }
}
