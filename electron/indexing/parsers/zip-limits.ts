// Refusing ZIP decompression bombs before a parser inflates anything. A ZIP's central directory
// states every member's compressed and uncompressed size; reading it costs nothing, so the sizes
// and the compression ratios are checked first. Sizes can lie (inflate stops at the end of the
// deflate stream, not at the stated size), so the members a parser will read are then inflated
// here with the stated size as a hard output limit: a member that grows past it is refused
// without ever holding more than that many bytes.
import zlib from 'node:zlib';
import { formatSize } from './format-size.ts';

export interface ZipLimits {
  /** Most members an archive may have. */
  maxEntries: number;
  /** Most bytes the members the parser reads (see `isRead`) may inflate to, all together. */
  maxReadBytes: number;
  /** Highest uncompressed:compressed ratio of a member larger than `ratioFloorBytes`. */
  maxRatio: number;
  ratioFloorBytes: number;
  /** The members the parser inflates (the others are checked by ratio only). */
  isRead: (name: string) => boolean;
}

export interface ZipMemberInfo {
  name: string;
  method: number;
  compressedSize: number;
  uncompressedSize: number;
  localHeaderOffset: number;
}

const END_OF_DIRECTORY = 0x06054b50;
const ZIP64_LOCATOR = 0x07064b50;
const ZIP64_END_OF_DIRECTORY = 0x06064b50;
const DIRECTORY_ENTRY = 0x02014b50;
const LOCAL_HEADER = 0x04034b50;
const STORED = 0;
const DEFLATED = 8;

/** Thrown for archives whose structure cannot be read. */
export class ZipStructureError extends Error {}

/** Why an archive must not be inflated: unreadable ('corrupt') or past a limit ('limit'). */
export interface ZipProblem {
  kind: 'corrupt' | 'limit';
  message: string;
}

/** Returns why the archive must not be inflated, or null when it is within the limits. */
export function zipLimitProblem(bytes: Uint8Array, limits: ZipLimits): ZipProblem | null {
  let members: ZipMemberInfo[];
  try {
    members = readCentralDirectory(bytes);
  } catch (error) {
    if (error instanceof ZipStructureError) return { kind: 'corrupt', message: error.message };
    throw error;
  }
  if (members.length > limits.maxEntries) return limit(`has too many members (${members.length} > ${limits.maxEntries})`);
  let readBytes = 0;
  for (const m of members) {
    if (m.uncompressedSize > limits.ratioFloorBytes && m.uncompressedSize > m.compressedSize * limits.maxRatio) {
      const ratio = Math.round(m.uncompressedSize / Math.max(1, m.compressedSize));
      return limit(
        `is a decompression bomb: ${m.name} inflates ${formatSize(m.compressedSize)} to ${formatSize(m.uncompressedSize)} (${ratio}:1, limit ${limits.maxRatio}:1)`,
      );
    }
    if (!limits.isRead(m.name)) continue;
    readBytes += m.uncompressedSize;
    if (readBytes > limits.maxReadBytes) {
      return limit(`is too large when inflated: its text parts reach ${formatSize(readBytes)} at ${m.name} (limit ${formatSize(limits.maxReadBytes)})`);
    }
  }
  // The stated sizes pass: hold each read member to its stated size while inflating it.
  for (const m of members) {
    if (!limits.isRead(m.name)) continue;
    const problem = inflatesAsStated(bytes, m);
    if (problem) return problem;
  }
  return null;
}

