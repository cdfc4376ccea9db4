// Why a folder's coverage (the share of its passages whose KV is stored) is not 100%, as the
// contract, the CLI and the Library view name it, and which one applies. Node-free: the renderer
// bundles it.
export const KV_COVERAGE_LIMITS = [
  /** The rest does not fit the KV budget (raising it lets more be stored). */
  'budget',
  /** Background prefill is storing the rest now (an ETA comes with it). */
  'prefilling',
  /** The folder's indexing and prefill are paused. */
  'paused',
  /** Background prefill is switched off in Settings: blocks are stored as questions need them. */
  'off',
  /** No model is loaded: there is nothing to prefill with. */
  'no-model',
  /** Not prefilled yet, and nothing here is prefilling it (e.g. no engine runs: quire status). */
  'not-prefilled',
] as const;
export type KvCoverageLimit = (typeof KV_COVERAGE_LIMITS)[number];

/** What is known of a folder's prefill where its coverage is reported. */
export interface PrefillState {
  /** A model is loaded (or chosen, for a report without an engine). */
  model: boolean;
  /** Background prefill is on (Settings' eagerPrefill). */
  prefillOn: boolean;
  paused: boolean;
  /** The folder's passages waiting in the prefill queue. */
  queued: number;
  /** The budget cannot take the folder's next block without evicting: no free room, or the last plan left passages out for lack of it. */
  budgetFull: boolean;
}

/**
 * Why not every passage of the folder is stored; null when every one is. The first that applies, in
 * this order (prefill switched off comes first: loading a model would not change it).
 */
export function coverageLimit(c: { passages: number; stored: number }, s: PrefillState): KvCoverageLimit | null {
  if (c.stored >= c.passages) return null;
  if (!s.prefillOn) return 'off';
  if (!s.model) return 'no-model';
  if (s.paused) return 'paused';
  if (s.queued > 0) return 'prefilling';
  if (s.budgetFull) return 'budget';
  return 'not-prefilled';
}

/**
 * Why background prefill leaves passages of a folder without stored KV, as the Library row words it
 * with a link to the setting to change (the KV budget is full, no model is loaded, prefill is off).
 * The passages left out get their KV when a question first uses them.
 */
export interface PrefillLimit {
  reason: 'kv-budget' | 'no-model' | 'eager-off';
  /** Passages that will be left without stored KV: neither stored nor waiting to be prefilled. */
  passagesLeft: number;
  /** The KV budget (reason 'kv-budget'). */
  budgetBytes: number;
}

/**
 * The folder's PrefillLimit, from the same state as its coverageLimit: the limits a setting lifts.
 * A budget that leaves passages out is said while the rest is still prefilling, too.
 */
export function prefillLimit(c: { passages: number; stored: number }, s: PrefillState, budgetBytes: number): PrefillLimit | null {
  const missing = c.passages - c.stored;
  const limit = coverageLimit(c, s);
  if (limit === 'off') return { reason: 'eager-off', passagesLeft: missing, budgetBytes };
  if (limit === 'no-model') return { reason: 'no-model', passagesLeft: missing, budgetBytes };
  const left = missing - s.queued;
  if ((limit === 'budget' || limit === 'prefilling') && s.budgetFull && left > 0) return { reason: 'kv-budget', passagesLeft: left, budgetBytes };
  return null;
}
