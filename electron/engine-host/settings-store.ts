// The app's settings. The chosen model lives in the CLI's settings (quire models use), so the app and
// the CLI agree on it; everything else the app shows in Settings lives in <data dir>/app-settings.json.
// Parts that depend on a setting subscribe to changes (onDidChange) instead of being called by name.
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
  temperature: 0,
  maxAnswerTokens: 256,
  systemPrompt: '',
};

export type SettingsListener = (next: Settings, previous: Settings) => void;

export class SettingsStore {
  private current: Settings;
  private readonly listeners = new Set<SettingsListener>();
  private readonly file: string;

  /** `modelDir` overrides the saved model choice for this run (quire serve --model). */
  constructor(dataDir: string, modelDir?: string) {
    this.file = path.join(dataDir, 'app-settings.json');
    this.current = { ...this.readFile(), modelDir: modelDir ? path.resolve(modelDir) : chosenModelDir() };
  }

  get(): Settings {
    return this.current;
  }

  /** Validates the merged settings (throws on bad values), saves them, then tells the listeners. */
  update(patch: Partial<Settings>): Settings {
    const previous = this.current;
    const next = settingsSchema.parse({ ...previous, ...patch });
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
    const { modelDir, ...rest } = this.current;
    const tmp = `${this.file}.tmp`;
    fs.writeFileSync(tmp, JSON.stringify(rest, null, 2));
    fs.renameSync(tmp, this.file);
    if (modelDir && readModelChoice().model !== modelDir) writeModelChoice({ ...readModelChoice(), model: modelDir });
  }
}

/** The model chosen or downloaded with the CLI (quire models use / download), if any. */
function chosenModelDir(): string | null {
  try {
    return resolveModelDir();
  } catch {
    return null; // none yet: the welcome view offers one
  }
}
