// The app's settings. The chosen model lives in the CLI's settings (quire models use), so the app and
// the CLI agree on it; everything else the app shows in Settings lives in <data dir>/app-settings.json,
// read (with the defaults) by electron/app-settings.ts, the same reader the command line uses.
// A run may pin some settings without saving them (quire serve --model/--provider/--kv-budget).
// Parts that depend on a setting subscribe to changes (onDidChange) instead of being called by name.
import fs from 'node:fs';
import path from 'node:path';
import type { ProviderChoice } from '../../native-models/provider-names.ts';
import { appSettingsPath, readAppSettings } from '../app-settings.ts';
import { settingsSchema } from '../contract/schemas.ts';
import type { Settings } from '../contract/types.ts';
import { readSettings as readModelChoice, resolveModelDir, writeSettings as writeModelChoice } from '../models/catalog.ts';

/** Settings one run pins without saving them (quire serve --model, --provider, --kv-budget). */
export interface SettingsOverrides {
  modelDir?: string;
  provider?: ProviderChoice;
  kvBudgetBytes?: number;
}

export type SettingsListener = (next: Settings, previous: Settings) => void;

export class SettingsStore {
  /** What is saved: app-settings.json over the defaults, and the CLI's model choice. */
  private saved: Settings;
  /** The run's overrides still in force (a setting changed in the app drops its override). */
  private readonly overrides: Partial<Settings>;
  private current: Settings;
  private readonly listeners = new Set<SettingsListener>();
  private readonly file: string;

  constructor(dataDir: string, overrides: SettingsOverrides = {}) {
    this.file = appSettingsPath(dataDir);
    // read by the same function, with the same defaults, as the command line reads them
    this.saved = { ...readAppSettings(dataDir).settings, modelDir: chosenModelDir() };
    this.overrides = {
      ...(overrides.modelDir ? { modelDir: path.resolve(overrides.modelDir) } : {}),
      ...(overrides.provider ? { provider: overrides.provider } : {}),
      ...(overrides.kvBudgetBytes !== undefined ? { kvBudgetBytes: overrides.kvBudgetBytes } : {}),
    };
    this.current = settingsSchema.parse({ ...this.saved, ...this.overrides });
  }

  get(): Settings {
    return this.current;
  }

  /**
   * Validates the merged settings (throws on bad values), saves them, then tells the listeners.
   * Only what was saved and what the patch sets is written: a run's overrides stay unsaved, except
   * those the patch replaces (the user chose anew).
   */
  update(patch: Partial<Settings>): Settings {
    const previous = this.current;
    const next = settingsSchema.parse({ ...previous, ...patch });
    const saved = settingsSchema.parse({ ...this.saved, ...patch });
    for (const key of Object.keys(patch) as (keyof Settings)[]) delete this.overrides[key];
    this.writeFile(saved, patch);
    this.saved = saved;
    this.current = next;
    for (const listener of this.listeners) listener(next, previous);
    return next;
  }

  /** Calls `listener` after every update; returns the unsubscribe function. */
  onDidChange(listener: SettingsListener): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  private writeFile(saved: Settings, patch: Partial<Settings>): void {
    const { modelDir, ...rest } = saved;
    const tmp = `${this.file}.tmp`;
    fs.writeFileSync(tmp, JSON.stringify(rest, null, 2));
    fs.renameSync(tmp, this.file);
    // the model lives in the CLI's settings: written when the app chooses one
    if (patch.modelDir && modelDir && readModelChoice().model !== modelDir) writeModelChoice({ ...readModelChoice(), model: modelDir });
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
