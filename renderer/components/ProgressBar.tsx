import type { Progress } from '../../electron/contract/types.ts';

export function ProgressBar({ label, progress }: { label: string; progress: Progress }) {
  const { done, total } = progress;
  return (
    <div className="progress-row">
      <span className="progress-label">{label}</span>
      <progress aria-label={label} max={Math.max(total, 1)} value={total === 0 ? 0 : done} />
      <span className="progress-count">
        {done}/{total}
      </span>
    </div>
  );
}
