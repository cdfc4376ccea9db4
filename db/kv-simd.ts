// The grouped KV codecs' decoders: Wasm SIMD kernels that turn 8-bit or 4-bit codes into float16 bits
// or float32 values, 8 elements per step, and the linear memory they work in.
//
// Why Wasm: a float16 block loads as a view over its bytes (no decode at all), so a compact codec
// loads faster only if decoding costs less than reading and checksumming the bytes it saves, about
// 1 ns per element on the development machine. Plain typed-array loops took 3-7 ns per element
// there (a lookup table per group included); these kernels take ~0.5 ns (float16 output) and
// ~0.2 ns (float32), doing the whole dequantize + float16 rounding in vector registers. Every
// decode goes through them: there is no second, scalar path to keep in step.
//
// Value of element i of a row: min + q * step in float32 (q * step is exact: q has at most 8 bits and
// step is a float16, 11 bits), then, for float16 output, rounded to nearest even.
import { doWhile, f32Load, get, i16x8, i32Const, i32x4, i8x16, I32, mem, op, set, V128, wasmModule, type Code, type WasmFunction } from './wasm-writer.ts';

export type CodeBits = 4 | 8;
/** Where a row's min/step come from: one per channel (keys) or one per row (values). */
export type ParamLayout = 'channel' | 'row';
export type OutputType = 'float16' | 'float32';

/** Elements a kernel step decodes; rows are padded to a multiple of it. */
export const CHUNK = 8;

// Parameter and local indices of every kernel.
const CODES = 0, OUT = 1, ROWS = 2, CHUNKS = 3, MINS = 4, STEPS = 5;
const K = 6, PM = 7, PS = 8;
const MIN_LO = 9, MIN_HI = 10, STEP_LO = 11, STEP_HI = 12, X = 13, Y = 14;

/**
 * Two float32x4 (elements 0-3 and 4-7) -> eight float16 bits, rounded to nearest even. The encoder
 * puts every level on a grid of 2^-14 (kv-grouped.ts), so a decoded value is 0 or a normal half:
 * no subnormal path. Its magnitude stays within 65504, so there is no overflow path either.
 */
function toHalves(lo: Code, hi: Code): Code {
  // |x| with the exponent rebiased (-(127 - 15) << 23 = 0xc8000000 mod 2^32) and rounded at bit 13
  // (+0xfff + the bit that stays; carries reach the exponent). For 0 the sum is negative, and the
  // arithmetic shift keeps it negative, which the unsigned narrowing saturates to 0.
  const magnitude = (x: number) =>
    op(
      'i32x4.shr_s',
      op(
        'i32x4.add',
        op('i32x4.add', op('v128.and', get(x), i32x4(0x7fffffff)), i32x4(0xc8000fff)),
        op('v128.and', op('i32x4.shr_u', get(x), i32Const(13)), i32x4(1)),
      ),
      i32Const(13),
    );
  const sign = op('v128.and', op('i16x8.narrow_i32x4_u', op('i32x4.shr_u', get(X), i32Const(16)), op('i32x4.shr_u', get(Y), i32Const(16))), i16x8(0x8000));
  return [...set(X, lo), ...set(Y, hi), ...op('v128.or', op('i16x8.narrow_i32x4_u', magnitude(X), magnitude(Y)), sign)];
}

function kernel(bits: CodeBits, params: ParamLayout, output: OutputType): WasmFunction {
  const codeBytes = (CHUNK * bits) / 8;
  const outBytes = CHUNK * (output === 'float16' ? 2 : 4);
  // The 8 codes of a step as two i32x4 (elements 0-3, 4-7). 4-bit: byte j holds element j (low
  // nibble) and element j + 4 (high nibble), so each nibble plane is 4 consecutive elements.
  let lo: Code, hi: Code;
  if (bits === 8) {
    const wide = mem('v128.load8x8_u', 0, get(CODES));
    lo = op('i32x4.extend_low_i16x8_u', wide);
    hi = op('i32x4.extend_high_i16x8_u', wide);
  } else {
    const packed = mem('v128.load32_zero', 0, get(CODES));
    const widen = (plane: Code) => op('i32x4.extend_low_i16x8_u', op('i16x8.extend_low_i8x16_u', plane));
    lo = widen(op('v128.and', packed, i8x16(0x0f)));
    hi = widen(op('i8x16.shr_u', packed, i32Const(4)));
  }
  const value = (q: Code, min: number, step: number) => op('f32x4.add', op('f32x4.mul', op('f32x4.convert_i32x4_s', q), get(step)), get(min));
  const loadParams: Code =
    params === 'channel'
      ? [
          ...set(MIN_LO, mem('v128.load', 0, get(PM))),
          ...set(MIN_HI, mem('v128.load', 16, get(PM))),
          ...set(STEP_LO, mem('v128.load', 0, get(PS))),
          ...set(STEP_HI, mem('v128.load', 16, get(PS))),
          ...set(PM, op('i32.add', get(PM), i32Const(32))),
          ...set(PS, op('i32.add', get(PS), i32Const(32))),
        ]
      : [];
  const store: Code =
    output === 'float32'
      ? [...mem('v128.store', 0, get(OUT), value(lo, MIN_LO, STEP_LO)), ...mem('v128.store', 16, get(OUT), value(hi, MIN_HI, STEP_HI))]
      : mem('v128.store', 0, get(OUT), toHalves(value(lo, MIN_LO, STEP_LO), value(hi, MIN_HI, STEP_HI)));
  const step: Code = [
    ...loadParams,
    ...store,
    ...set(CODES, op('i32.add', get(CODES), i32Const(codeBytes))),
    ...set(OUT, op('i32.add', get(OUT), i32Const(outBytes))),
    ...set(K, op('i32.sub', get(K), i32Const(1))),
  ];
  const rowStart: Code =
    params === 'channel'
      ? [...set(PM, get(MINS)), ...set(PS, get(STEPS))]
      : [
          ...set(MIN_LO, op('f32x4.splat', f32Load(get(MINS)))),
          ...set(STEP_LO, op('f32x4.splat', f32Load(get(STEPS)))),
          ...set(MIN_HI, get(MIN_LO)),
          ...set(STEP_HI, get(STEP_LO)),
          ...set(MINS, op('i32.add', get(MINS), i32Const(4))),
          ...set(STEPS, op('i32.add', get(STEPS), i32Const(4))),
        ];
  const body = doWhile(
    [...rowStart, ...set(K, get(CHUNKS)), ...doWhile(step, op('i32.ne', get(K), i32Const(0))), ...set(ROWS, op('i32.sub', get(ROWS), i32Const(1)))],
    op('i32.ne', get(ROWS), i32Const(0)),
  );
  return {
    name: kernelName(bits, params, output),
    params: [I32, I32, I32, I32, I32, I32],
    locals: [I32, I32, I32, V128, V128, V128, V128, V128, V128],
    body,
  };
}

