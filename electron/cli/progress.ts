// Progress on stderr: one line redrawn in place on a TTY; plain lines (at most one every few seconds,
// plus phase changes and the end) when stderr is a pipe or a file, so logs hold no carriage returns
// or escape sequences. LiveLine does that for any text; ProgressRenderer draws indexing progress.
import type { IndexProgress } from '../indexing/indexer.ts';
import { escapeForTerminal } from './terminal-text.ts';

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

/** A status line: redrawn in place on a terminal, throttled plain lines otherwise. */
export class LiveLine {
  private lastDraw = Number.NEGATIVE_INFINITY;
  private drawn = false;

  constructor(
    private readonly out: ProgressWriter,
    private readonly options: { intervalMs?: number; now?: () => number } = {},
  ) {}

  get tty(): boolean {
    return this.out.isTTY === true;
  }

  /**
   * Shows `text` unless the last one was shown less than the interval ago (100 ms on a terminal,
   * 2 s otherwise); `force` shows it anyway, `final` also ends the line.
   */
  show(text: string, options: { force?: boolean; final?: boolean } = {}): void {
    const now = (this.options.now ?? Date.now)();
    const interval = this.options.intervalMs ?? (this.tty ? 100 : 2000);
    if (!options.force && !options.final && now - this.lastDraw < interval) return;
    this.lastDraw = now;
    if (!this.tty) {
      this.out.write(`${text}\n`);
      return;
    }
    const columns = Math.max(40, this.out.columns || 80);
    const line = text.length > columns - 1 ? `${text.slice(0, columns - 2)}…` : text;
    this.out.write(`\r\x1b[2K${line}${options.final ? '\n' : ''}`);
    this.drawn = !options.final;
  }

  /** Ends a line left mid-way on a terminal (e.g. before an error message). */
  finish(): void {
    if (this.tty && this.drawn) this.out.write('\n');
    this.drawn = false;
  }
}

/** Indexing progress: a bar on a terminal, "phase root: counts" lines otherwise. */
export class ProgressRenderer {
  private lastPhase: IndexProgress['phase'] | undefined;
  private readonly line: LiveLine;

  constructor(out: ProgressWriter, options: { intervalMs?: number; now?: () => number } = {}) {
    this.line = new LiveLine(out, options);
  }

  update(p: IndexProgress): void {
    const phaseChanged = p.phase !== this.lastPhase;
    this.lastPhase = p.phase;
    const final = p.phase === 'done' || p.phase === 'cancelled';
    this.line.show(this.line.tty ? barLine(p) : plainLine(p), { force: phaseChanged, final });
  }

  /** Ends a bar left mid-line (e.g. before an error message). */
  finish(): void {
    this.line.finish();
  }
}

function plainLine(p: IndexProgress): string {
  const root = escapeForTerminal(p.root);
  if (p.phase === 'scanning') return `scanning ${root}: ${p.filesFound} files`;
  return `${p.phase} ${root}: ${progressLine(p)}`;
}

function barLine(p: IndexProgress): string {
  if (p.phase === 'scanning') return `scanning ${escapeForTerminal(p.root)}: ${p.filesFound} files`;
  const fraction = p.bytesTotal > 0 ? Math.min(1, p.bytesDone / p.bytesTotal) : p.filesFound > 0 ? p.filesDone / p.filesFound : 1;
  const width = 20;
  const filled = Math.round(fraction * width);
  const line = `[${'#'.repeat(filled)}${'-'.repeat(width - filled)}] ${String(Math.round(fraction * 100)).padStart(3)}% ${progressLine(p)}`;
  return p.phase === 'cancelled' ? `${line} (cancelled)` : line;
}
