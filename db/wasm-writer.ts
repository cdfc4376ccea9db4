// A minimal WebAssembly binary writer: one module with an exported memory and exported functions
// whose bodies are written as folded expressions (`op('i32x4.add', a, b)` = a, b, then the opcode).
// It exists for the KV codecs' SIMD kernels (kv-dequantize.ts): Node and Electron run Wasm SIMD,
// which the KV decoders need to load compact blocks faster than float16 ones, and writing the few
// instructions they use here keeps the project free of a WAT toolchain and of a checked-in binary.
// WebAssembly.Module validates what this writes, so a wrong opcode fails at load, not silently.

/** Instruction bytes (possibly several instructions). */
export type Code = readonly number[];

export const I32 = 0x7f;
export const F32 = 0x7d;
export const V128 = 0x7b;
export type ValueType = typeof I32 | typeof F32 | typeof V128;

function uleb(n: number): number[] {
  const out: number[] = [];
  do {
    let byte = n & 0x7f;
    n >>>= 7;
    if (n !== 0) byte |= 0x80;
    out.push(byte);
  } while (n !== 0);
  return out;
}

function sleb(n: number): number[] {
  const out: number[] = [];
  for (;;) {
    const byte = n & 0x7f;
    n >>= 7;
    if ((n === 0 && (byte & 0x40) === 0) || (n === -1 && (byte & 0x40) !== 0)) {
      out.push(byte);
      return out;
    }
    out.push(byte | 0x80);
  }
}

const name = (s: string) => vector([...new TextEncoder().encode(s)].map((b) => [b]));
const vector = (items: Code[]) => [...uleb(items.length), ...items.flat()];
const section = (id: number, body: Code) => [id, ...uleb(body.length), ...body];

// The opcodes used (core spec 2.0: numeric and SIMD instructions). SIMD ones follow the 0xfd prefix.
const PLAIN = {
  'i32.add': 0x6a,
  'i32.sub': 0x6b,
  'i32.ne': 0x47,
} as const;
const SIMD = {
  'v128.load': 0x00,
  'v128.load8x8_u': 0x02,
  'v128.store': 0x0b,
  'f32x4.splat': 0x13,
  'i32x4.ne': 0x38,
  'v128.and': 0x4e,
  'v128.or': 0x50,
  'v128.load32_zero': 0x5c,
  'i8x16.shr_u': 0x6d,
  'i16x8.narrow_i32x4_u': 0x86,
  'i16x8.extend_low_i8x16_u': 0x89,
  'i32x4.extend_low_i16x8_u': 0xa9,
  'i32x4.extend_high_i16x8_u': 0xaa,
  'i32x4.shl': 0xab,
  'i32x4.shr_s': 0xac,
  'i32x4.shr_u': 0xad,
  'i32x4.add': 0xae,
  'f32x4.add': 0xe4,
  'f32x4.mul': 0xe6,
  'f32x4.convert_i32x4_s': 0xfa,
} as const;
const LOADS_AND_STORES: Record<string, number> = { 'v128.load': 4, 'v128.load8x8_u': 3, 'v128.store': 4, 'v128.load32_zero': 2 };

export type PlainOp = keyof typeof PLAIN;
export type SimdOp = keyof typeof SIMD;

/** A numeric or SIMD instruction after its operands (folded form). */
export function op(name: PlainOp | SimdOp, ...operands: Code[]): Code {
  if (name in PLAIN) return [...operands.flat(), PLAIN[name as PlainOp]];
  if (name in LOADS_AND_STORES) throw new Error(`wasm-writer: ${name} needs a memory offset: use mem()`);
  return [...operands.flat(), 0xfd, ...uleb(SIMD[name as SimdOp])];
}

/** A v128 load or store at `address + offset` (natural alignment hint). */
export function mem(name: 'v128.load' | 'v128.load8x8_u' | 'v128.load32_zero' | 'v128.store', offset: number, ...operands: Code[]): Code {
  return [...operands.flat(), 0xfd, ...uleb(SIMD[name]), LOADS_AND_STORES[name], ...uleb(offset)];
}

export const f32Load = (address: Code): Code => [...address, 0x2a, 2, 0];
export const i32Const = (n: number): Code => [0x41, ...sleb(n | 0)];
export const get = (local: number): Code => [0x20, ...uleb(local)];
export const set = (local: number, value: Code): Code => [...value, 0x21, ...uleb(local)];
/** A v128 with the same i32 in every lane. */
export const i32x4 = (n: number): Code => [0xfd, ...uleb(0x0c), ...Array.from({ length: 4 }, () => [n & 0xff, (n >>> 8) & 0xff, (n >>> 16) & 0xff, n >>> 24]).flat()];
/** A v128 with the same i16 in every lane. */
export const i16x8 = (n: number): Code => [0xfd, ...uleb(0x0c), ...new Array<number[]>(8).fill([n & 0xff, (n >>> 8) & 0xff]).flat()];
/** A v128 with the same byte in every lane. */
export const i8x16 = (n: number): Code => [0xfd, ...uleb(0x0c), ...new Array<number>(16).fill(n & 0xff)];

/** `do { body } while (condition)`: the body runs at least once. */
export const doWhile = (body: Code, condition: Code): Code => [0x03, 0x40, ...body, ...condition, 0x0d, 0, 0x0b];

export interface WasmFunction {
  name: string;
  params: ValueType[];
  locals: ValueType[];
  body: Code;
}

/** Module bytes: one memory of `pages` 64 KiB pages exported as "memory", and the functions (no results). */
export function wasmModule(pages: number, functions: readonly WasmFunction[]): Uint8Array {
  const signatures = [...new Set(functions.map((f) => f.params.join(',')))];
  const types = signatures.map((s) => [0x60, ...vector(s === '' ? [] : s.split(',').map((t) => [Number(t)])), 0]);
  const exports = [
    [...name('memory'), 0x02, 0],
    ...functions.map((f, i) => [...name(f.name), 0x00, ...uleb(i)]),
  ];
  const bodies = functions.map((f) => {
    const body = [...vector(f.locals.map((t) => [1, t])), ...f.body, 0x0b];
    return [...uleb(body.length), ...body];
  });
  return new Uint8Array([
    ...[0x00, 0x61, 0x73, 0x6d, 1, 0, 0, 0],
    ...section(1, vector(types)),
    ...section(3, vector(functions.map((f) => uleb(signatures.indexOf(f.params.join(',')))))),
    ...section(5, vector([[0x00, ...uleb(pages)]])),
    ...section(7, vector(exports)),
    ...section(10, vector(bodies)),
  ]);
}
