import { describe, expect, it } from 'vitest';
import ort from 'onnxruntime-node';

describe('toolchain', () => {
  it('loads onnxruntime-node with the CPU provider', () => {
    expect(ort.listSupportedBackends().some((b) => b.name === 'cpu')).toBe(true);
  });
});
