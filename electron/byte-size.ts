// Sizes people type ("48MiB", "2GiB", "500MB") and read back. One parser for every place a size is
// given (the CLI's --kv-budget today), so "2GB" means the same bytes everywhere.
// Units: KB/MB/GB/TB are powers of 1000, KiB/MiB/GiB/TiB powers of 1024 (IEC); case does not matter.
// A bare letter ("2G", "500M") is refused: it is ambiguous between the two, and 7% apart at G.

const UNITS: Record<string, number> = {
  b: 1,
  kb: 1e3,
  mb: 1e6,
  gb: 1e9,
  tb: 1e12,
  kib: 1024,
  mib: 1024 ** 2,
  gib: 1024 ** 3,
  tib: 1024 ** 4,
};

export const SIZE_EXAMPLES = '48MiB, 2GiB or 500MB';

export class ByteSizeError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'ByteSizeError';
  }
}

/** Whole bytes of a size such as "48MiB", "1.5 GiB", "500MB" or "1048576" (bytes); throws ByteSizeError. */
export function parseByteSize(text: string): number {
  const m = /^\s*(\d+(?:\.\d*)?|\.\d+)\s*([a-z]*)\s*$/i.exec(text);
  if (!m) throw new ByteSizeError(`"${text}" is not a size: write a number and a unit, e.g. ${SIZE_EXAMPLES}`);
  const unit = m[2].toLowerCase();
  const scale = unit === '' ? 1 : UNITS[unit];
  if (scale === undefined) {
    throw new ByteSizeError(`"${text}": unknown unit "${m[2]}" (use B, KB, MB, GB, TB, or KiB, MiB, GiB, TiB; e.g. ${SIZE_EXAMPLES})`);
  }
  const bytes = Math.floor(Number(m[1]) * scale);
  if (!Number.isSafeInteger(bytes)) throw new ByteSizeError(`"${text}" is too large`);
  return bytes;
}

/** "2 GiB", "48 MiB", "1.5 KiB", "512 B": binary units, at most 2 decimals, so parseByteSize reads it back (to the byte when exact). */
export function formatByteSize(bytes: number): string {
  const units = ['TiB', 'GiB', 'MiB', 'KiB'] as const;
  for (const [i, unit] of units.entries()) {
    const scale = 1024 ** (units.length - i);
    if (bytes >= scale) return `${Number((bytes / scale).toFixed(2))} ${unit}`;
  }
  return `${bytes} B`;
}
