// The engine's SettingsStore reads app-settings.json through electron/app-settings.ts (the reader the
// command line uses), so the app and the CLI see the same settings and defaults; a run's overrides
// (quire serve --model/--provider/--kv-budget) apply without being saved, until the user changes
// that very setting.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { DEFAULT_SETTINGS, readAppSettings } from '../electron/app-settings.ts';
import { readSettings as readModelChoice } from '../electron/models/catalog.ts';
import { SettingsStore } from '../electron/engine-host/settings-store.ts';

const MiB = 1024 ** 2;
let tmp: string;
let dataDir: string;
let previousHome: string | undefined;

const savedFile = () => JSON.parse(fs.readFileSync(path.join(dataDir, 'app-settings.json'), 'utf8')) as Record<string, unknown>;

beforeEach(() => {
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'quire-settings-'));
  dataDir = path.join(tmp, 'data');
  fs.mkdirSync(dataDir);
  previousHome = process.env.QUIRE_HOME;
  process.env.QUIRE_HOME = path.join(tmp, 'home'); // the CLI's model choice lives here
});
afterEach(() => {
  process.env.QUIRE_HOME = previousHome;
  fs.rmSync(tmp, { recursive: true, force: true });
});

describe('SettingsStore', () => {
  it('holds what the command line reads: the saved settings over the same defaults', () => {
    expect(new SettingsStore(dataDir).get()).toEqual(DEFAULT_SETTINGS); // no file, no model chosen
    fs.writeFileSync(path.join(dataDir, 'app-settings.json'), JSON.stringify({ k: 5, provider: 'cpu', kvBudgetBytes: 48 * MiB }));
    const store = new SettingsStore(dataDir);
    expect(store.get()).toEqual({ ...readAppSettings(dataDir).settings, modelDir: null });
    expect(store.get()).toMatchObject({ k: 5, provider: 'cpu', kvBudgetBytes: 48 * MiB, passageTokens: DEFAULT_SETTINGS.passageTokens });
    // an invalid file is ignored as a whole by both
    fs.writeFileSync(path.join(dataDir, 'app-settings.json'), JSON.stringify({ k: 5, provider: 'tpu' }));
    expect(readAppSettings(dataDir).problem).toMatch(/invalid settings \(provider/);
    expect(new SettingsStore(dataDir).get()).toEqual(DEFAULT_SETTINGS);
  });

  it("applies a run's overrides without saving them; a setting the user changes drops its override", () => {
    fs.writeFileSync(path.join(dataDir, 'app-settings.json'), JSON.stringify({ provider: 'webgpu', kvBudgetBytes: 64 * MiB }));
    const modelDir = path.join(tmp, 'model');
    const store = new SettingsStore(dataDir, { modelDir, provider: 'cpu', kvBudgetBytes: 32 * MiB });
    expect(store.get()).toMatchObject({ modelDir, provider: 'cpu', kvBudgetBytes: 32 * MiB });

    // another setting changes: saved with the saved provider and budget, the overrides stay in force
    expect(store.update({ k: 7 })).toMatchObject({ k: 7, modelDir, provider: 'cpu', kvBudgetBytes: 32 * MiB });
    expect(savedFile()).toMatchObject({ k: 7, provider: 'webgpu', kvBudgetBytes: 64 * MiB });
    expect(savedFile()).not.toHaveProperty('modelDir');
    expect(readModelChoice().model).toBeUndefined(); // --model is not written as the CLI's choice

    // the user chooses a provider: saved, and it replaces the run's
    expect(store.update({ provider: 'auto' })).toMatchObject({ provider: 'auto', kvBudgetBytes: 32 * MiB });
    expect(savedFile()).toMatchObject({ provider: 'auto', kvBudgetBytes: 64 * MiB });
    expect(store.update({ k: 8 }).provider).toBe('auto');

    // a model chosen in the app is the CLI's model choice too
    const chosen = path.join(tmp, 'chosen');
    expect(store.update({ modelDir: chosen }).modelDir).toBe(chosen);
    expect(readModelChoice().model).toBe(chosen);
  });

  it('refuses an invalid update and keeps what it had', () => {
    const store = new SettingsStore(dataDir, { kvBudgetBytes: 32 * MiB });
    expect(() => store.update({ k: 0 })).toThrow();
    expect(store.get()).toMatchObject({ k: DEFAULT_SETTINGS.k, kvBudgetBytes: 32 * MiB });
    expect(fs.existsSync(path.join(dataDir, 'app-settings.json'))).toBe(false);
  });
});
