// The app's saved settings (<data dir>/app-settings.json, written from the Settings view) as the rest
// of Quire reads them, so the command line keeps the promises the app makes: the same KV budget and
// the same provider unless an option says otherwise. Parsed with the contract's settings schema and
// the same rule the engine service applies: a file that is not valid JSON, or not valid settings, is
// ignored as a whole (defaults apply).
import fs from 'node:fs';
import path from 'node:path';
import { DEFAULT_KV_BUDGET_BYTES } from '../db/kv-store.ts';
import { settingsSchema, type Settings } from './contract.ts';

export const APP_SETTINGS_FILE = 'app-settings.json';

export interface SavedAppSettings {
  file: string;
  /** What the file holds (empty when there is no file, or when it is ignored). */
  saved: Partial<Settings>;
  /** Why an existing file is ignored; null when it is used or absent. */
  problem: string | null;
}

export function readAppSettings(dataDir: string): SavedAppSettings {
  const file = path.join(dataDir, APP_SETTINGS_FILE);
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch {
    return { file, saved: {}, problem: null };
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (e) {
    return { file, saved: {}, problem: `${file} is not valid JSON (${(e as Error).message}); defaults apply` };
  }
  const parsed = settingsSchema.partial().safeParse(json);
  if (!parsed.success) {
    const first = parsed.error.issues[0];
    return { file, saved: {}, problem: `${file} holds invalid settings (${first.path.join('.')}: ${first.message}); defaults apply` };
  }
  return { file, saved: parsed.data, problem: null };
}

/** The byte budget of stored passage KV the app keeps for this data directory. */
export function appKvBudgetBytes(dataDir: string): number {
  return readAppSettings(dataDir).saved.kvBudgetBytes ?? DEFAULT_KV_BUDGET_BYTES;
}

/** The execution provider chosen in the app's Settings ('auto' by default). */
export function appProviderSetting(dataDir: string): Settings['provider'] {
  return readAppSettings(dataDir).saved.provider ?? 'auto';
}
