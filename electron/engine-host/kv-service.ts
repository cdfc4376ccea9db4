// Stored passage KV: its totals for Settings, and the background prefill of a folder's passages after
// indexing (one block per engine turn, behind any waiting question).
import type { Db } from '../../db/open.ts';
import { storedKvTotals } from '../../db/kv-store.ts';
import { listFolderPassagesNewestFirst } from '../../db/passages.ts';
import { prefillPassages } from '../answering/passage-kv.ts';
import type { Progress } from '../contract/types.ts';
import type { ModelService } from './model-service.ts';
import type { RequestHandlers } from './request-handlers.ts';
import type { SettingsStore } from './settings-store.ts';

export type KvRequest = 'kv.stats';

/** Float16 storage (db/kv-codec.ts): 2 bytes an element, keys and values. */
const STORED_BYTES_PER_ELEMENT = 2 * 2;
/** Tokens a passage block adds to its passage's own: the title line. */
const TITLE_TOKENS = 8;

export interface FolderPrefillHooks {
  signal: AbortSignal;
  /** Called once with what will be prefilled (total 0: nothing, or no model to do it with). */
  planned(progress: Progress, running: boolean): void;
  onProgress(progress: Progress): void;
}

export class KvService {
  constructor(
    private readonly db: Db,
    private readonly settings: SettingsStore,
    private readonly models: ModelService,
  ) {}

  readonly handlers: RequestHandlers<KvRequest> = {
    'kv.stats': () => ({ ...storedKvTotals(this.db), budgetBytes: this.settings.get().kvBudgetBytes }),
  };

  /**
   * Background KV prefill of the folder's passages (yields to questions; needs a loaded model):
   * most recently modified documents first, and only as many as fit the KV budget's free room, so
   * eager work never evicts blocks that questions stored. Passages left out get KV at first use.
   */
  async prefillFolder(folderId: number, hooks: FolderPrefillHooks): Promise<void> {
    const { eagerPrefill, kvBudgetBytes, quality } = this.settings.get();
    const ctx = eagerPrefill ? await this.models.ready() : null;
    const passages = listFolderPassagesNewestFirst(this.db, folderId);
    let ids = passages.map((p) => p.passageId);
    if (ctx) {
      const { layers, kvHeads, headDim } = ctx.engine.runner.kvShape;
      const bytesPerToken = STORED_BYTES_PER_ELEMENT * layers * kvHeads * headDim;
      let room = kvBudgetBytes - storedKvTotals(this.db).bytes;
      const fitting = passages.findIndex((p) => (room -= (p.tokenCount + TITLE_TOKENS) * bytesPerToken) < 0);
      if (fitting >= 0) ids = ids.slice(0, fitting);
    }
    const running = ctx !== null && ids.length > 0;
    hooks.planned({ done: 0, total: ids.length }, running);
    if (!running) return;
    await prefillPassages(ctx, ids, {
      signal: hooks.signal,
      mode: quality === 'auto' ? undefined : quality,
      onProgress: (done, total) => hooks.onProgress({ done, total }),
    });
  }
}
