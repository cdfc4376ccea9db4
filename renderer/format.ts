// Numbers, sizes, durations and paths as the views show them.

const MB = 1024 * 1024;

export const formatBytes = (n: number) => (n >= 1024 * MB ? `${(n / (1024 * MB)).toFixed(1)} GB` : `${(n / MB).toFixed(1)} MB`);

export const formatCount = (n: number) => n.toLocaleString('en-US');

/** "about 12 s left", "about 3 min left", "about 2 h left"; '' when unknown. */
export function formatEta(ms: number | null | undefined): string {
  if (ms === null || ms === undefined || !Number.isFinite(ms)) return '';
  const s = Math.round(ms / 1000);
  if (s < 1) return 'almost done';
  if (s < 90) return `about ${s} s left`;
  const min = Math.round(s / 60);
  if (min < 90) return `about ${min} min left`;
  return `about ${Math.round(min / 60)} h left`;
}

export function basename(p: string): string {
  return p.split(/[\\/]/).filter(Boolean).pop() ?? p;
}

/**
 * Labels that tell files apart: the file name, with as many parent folders as it takes to make two
 * different paths read differently ("notes/todo.md" and "work/todo.md").
 */
export function distinctLabels(paths: readonly string[]): Map<string, string> {
  const unique = [...new Set(paths)];
  const parts = new Map(unique.map((p) => [p, p.split(/[\\/]/).filter(Boolean)]));
  const depth = new Map(unique.map((p) => [p, 1]));
  const label = (p: string) => parts.get(p)!.slice(-depth.get(p)!).join('/');
  for (let round = 0; round < 32; round++) {
    const byLabel = new Map<string, string[]>();
    for (const p of unique) byLabel.set(label(p), [...(byLabel.get(label(p)) ?? []), p]);
    let changed = false;
    for (const same of byLabel.values()) {
      if (same.length < 2) continue;
      for (const p of same) {
        if (depth.get(p)! < parts.get(p)!.length) {
          depth.set(p, depth.get(p)! + 1);
          changed = true;
        }
      }
    }
    if (!changed) break;
  }
  return new Map(unique.map((p) => [p, label(p)]));
}