const kernelName = (bits: CodeBits, params: ParamLayout, output: OutputType) => `q${bits}_${params}_${output}`;

/**
 * float16 -> float32 for the groups' min and step, 8 a step: exact for 0 and normal halves, which
 * is all the encoder writes (its grid); anything else becomes some finite value, never a trap.
 */
function halvesToFloatsKernel(): WasmFunction {
  const SRC = 0, DST = 1, COUNT = 2, H = 3;
  const float = (h: Code) => {
    const magnitude = op('v128.and', h, i32x4(0x7fff));
    const rebiased = op('i32x4.add', op('i32x4.shl', magnitude, i32Const(13)), i32x4(0x38000000)); // exponent 15 -> 127
    const nonZero = op('i32x4.ne', magnitude, i32x4(0));
    return op('v128.or', op('v128.and', rebiased, nonZero), op('i32x4.shl', op('v128.and', h, i32x4(0x8000)), i32Const(16)));
  };
  const step: Code = [
    ...set(H, mem('v128.load', 0, get(SRC))),
    ...mem('v128.store', 0, get(DST), float(op('i32x4.extend_low_i16x8_u', get(H)))),
    ...mem('v128.store', 16, get(DST), float(op('i32x4.extend_high_i16x8_u', get(H)))),
    ...set(SRC, op('i32.add', get(SRC), i32Const(16))),
    ...set(DST, op('i32.add', get(DST), i32Const(32))),
    ...set(COUNT, op('i32.sub', get(COUNT), i32Const(1))),
  ];
  return { name: 'halves_to_floats', params: [I32, I32, I32], locals: [V128], body: doWhile(step, op('i32.ne', get(COUNT), i32Const(0))) };
}

type KernelFn = (codes: number, out: number, rows: number, chunks: number, mins: number, steps: number) => void;

interface Instance {
  memory: WebAssembly.Memory;
  kernels: Record<string, KernelFn>;
  halvesToFloats: (src: number, dst: number, steps: number) => void;
}

let instance: Instance | undefined;

function load(): Instance {
  const functions: WasmFunction[] = [];
  for (const bits of [4, 8] as const)
    for (const params of ['channel', 'row'] as const) for (const output of ['float16', 'float32'] as const) functions.push(kernel(bits, params, output));
  functions.push(halvesToFloatsKernel());
  const module = new WebAssembly.Module(wasmModule(1, functions) as Uint8Array<ArrayBuffer>);
  const exports = new WebAssembly.Instance(module).exports as Record<string, unknown>;
  return {
    memory: exports.memory as WebAssembly.Memory,
    kernels: exports as Record<string, KernelFn>,
    halvesToFloats: exports.halves_to_floats as Instance['halvesToFloats'],
  };
}

/**
 * The kernels' linear memory, at least `bytes` long (it grows and is then kept: one decode at a
 * time per thread, a few MiB for 256-token blocks). Views taken before a later call may be detached.
 */
export function simdMemory(bytes: number): ArrayBuffer {
  instance ??= load();
  const have = instance.memory.buffer.byteLength;
  if (bytes > have) instance.memory.grow(Math.ceil((bytes - have) / 65536));
  return instance.memory.buffer;
}

/**
 * Decodes `rows` rows of `chunks` x 8 codes at byte offset `codes` into `out` (float16 bits or
 * float32), all offsets in the memory of simdMemory(). Channel params: `mins`/`steps` point at
 * chunks x 8 float32 each, the same for every row; row params: at one float32 per row.
 */
export function dequantizeRows(
  bits: CodeBits,
  params: ParamLayout,
  output: OutputType,
  at: { codes: number; out: number; mins: number; steps: number },
  rows: number,
  chunks: number,
): void {
  if (rows <= 0 || chunks <= 0) return;
  instance ??= load();
  instance.kernels[kernelName(bits, params, output)](at.codes, at.out, rows, chunks, at.mins, at.steps);
}

/**
 * `count` float16 at byte offset `src` -> float32 at `dst` (offsets in simdMemory()), for 0 and
 * normal halves; writes up to 7 floats past the end (a step is 8), which the caller leaves room for.
 */
export function halvesToFloats(src: number, dst: number, count: number): void {
  if (count <= 0) return;
  instance ??= load();
  instance.halvesToFloats(src, dst, Math.ceil(count / CHUNK));
}
