// Options whose default is the app's own setting (--provider, --kv-budget): the command line keeps
// the promises the app makes for the same data directory unless told otherwise. The help texts in
// options.ts say so; this is where it happens.
import { KvStore } from '../../db/kv-store.ts';
import type { Db } from '../../db/open.ts';
import type { ProviderChoice } from '../../native-models/provider-names.ts';
import { appKvBudgetBytes, appProviderSetting } from '../app-settings.ts';
import { KV_BUDGET, PROVIDER, type ParsedArgs } from './options.ts';

export function providerOption(args: ParsedArgs, dataDir: string): ProviderChoice {
  return args.get(PROVIDER) ?? appProviderSetting(dataDir);
}

export function kvBudgetOption(args: ParsedArgs, dataDir: string): number {
  return args.get(KV_BUDGET) ?? appKvBudgetBytes(dataDir);
}

/**
 * The KV store with the budget in force (--kv-budget, else the app's), kept from the start: stored
 * KV above it (a budget lowered since) is evicted at once, as the app does when its budget changes.
 */
export function kvStoreFor(db: Db, args: ParsedArgs, dataDir: string): KvStore {
  const budgetBytes = kvBudgetOption(args, dataDir);
  const store = new KvStore(db, { budgetBytes });
  store.setBudget(budgetBytes);
  return store;
}
