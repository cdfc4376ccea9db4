// Building blocks the model generators share: a graph builder (nodes, constants, weights in an
// external data file) and the linear layer in each weight format (MatMul on float weights, or
// com.microsoft MatMulNBits on 4-bit blocks).
import { open } from 'node:fs/promises';
import { OnnxDataType, type AttributeProto, type ExternalDataRef, type NodeProto, type TensorProto } from './onnx-proto.ts';
import { floatBytes, quantizeQ4, Q4_BLOCK_SIZE } from './weight-formats.ts';

/** The ONNX spec asks for page-aligned external data offsets so runtimes can memory-map them. */
const EXTERNAL_DATA_ALIGNMENT = 4096;
export const MS_DOMAIN = 'com.microsoft';

export const int = (name: string, value: number): AttributeProto => ({ name, kind: 'int', value });
export const ints = (name: string, value: number[]): AttributeProto => ({ name, kind: 'ints', value });
export const float = (name: string, value: number): AttributeProto => ({ name, kind: 'float', value });

export type FloatType = 'float32' | 'float16';
export const onnxFloat = (t: FloatType) => (t === 'float16' ? OnnxDataType.FLOAT16 : OnnxDataType.FLOAT);

/** Lays tensors end to end in the external data file; they are written later, tensor by tensor. */
class ExternalData {
  readonly tensors: { data: Uint8Array; offset: number }[] = [];
  private size = 0;

  constructor(readonly location: string) {}

  add(data: Uint8Array): ExternalDataRef {
    const offset = Math.ceil(this.size / EXTERNAL_DATA_ALIGNMENT) * EXTERNAL_DATA_ALIGNMENT;
    this.tensors.push({ data, offset });
    this.size = offset + data.byteLength;
    return { location: this.location, offset, length: data.byteLength };
  }

  /** Streams each tensor to its offset (the gaps read back as zeros), never joining them in memory. */
  async write(file: string): Promise<void> {
    const handle = await open(file, 'w');
    try {
      // ONNX raw data is little-endian, like every platform Node runs on
      for (const { data, offset } of this.tensors) await handle.write(data, 0, data.byteLength, offset);
    } finally {
      await handle.close();
    }
  }
}

/**
 * Collects nodes and initializers; node outputs get unique names unless the graph fixes them.
 * `floatType` is the activations' element type: float constants and weights are stored in it.
 */
export class GraphBuilder {
  readonly nodes: NodeProto[] = [];
  readonly initializers: TensorProto[] = [];
  readonly externalData: ExternalData;
  private readonly constants = new Map<string, string>();
  private counter = 0;

  constructor(
    externalDataFile: string,
    readonly floatType: FloatType,
  ) {
    this.externalData = new ExternalData(externalDataFile);
  }

  /** A node with one output; returns the output's name (`output` when given, e.g. a graph output). */
  op(opType: string, inputs: string[], attributes: AttributeProto[] = [], output?: string, domain?: string): string {
    return this.node(opType, inputs, [output], attributes, domain)[0];
  }

  /** A node with several outputs: a name to fix it, '' to leave an optional output out, undefined for a fresh name. */
  node(opType: string, inputs: string[], outputs: (string | undefined)[], attributes: AttributeProto[] = [], domain?: string): string[] {
    const name = `${opType}_${this.counter++}`;
    const named = outputs.map((o, i) => o ?? `${name}/out${i}`);
    this.nodes.push({ opType, inputs, outputs: named, name, attributes, domain });
    return named;
  }

  /** Split along the last axis into parts of the given sizes. */
  split(x: string, sizes: number[]): string[] {
    return this.node('Split', [x, this.int64(sizes)], sizes.map(() => undefined), [int('axis', -1)]);
  }

  /** x cast to the activations' type (a no-op for float32 graphs). */
  toFloatType(x: string): string {
    return this.floatType === 'float32' ? x : this.op('Cast', [x], [int('to', onnxFloat(this.floatType))]);
  }

  /** x cast to float32 (a no-op for float32 graphs). */
  toFloat32(x: string): string {
    return this.floatType === 'float32' ? x : this.op('Cast', [x], [int('to', OnnxDataType.FLOAT)]);
  }

  /** An int64 constant (a scalar when `dims` is []), shared between uses. */
  int64(values: number[], dims: number[] = [values.length]): string {
    return this.constant(`int64:${dims}:${values}`, () => ({ dataType: OnnxDataType.INT64, dims, int64Data: values }));
  }

  /** A float32 constant whatever the activations' type (for the parts computed in float32). */
  float32(values: Float32Array | number[], dims: number[] = [values.length]): string {
    return this.floatConstant(Float32Array.from(values), dims, 'float32');
  }

  /** A constant in the activations' type. */
  float(values: Float32Array | number[], dims: number[] = [values.length]): string {
    return this.floatConstant(Float32Array.from(values), dims, this.floatType);
  }

  private floatConstant(data: Float32Array, dims: number[], type: FloatType): string {
    return this.constant(`${type}:${dims}:${data}`, () => ({ dataType: onnxFloat(type), dims, rawData: floatBytes(data, type) }));
  }

  private constant(key: string, make: () => Omit<TensorProto, 'name'>): string {
    let name = this.constants.get(key);
    if (!name) {
      name = `const_${this.constants.size}`;
      this.initializers.push({ name, ...make() });
      this.constants.set(key, name);
    }
    return name;
  }

  /** A float weight in the activations' type, in the external data file. */
  weight(name: string, data: Float32Array, dims: number[], type: FloatType = this.floatType): string {
    return this.raw(name, onnxFloat(type), dims, floatBytes(data, type));
  }

  /** Any tensor's bytes, in the external data file. */
  raw(name: string, dataType: OnnxDataType, dims: number[], bytes: Uint8Array): string {
    this.initializers.push({ name, dataType, dims, external: this.externalData.add(bytes) });
    return name;
  }
}

/**
 * y = x W for W [K, N] stored as the export style does: a MatMul on a float initializer, or
 * MatMulNBits on 4-bit blocks (block 32, symmetric so no zero points, accuracy_level 0: float
 * accumulation, as transformers.js' quantize script and the genai builder's default write them).
 */
export function linearLayer(g: GraphBuilder, x: string, name: string, w: Float32Array, K: number, N: number, int4: boolean): string {
  if (!int4) return g.op('MatMul', [x, g.weight(`${name}.weight`, w, [K, N])]);
  const q = quantizeQ4(w, K, N, g.floatType);
  const blocks = Math.ceil(K / Q4_BLOCK_SIZE);
  const packed = g.raw(`${name}.weight_Q4`, OnnxDataType.UINT8, [N, blocks, Q4_BLOCK_SIZE / 2], q.packed);
  const scales = g.weight(`${name}.weight_scales`, q.scales, [N * blocks]);
  return g.op(
    'MatMulNBits',
    [x, packed, scales],
    [int('K', K), int('N', N), int('bits', 4), int('block_size', Q4_BLOCK_SIZE), int('accuracy_level', 0)],
    undefined,
    MS_DOMAIN,
  );
}
