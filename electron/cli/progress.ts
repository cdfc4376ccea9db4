// Indexing progress on the terminal: a one-line bar redrawn in place on a TTY, plain lines (at most
// one every few seconds, plus phase changes) when stderr is a pipe or a file.
import { printable } from '../indexing/file-names.ts';
import type { IndexProgress } from '../indexing/indexer.ts';

export interface ProgressWriter {
  write(text: string): unknown;
  isTTY?: boolean;
  columns?: number;
}

export function formatBytes(bytes: number): string {
  if (bytes >= 1024 ** 3) return `${(bytes / 1024 ** 3).toFixed(1)} GB`;
  if (bytes >= 1024 ** 2) return `${(bytes / 1024 ** 2).toFixed(1)} MB`;
  if (bytes >= 1024) return `${(bytes / 1024).toFixed(1)} KB`;
  return `${bytes} B`;
}

export function formatDuration(ms: number): string {
  const s = Math.round(ms / 1000);
  if (s < 60) return `${s}s`;
  const m = Math.floor(s / 60);
  if (m < 60) return `${m}m${String(s % 60).padStart(2, '0')}s`;
  return `${Math.floor(m / 60)}h${String(m % 60).padStart(2, '0')}m`;
}

/** "120/200 files (3 failed), 480 passages, 12 KV, 1.2 MB/3.4 MB, ETA 5s" */
export function progressLine(p: IndexProgress): string {
  const parts = [`${p.filesDone}/${p.filesFound} files`];
  const problems = [p.filesFailed ? `${p.filesFailed} failed` : '', p.filesSkipped ? `${p.filesSkipped} skipped` : ''].filter(Boolean);
  if (problems.length) parts[0] += ` (${problems.join(', ')})`;
  parts.push(`${p.passages} passages`);
  if (p.kvBlocks) parts.push(`${p.kvBlocks} KV blocks`);
  parts.push(`${formatBytes(p.bytesDone)}/${formatBytes(p.bytesTotal)}`);
  if (p.etaMs !== undefined && p.phase === 'indexing' && p.bytesDone < p.bytesTotal) parts.push(`ETA ${formatDuration(p.etaMs)}`);
  return parts.join(', ');
}

export class ProgressRenderer {
  private lastDraw = 0;
  private lastPhase: IndexProgress['phase'] | undefined;
  private drawn = false;

  constructor(
    private readonly out: ProgressWriter,
    private readonly options: { intervalMs?: number; now?: () => number } = {},
  ) {}

  private get tty(): boolean {
    return this.out.isTTY === true;
  }

  update(p: IndexProgress): void {
    const now = (this.options.now ?? Date.now)();
    const phaseChanged = p.phase !== this.lastPhase;
    this.lastPhase = p.phase;
    const interval = this.options.intervalMs ?? (this.tty ? 100 : 2000);
    const final = p.phase === 'done' || p.phase === 'cancelled';
    if (!phaseChanged && !final && now - this.lastDraw < interval) return;
    this.lastDraw = now;
    if (this.tty) this.drawBar(p, final);
    else this.out.write(`${this.plainLine(p)}\n`);
  }

  private plainLine(p: IndexProgress): string {
    if (p.phase === 'scanning') return `scanning ${printable(p.root)}: ${p.filesFound} files`;
    return `${p.phase} ${printable(p.root)}: ${progressLine(p)}`;
  }

  private drawBar(p: IndexProgress, final: boolean): void {
    const columns = Math.max(40, this.out.columns || 80);
    let line: string;
    if (p.phase === 'scanning') line = `scanning ${printable(p.root)}: ${p.filesFound} files`;
    else {
      const fraction = p.bytesTotal > 0 ? Math.min(1, p.bytesDone / p.bytesTotal) : p.filesFound > 0 ? p.filesDone / p.filesFound : 1;
      const width = 20;
      const filled = Math.round(fraction * width);
      line = `[${'#'.repeat(filled)}${'-'.repeat(width - filled)}] ${String(Math.round(fraction * 100)).padStart(3)}% ${progressLine(p)}`;
      if (p.phase === 'cancelled') line += ' (cancelled)';
    }
    if (line.length > columns - 1) line = `${line.slice(0, columns - 2)}…`;
    this.out.write(`\r\x1b[2K${line}${final ? '\n' : ''}`);
    this.drawn = !final;
  }

  /** Ends a bar left mid-line (e.g. before an error message). */
  finish(): void {
    if (this.tty && this.drawn) this.out.write('\n');
    this.drawn = false;
  }
}
