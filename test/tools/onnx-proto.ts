// A minimal protobuf encoder for the ONNX messages the tiny-model generator writes (ModelProto and
// what it contains). Field numbers are those of onnx/onnx.proto. Repeated scalars are written
// unpacked, as onnx.proto is proto2; every protobuf parser accepts that form.

/** TensorProto.DataType values used here. */
export const OnnxDataType = { FLOAT: 1, UINT8: 2, INT32: 6, INT64: 7, BOOL: 9, FLOAT16: 10 } as const;
export type OnnxDataType = (typeof OnnxDataType)[keyof typeof OnnxDataType];

/** A dimension: a fixed size, or a symbolic name (dim_param) such as "batch_size". */
export type Dim = number | string;

/** Where a tensor's raw little-endian bytes lie in a file next to the model. */
export interface ExternalDataRef {
  /** Path relative to the model file's folder. */
  location: string;
  offset: number;
  length: number;
}

/** Exactly one of rawData (little-endian bytes), int64Data or external holds the values. */
export interface TensorProto {
  name: string;
  dataType: OnnxDataType;
  dims: readonly number[];
  rawData?: Uint8Array;
  int64Data?: readonly number[];
  external?: ExternalDataRef;
}

export type AttributeProto =
  | { name: string; kind: 'int'; value: number }
  | { name: string; kind: 'ints'; value: readonly number[] }
  | { name: string; kind: 'float'; value: number }
  | { name: string; kind: 'tensor'; value: TensorProto };

export interface NodeProto {
  opType: string;
  /** Empty string inputs/outputs are omitted optional slots, as ONNX writes them. */
  inputs: readonly string[];
  outputs: readonly string[];
  name?: string;
  attributes?: readonly AttributeProto[];
  /** Operator set domain: '' (ai.onnx, the default) or e.g. 'com.microsoft' for onnxruntime's contrib ops. */
  domain?: string;
}

/** A tensor-typed graph input or output. */
export interface ValueInfoProto {
  name: string;
  elemType: OnnxDataType;
  shape: readonly Dim[];
}

export interface GraphProto {
  name: string;
  nodes: readonly NodeProto[];
  initializers: readonly TensorProto[];
  inputs: readonly ValueInfoProto[];
  outputs: readonly ValueInfoProto[];
}

export interface ModelProto {
  irVersion: number;
  /** Version of the default ai.onnx operator set. */
  opsetVersion: number;
  /** Further operator sets the nodes use, e.g. { domain: 'com.microsoft', version: 1 }. */
  extraOpsets?: readonly { domain: string; version: number }[];
  producerName: string;
  graph: GraphProto;
}

const WIRE_VARINT = 0;
const WIRE_LENGTH_DELIMITED = 2;
const WIRE_FIXED32 = 5;

// AttributeProto.AttributeType
const ATTRIBUTE_TYPE = { float: 1, int: 2, tensor: 4, ints: 7 } as const;
const DATA_LOCATION_EXTERNAL = 1;

/** Appends protobuf fields to a growing byte buffer. */
class ProtoWriter {
  private bytes = new Uint8Array(256);
  private length = 0;

  private reserve(n: number): void {
    if (this.length + n <= this.bytes.length) return;
    const grown = new Uint8Array(Math.max(this.bytes.length * 2, this.length + n));
    grown.set(this.bytes.subarray(0, this.length));
    this.bytes = grown;
  }

  private byte(b: number): void {
    this.reserve(1);
    this.bytes[this.length++] = b;
  }

  /** int64 semantics: negative values take ten bytes (two's complement), as protobuf requires. */
  private varint(value: number): void {
    if (!Number.isSafeInteger(value)) throw new RangeError(`protobuf varint: ${value} is not a safe integer`);
    if (value < 0) {
      let v = BigInt.asUintN(64, BigInt(value));
      while (v >= 0x80n) {
        this.byte(Number(v & 0x7fn) | 0x80);
        v >>= 7n;
      }
      this.byte(Number(v));
      return;
    }
    let v = value;
    while (v >= 0x80) {
      this.byte((v % 0x80) | 0x80);
      v = Math.floor(v / 0x80);
    }
    this.byte(v);
  }

  private tag(field: number, wireType: number): void {
    this.varint(field * 8 + wireType);
  }

  int(field: number, value: number): void {
    this.tag(field, WIRE_VARINT);
    this.varint(value);
  }

