import type { Progress } from '../../electron/contract/types.ts';
import { formatCount, formatEta } from '../format.ts';

export function ProgressBar({ label, progress, showEta = false }: { label: string; progress: Progress; showEta?: boolean }) {
  const { done, total } = progress;
  const eta = showEta && done < total ? formatEta(progress.etaMs) : '';
  return (
    <div className="progress-row">
      <span className="progress-label">{label}</span>
      <progress aria-label={label} max={Math.max(total, 1)} value={total === 0 ? 0 : done} />
      <span className="progress-count">
        {formatCount(done)}/{formatCount(total)}
        {eta && <span className="progress-eta"> · {eta}</span>}
      </span>
    </div>
  );
}
