// The app's settings. The chosen model lives in the CLI's settings (quire models use), so the app and
// the CLI agree on it; everything else the app shows in Settings lives in <data dir>/app-settings.json.
// Parts that depend on a setting subscribe to changes (onDidChange) instead of being called by name.
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { DEFAULT_KV_BUDGET_BYTES } from '../../db/kv-store.ts';
import { DEFAULT_CHAT_KV_BYTES } from '../answering/chat-sessions.ts';
import { settingsSchema } from '../contract/schemas.ts';
import type { Settings } from '../contract/types.ts';
import { readSettings as readModelChoice, resolveModelDir, writeSettings as writeModelChoice } from '../models/catalog.ts';

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
  apiServer: false,
  apiPort: 8078,
  apiKey: '',
};

export type SettingsListener = (next: Settings, previous: Settings) => void;

export class SettingsStore {
  private current: Settings;
  private readonly listeners = new Set<SettingsListener>();
  private readonly file: string;

  /** `modelDir` overrides the saved model choice for this run (quire serve --model). */
  constructor(dataDir: string, modelDir?: string) {
    this.file = path.join(dataDir, 'app-settings.json');
    const saved = this.readFile();
    this.current = withApiKey({ ...saved, modelDir: modelDir ? path.resolve(modelDir) : chosenModelDir() });
    if (this.current.apiKey !== saved.apiKey) this.writeAppSettings(); // (the model choice is not this run's to save)
  }

  get(): Settings {
    return this.current;
  }

  /** Validates the merged settings (throws on bad values), saves them, then tells the listeners. */
  update(patch: Partial<Settings>): Settings {
    const previous = this.current;
    const next = withApiKey(settingsSchema.parse({ ...previous, ...patch }));
    this.current = next;
    this.writeFile();
    for (const listener of this.listeners) listener(next, previous);
    return next;
  }

  /** Calls `listener` after every update; returns the unsubscribe function. */
  onDidChange(listener: SettingsListener): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  private readFile(): Settings {
    let saved: Partial<Settings> = {};
    try {
      const parsed = settingsSchema.partial().safeParse(JSON.parse(fs.readFileSync(this.file, 'utf8')));
      if (parsed.success) saved = parsed.data;
    } catch {
      // no settings yet
    }
    return { ...DEFAULT_SETTINGS, ...saved };
  }

  private writeFile(): void {
    this.writeAppSettings();
    const { modelDir } = this.current;
    if (modelDir && readModelChoice().model !== modelDir) writeModelChoice({ ...readModelChoice(), model: modelDir });
  }

  private writeAppSettings(): void {
    const { modelDir: _chosenElsewhere, ...rest } = this.current;
    const tmp = `${this.file}.tmp`;
    fs.writeFileSync(tmp, JSON.stringify(rest, null, 2));
    fs.renameSync(tmp, this.file);
  }
}

/**
 * The API switched on without a key gets one, generated here so that settings.set returns it (a
 * window then shows it, and sends it back rather than '' on its next save).
 */
function withApiKey(settings: Settings): Settings {
  if (!settings.apiServer || settings.apiKey) return settings;
  return { ...settings, apiKey: `quire-${randomBytes(24).toString('hex')}` };
}

/** The model chosen or downloaded with the CLI (quire models use / download), if any. */
function chosenModelDir(): string | null {
  try {
    return resolveModelDir();
  } catch {
    return null; // none yet: the welcome view offers one
  }
}
