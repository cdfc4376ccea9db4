// A folder's coverage: the share of its passages that answer instantly (their KV stored for the
// loaded model), and, for what nothing else in the Library row says, why not more. Asked of the
// engine (kv.stats for the folder: one query) when the folder's progress changes and every few
// seconds, since questions and background prefill change it without a folder event.
// The row says the rest: the limits a setting lifts (budget, prefill off, no model) in its prefill
// line with a link (FolderView.prefillLimit, from the same KV service state), a paused folder in its
// state, and the ETA of the folder's own prefill run on its progress bar.
import { useEffect, useState } from 'react';
import type { FolderKvCoverageView, FolderView } from '../../electron/contract/types.ts';
import type { RendererApi } from '../api.ts';
import { formatEta } from '../format.ts';

const REFRESH_MS = 5000;

/** "62% answer instantly", and why not more where the row does not say it already. */
export function coverageText(c: FolderKvCoverageView, folder: Pick<FolderView, 'state'>): string {
  // rounded down: 99.6% is not "100% answer instantly"
  const share = `${Math.floor((c.stored * 100) / c.passages)}% answer instantly`;
  if (c.limitedBy === 'prefilling' && folder.state !== 'prefilling') {
    // background prefill outside the folder's run (what the last questions predict)
    const eta = formatEta(c.etaMs);
    return `${share} · preparing more${eta ? `, ${eta}` : ''}`;
  }
  if (c.limitedBy === 'not-prefilled') return `${share} · the rest is prepared as questions need it`;
  return share;
}

export function KvCoverage({ api, folder }: { api: RendererApi; folder: FolderView }) {
  const [coverage, setCoverage] = useState<FolderKvCoverageView | null>(null);
  useEffect(() => {
    let live = true;
    const load = () =>
      api.request('kv.stats', { folderId: folder.id }).then(
        (s) => live && setCoverage(s.folders[0] ?? null),
        () => undefined,
      );
    void load();
    const timer = setInterval(() => void load(), REFRESH_MS);
    return () => {
      live = false;
      clearInterval(timer);
    };
  }, [api, folder.id, folder.state, folder.prefill.done, folder.passages]);
  if (!coverage || coverage.passages === 0) return null;
  return (
    <p className="kv-coverage" data-testid="kv-coverage" title={`${coverage.stored} of ${coverage.passages} passages have their KV stored`}>
      {coverageText(coverage, folder)}
    </p>
  );
}
