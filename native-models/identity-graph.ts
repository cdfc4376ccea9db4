// The bytes of a tiny ONNX model whose outputs are its inputs (one Identity node per tensor): what
// device-kv.ts runs on the WebGPU provider to bring KV tensors that live on the device back to the
// CPU, since onnxruntime-node 1.30 cannot download a 'gpu-buffer' tensor itself. Field numbers are
// those of onnx/onnx.proto; only the messages this graph needs are written.

/** TensorProto.DataType of the element types a KV cache can have. */
const ELEMENT_TYPE = { float32: 1, float16: 10 } as const;

function varint(value: number): number[] {
  const bytes: number[] = [];
  let v = value;
  while (v >= 0x80) {
    bytes.push((v & 0x7f) | 0x80);
    v = Math.floor(v / 128);
  }
  bytes.push(v);
  return bytes;
}

const tag = (field: number, wire: 0 | 2) => varint((field << 3) | wire);
const intField = (field: number, value: number) => [...tag(field, 0), ...varint(value)];
const bytesField = (field: number, body: readonly number[]) => [...tag(field, 2), ...varint(body.length), ...body];
const stringField = (field: number, text: string) => bytesField(field, [...new TextEncoder().encode(text)]);

/** ValueInfoProto of a tensor with symbolic dimensions (any shape of the given rank). */
function valueInfo(name: string, elemType: number, rank: number): number[] {
  const dims = Array.from({ length: rank }, (_, i) => bytesField(1, stringField(2, `d${i}`))).flat(); // Dimension.dim_param
  const tensorType = [...intField(1, elemType), ...bytesField(2, dims)]; // TypeProto.Tensor: elem_type, shape
  return [...stringField(1, name), ...bytesField(2, bytesField(1, tensorType))]; // name, type.tensor_type
}

/**
 * A model with inputs `in0..in{count-1}` and outputs `out0..`, each the Identity of its input, of
 * the given element type and rank (shapes are free).
 */
export function identityModel(count: number, dtype: keyof typeof ELEMENT_TYPE, rank: number): Uint8Array {
  const elemType = ELEMENT_TYPE[dtype];
  const graph: number[] = [];
  for (let i = 0; i < count; i++) {
    // NodeProto: input (1), output (2), op_type (4)
    graph.push(...bytesField(1, [...stringField(1, `in${i}`), ...stringField(2, `out${i}`), ...stringField(4, 'Identity')]));
  }
  graph.push(...stringField(2, 'identity'));
  for (let i = 0; i < count; i++) graph.push(...bytesField(11, valueInfo(`in${i}`, elemType, rank)));
  for (let i = 0; i < count; i++) graph.push(...bytesField(12, valueInfo(`out${i}`, elemType, rank)));
  const model = [
    ...intField(1, 8), // ir_version
    ...stringField(2, 'quire'), // producer_name
    ...bytesField(7, graph),
    ...bytesField(8, [...stringField(1, ''), ...intField(2, 17)]), // opset_import: ai.onnx 17
  ];
  return Uint8Array.from(model);
}