  ints(field: number, values: readonly number[]): void {
    for (const v of values) this.int(field, v);
  }

  float(field: number, value: number): void {
    this.tag(field, WIRE_FIXED32);
    this.reserve(4);
    new DataView(this.bytes.buffer).setFloat32(this.length, value, true);
    this.length += 4;
  }

  bytesField(field: number, data: Uint8Array): void {
    this.tag(field, WIRE_LENGTH_DELIMITED);
    this.varint(data.length);
    this.reserve(data.length);
    this.bytes.set(data, this.length);
    this.length += data.length;
  }

  string(field: number, value: string): void {
    this.bytesField(field, new TextEncoder().encode(value));
  }

  message(field: number, write: (w: ProtoWriter) => void): void {
    const inner = new ProtoWriter();
    write(inner);
    this.bytesField(field, inner.finish());
  }

  finish(): Uint8Array {
    return this.bytes.slice(0, this.length);
  }
}

function writeStringEntry(w: ProtoWriter, key: string, value: string): void {
  w.string(1, key);
  w.string(2, value);
}

function writeTensor(w: ProtoWriter, t: TensorProto): void {
  w.ints(1, t.dims);
  w.int(2, t.dataType);
  if (t.int64Data) w.ints(7, t.int64Data);
  w.string(8, t.name);
  if (t.rawData) w.bytesField(9, t.rawData);
  if (t.external) {
    const { location, offset, length } = t.external;
    w.message(13, (e) => writeStringEntry(e, 'location', location));
    w.message(13, (e) => writeStringEntry(e, 'offset', String(offset)));
    w.message(13, (e) => writeStringEntry(e, 'length', String(length)));
    w.int(14, DATA_LOCATION_EXTERNAL);
  }
}

function writeAttribute(w: ProtoWriter, a: AttributeProto): void {
  w.string(1, a.name);
  w.int(20, ATTRIBUTE_TYPE[a.kind]);
  switch (a.kind) {
    case 'float':
      w.float(2, a.value);
      break;
    case 'int':
      w.int(3, a.value);
      break;
    case 'tensor':
      w.message(5, (t) => writeTensor(t, a.value));
      break;
    case 'ints':
      w.ints(8, a.value);
      break;
  }
}

function writeNode(w: ProtoWriter, n: NodeProto): void {
  for (const input of n.inputs) w.string(1, input);
  for (const output of n.outputs) w.string(2, output);
  if (n.name) w.string(3, n.name);
  w.string(4, n.opType);
  for (const a of n.attributes ?? []) w.message(5, (m) => writeAttribute(m, a));
  if (n.domain) w.string(7, n.domain);
}

function writeValueInfo(w: ProtoWriter, v: ValueInfoProto): void {
  w.string(1, v.name);
  // TypeProto.tensor_type -> { elem_type, shape: TensorShapeProto { dim: Dimension { dim_value | dim_param } } }
  w.message(2, (type) =>
    type.message(1, (tensor) => {
      tensor.int(1, v.elemType);
      tensor.message(2, (shape) => {
        for (const d of v.shape) {
          shape.message(1, (dim) => (typeof d === 'number' ? dim.int(1, d) : dim.string(2, d)));
        }
      });
    }),
  );
}

function writeGraph(w: ProtoWriter, g: GraphProto): void {
  for (const n of g.nodes) w.message(1, (m) => writeNode(m, n));
  w.string(2, g.name);
  for (const t of g.initializers) w.message(5, (m) => writeTensor(m, t));
  for (const v of g.inputs) w.message(11, (m) => writeValueInfo(m, v));
  for (const v of g.outputs) w.message(12, (m) => writeValueInfo(m, v));
}

/** The serialized ModelProto (the bytes of a .onnx file). */
export function encodeModel(model: ModelProto): Uint8Array {
  const w = new ProtoWriter();
  w.int(1, model.irVersion);
  w.string(2, model.producerName);
  w.message(7, (g) => writeGraph(g, model.graph));
  // OperatorSetIdProto with an empty domain: the default ai.onnx operator set
  w.message(8, (opset) => opset.int(2, model.opsetVersion));
  for (const { domain, version } of model.extraOpsets ?? []) {
    w.message(8, (opset) => {
      opset.string(1, domain);
      opset.int(2, version);
    });
  }
  return w.finish();
}
