// Whether this machine has a WebGPU adapter for onnxruntime-node (in CI: Mesa's lavapipe, installed
// by .ci/vulkan.sh). Found once per test process by creating a small session on the WebGPU provider
// alone (no CPU fallback in the provider list, so a missing adapter is an error) and running it once.
import path from 'node:path';
import ort from 'onnxruntime-node';
import { createSession } from '../../native-models/session.ts';

const PROBE_MODEL = path.resolve('../shared/fixtures/stories260k-llama2c/onnx/model.onnx');

export interface WebGpuCheck {
  available: boolean;
  /** Why not, when not available. */
  why: string;
}

let check: Promise<WebGpuCheck> | undefined;

async function detect(): Promise<WebGpuCheck> {
  let session: ort.InferenceSession | undefined;
  try {
    session = await createSession(PROBE_MODEL, 'webgpu');
    const feeds: Record<string, ort.Tensor> = {};
    for (const meta of session.inputMetadata) {
      if (!meta.isTensor) continue;
      if (meta.name.startsWith('past_key_values')) {
        const dims = meta.shape.map((d, i) => (i === 2 ? 0 : typeof d === 'number' ? d : 1));
        feeds[meta.name] = new ort.Tensor('float32', new Float32Array(0), dims);
      } else {
        feeds[meta.name] = new ort.Tensor('int64', new BigInt64Array([1n]), [1, 1]);
      }
    }
    await session.run(feeds);
    return { available: true, why: '' };
  } catch (e) {
    return { available: false, why: (e as Error).message.split('\n')[0] };
  } finally {
    await session?.release();
  }
}

export function webGpuCheck(): Promise<WebGpuCheck> {
  check ??= detect();
  return check;
}
