// Small statistics and timing helpers shared by the benchmarks (medians: the machine is shared and noisy).
import os from 'node:os';

export function median(xs: readonly number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
}

/** Runs `fn` once to warm up, then `runs` times; returns each run's milliseconds. */
export async function timeRuns(runs: number, fn: () => Promise<unknown>): Promise<number[]> {
  await fn();
  const times: number[] = [];
  for (let i = 0; i < runs; i++) {
    const t0 = performance.now();
    await fn();
    times.push(performance.now() - t0);
  }
  return times;
}

/**
 * Warms each function up once, then runs them in turn `runs` times, so that load from other
 * processes on a shared machine falls on all of them alike; returns each one's milliseconds.
 */
export async function timeInterleaved<K extends string>(runs: number, fns: Record<K, () => Promise<unknown>>): Promise<Record<K, number[]>> {
  const names = Object.keys(fns) as K[];
  const times = Object.fromEntries(names.map((n) => [n, [] as number[]])) as Record<K, number[]>;
  for (const n of names) await fns[n]();
  for (let i = 0; i < runs; i++) {
    for (const n of names) {
      const t0 = performance.now();
      await fns[n]();
      times[n].push(performance.now() - t0);
    }
  }
  return times;
}

export function machineLine(): string {
  const cpu = os.cpus()[0]?.model ?? 'unknown CPU';
  return `${cpu}, ${os.cpus().length} cores, ${Math.round(os.totalmem() / 2 ** 30)} GiB, Node ${process.version}`;
}