/** The archive's members as its central directory lists them (ZIP64 included). */
export function readCentralDirectory(bytes: Uint8Array): ZipMemberInfo[] {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const end = findEndOfDirectory(view);
  let entries = view.getUint16(end + 10, true);
  let directorySize = view.getUint32(end + 12, true);
  let directoryOffset = view.getUint32(end + 16, true);
  if (end >= 20 && view.getUint32(end - 20, true) === ZIP64_LOCATOR) {
    const zip64End = safeNumber(view.getBigUint64(end - 20 + 8, true));
    if (zip64End + 56 > bytes.length || view.getUint32(zip64End, true) !== ZIP64_END_OF_DIRECTORY) {
      throw new ZipStructureError('bad ZIP64 end of directory');
    }
    entries = safeNumber(view.getBigUint64(zip64End + 32, true));
    directorySize = safeNumber(view.getBigUint64(zip64End + 40, true));
    directoryOffset = safeNumber(view.getBigUint64(zip64End + 48, true));
  }
  if (directoryOffset + directorySize > bytes.length) throw new ZipStructureError('central directory out of bounds');

  const members: ZipMemberInfo[] = [];
  let at = directoryOffset;
  for (let i = 0; i < entries; i++) {
    if (at + 46 > bytes.length || view.getUint32(at, true) !== DIRECTORY_ENTRY) {
      throw new ZipStructureError('bad central directory entry');
    }
    const method = view.getUint16(at + 10, true);
    let compressedSize = view.getUint32(at + 20, true);
    let uncompressedSize = view.getUint32(at + 24, true);
    const nameLength = view.getUint16(at + 28, true);
    const extraLength = view.getUint16(at + 30, true);
    const commentLength = view.getUint16(at + 32, true);
    let localHeaderOffset = view.getUint32(at + 42, true);
    const nameEnd = at + 46 + nameLength;
    if (nameEnd + extraLength > bytes.length) throw new ZipStructureError('central directory entry out of bounds');
    const name = Buffer.from(bytes.buffer, bytes.byteOffset + at + 46, nameLength).toString('utf8');
    // ZIP64: fields set to 0xFFFFFFFF are given in the 0x0001 extra field, in this order.
    const zip64 = findExtraField(view, nameEnd, extraLength, 0x0001);
    if (zip64 !== null) {
      let field = zip64.start;
      const next = () => {
        if (field + 8 > zip64.end) throw new ZipStructureError('short ZIP64 field');
        const value = safeNumber(view.getBigUint64(field, true));
        field += 8;
        return value;
      };
      if (uncompressedSize === 0xffffffff) uncompressedSize = next();
      if (compressedSize === 0xffffffff) compressedSize = next();
      if (localHeaderOffset === 0xffffffff) localHeaderOffset = next();
    }
    members.push({ name, method, compressedSize, uncompressedSize, localHeaderOffset });
    at = nameEnd + extraLength + commentLength;
  }
  return members;
}

function findEndOfDirectory(view: DataView): number {
  // The record is 22 bytes plus a comment of at most 65,535 bytes, at the very end.
  const lowest = Math.max(0, view.byteLength - 22 - 0xffff);
  for (let at = view.byteLength - 22; at >= lowest; at--) {
    if (view.getUint32(at, true) === END_OF_DIRECTORY) return at;
  }
  throw new ZipStructureError('not a ZIP archive (no end of central directory)');
}

function findExtraField(view: DataView, start: number, length: number, id: number): { start: number; end: number } | null {
  let at = start;
  while (at + 4 <= start + length) {
    const fieldId = view.getUint16(at, true);
    const size = view.getUint16(at + 2, true);
    if (fieldId === id) return { start: at + 4, end: Math.min(at + 4 + size, start + length) };
    at += 4 + size;
  }
  return null;
}

/** Inflates one member with its stated size as the output limit; returns why it fails, or null. */
function inflatesAsStated(bytes: Uint8Array, m: ZipMemberInfo): ZipProblem | null {
  const corrupt = (message: string): ZipProblem => ({ kind: 'corrupt', message });
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const local = m.localHeaderOffset;
  if (local + 30 > bytes.length || view.getUint32(local, true) !== LOCAL_HEADER) {
    return corrupt(`${m.name} has no local header`);
  }
  const dataStart = local + 30 + view.getUint16(local + 26, true) + view.getUint16(local + 28, true);
  if (dataStart + m.compressedSize > bytes.length) return corrupt(`${m.name} is truncated`);
  const data = bytes.subarray(dataStart, dataStart + m.compressedSize);
  if (m.method === STORED) {
    return m.compressedSize === m.uncompressedSize ? null : corrupt(`${m.name} is stored with two different sizes`);
  }
  if (m.method !== DEFLATED) return corrupt(`unsupported compression method ${m.method} in ${m.name}`);
  try {
    // One byte of room: output that reaches it proves the member is larger than stated.
    const out = zlib.inflateRawSync(data, { maxOutputLength: Math.max(1, m.uncompressedSize + 1) });
    if (out.length !== m.uncompressedSize) {
      return corrupt(`${m.name} inflates to ${formatSize(out.length)}, not the stated ${formatSize(m.uncompressedSize)}`);
    }
    return null;
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ERR_BUFFER_TOO_LARGE') {
      return limit(`is a decompression bomb: ${m.name} inflates past its stated ${formatSize(m.uncompressedSize)}`);
    }
    return corrupt(`${m.name} does not inflate (${(error as Error).message})`);
  }
}

function limit(message: string): ZipProblem {
  return { kind: 'limit', message };
}

function safeNumber(value: bigint): number {
  if (value > BigInt(Number.MAX_SAFE_INTEGER)) throw new ZipStructureError('size out of range');
  return Number(value);
}
