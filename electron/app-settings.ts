// The app's saved settings (<data dir>/app-settings.json, written from the Settings view) and their
// defaults, in one place for every reader: the engine service's SettingsStore and the command line,
// so the CLI keeps the promises the app makes (the same KV budget and provider unless an option says
// otherwise) and the two cannot disagree on a default. Parsed with the contract's settings schema: a
// file that is not valid JSON, or not valid settings, is ignored as a whole (defaults apply).
import fs from 'node:fs';
import path from 'node:path';
import { DEFAULT_KV_BUDGET_BYTES } from '../db/kv-store.ts';
import { DEFAULT_CHAT_KV_BYTES } from './answering/chat-sessions.ts';
import { settingsSchema } from './contract/schemas.ts';
import type { Settings } from './contract/types.ts';

export const APP_SETTINGS_FILE = 'app-settings.json';

/** What applies where app-settings.json says nothing. modelDir: the CLI's model choice fills it in (SettingsStore). */
export const DEFAULT_SETTINGS: Settings = {
  modelDir: null,
  provider: 'auto',
  kvBudgetBytes: DEFAULT_KV_BUDGET_BYTES,
  passageTokens: 256,
  eagerPrefill: true,
  k: 10,
  mode: 'block',
  quality: 'auto',
  chatKvBytes: DEFAULT_CHAT_KV_BYTES,
  // answers: repeatable by default (greedy), a few paragraphs long, Quire's own system turn ('')
  temperature: 0,
  maxAnswerTokens: 256,
  systemPrompt: '',
  // the OpenAI-compatible API in the desktop app (quire serve always has it): off until switched on;
  // its key is generated when it is switched on without one (SettingsStore)
  apiServer: false,
  apiPort: 8078,
  apiKey: '',
};

export interface SavedAppSettings {
  file: string;
  /** What the file holds (empty when there is no file, or when it is ignored). */
  saved: Partial<Settings>;
  /** The settings in force: the saved ones over DEFAULT_SETTINGS. */
  settings: Settings;
  /** Why an existing file is ignored; null when it is used or absent. */
  problem: string | null;
}

export function appSettingsPath(dataDir: string): string {
  return path.join(dataDir, APP_SETTINGS_FILE);
}

export function readAppSettings(dataDir: string): SavedAppSettings {
  const file = appSettingsPath(dataDir);
  const result = (saved: Partial<Settings>, problem: string | null): SavedAppSettings => ({ file, saved, settings: { ...DEFAULT_SETTINGS, ...saved }, problem });
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch {
    return result({}, null);
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (e) {
    return result({}, `${file} is not valid JSON (${(e as Error).message}); defaults apply`);
  }
  const parsed = settingsSchema.partial().safeParse(json);
  if (!parsed.success) {
    const first = parsed.error.issues[0];
    return result({}, `${file} holds invalid settings (${first.path.join('.')}: ${first.message}); defaults apply`);
  }
  return result(parsed.data, null);
}

/** The byte budget of stored passage KV the app keeps for this data directory. */
export function appKvBudgetBytes(dataDir: string): number {
  return readAppSettings(dataDir).settings.kvBudgetBytes;
}

/** The execution provider chosen in the app's Settings ('auto' by default). */
export function appProviderSetting(dataDir: string): Settings['provider'] {
  return readAppSettings(dataDir).settings.provider;
}
