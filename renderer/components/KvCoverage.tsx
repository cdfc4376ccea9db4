// A folder's coverage: the share of its passages that answer instantly (their KV stored for the
// loaded model), why not more, and when the rest will be ready. Asked of the engine (kv.stats for
// the folder: one query) when the folder's progress changes and every few seconds, since questions
// and background prefill change it without a folder event.
import { useEffect, useState } from 'react';
import type { FolderKvCoverageView, FolderView, KvCoverageLimit } from '../../electron/contract/types.ts';
import type { RendererApi } from '../api.ts';

const REFRESH_MS = 5000;

const WHY: Record<KvCoverageLimit, string> = {
  budget: 'the KV budget is full: raise it in Settings to keep more',
  prefilling: 'preparing the rest',
  paused: 'paused',
  off: 'background preparation is off in Settings',
  'no-model': 'choose a model to prepare answers',
  'not-prefilled': 'the rest is prepared as questions need it',
};

/** "about 4 min left", from the engine's estimate. */
export function etaText(ms: number): string {
  const minutes = ms / 60_000;
  if (minutes < 1) return 'under a minute left';
  if (minutes < 90) return `about ${Math.round(minutes)} min left`;
  return `about ${Math.round(minutes / 60)} h left`;
}

export function coverageText(c: FolderKvCoverageView): string {
  // rounded down: 99.6% is not "100% answer instantly"
  const share = `${Math.floor((c.stored * 100) / c.passages)}% answer instantly`;
  if (!c.limitedBy) return share;
  const eta = c.limitedBy === 'prefilling' && c.etaMs !== null ? `, ${etaText(c.etaMs)}` : '';
  return `${share} · ${WHY[c.limitedBy]}${eta}`;
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
      {coverageText(coverage)}
    </p>
  );
}
