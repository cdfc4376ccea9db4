// Where Quire keeps its data: the user's data directory for the platform, or QUIRE_HOME.
import os from 'node:os';
import path from 'node:path';

export interface AppPathsEnv {
  env?: NodeJS.ProcessEnv;
  platform?: NodeJS.Platform;
  homedir?: string;
}

/**
 * QUIRE_HOME if set; else Linux (and other Unixes): $XDG_DATA_HOME/quire or ~/.local/share/quire;
 * macOS: ~/Library/Application Support/Quire; Windows: %APPDATA%\Quire.
 */
export function quireHome({ env = process.env, platform = process.platform, homedir = os.homedir() }: AppPathsEnv = {}): string {
  if (env.QUIRE_HOME) return path.resolve(env.QUIRE_HOME);
  if (platform === 'darwin') return path.join(homedir, 'Library', 'Application Support', 'Quire');
  if (platform === 'win32') return path.win32.join(env.APPDATA ?? path.win32.join(homedir, 'AppData', 'Roaming'), 'Quire');
  const dataHome = env.XDG_DATA_HOME && path.isAbsolute(env.XDG_DATA_HOME) ? env.XDG_DATA_HOME : path.join(homedir, '.local', 'share');
  return path.join(dataHome, 'quire');
}

/** Where `--provider auto` remembers what it measured per model and machine: <home>/provider-choice.json. */
export function providerChoicePath(home: string = quireHome()): string {
  return path.join(home, 'provider-choice.json');
}

/** The default database file: <home>/quire.db. */
export function defaultDbPath(options: AppPathsEnv = {}): string {
  const home = quireHome(options);
  return (options.platform ?? process.platform) === 'win32' ? path.win32.join(home, 'quire.db') : path.join(home, 'quire.db');
}

/**
 * The data directory that goes with a database: the default one's is the data directory itself;
 * a database given by path (--db) keeps its settings (app-settings.json) beside it, as `quire serve`
 * does, so every command reading that database honours the same settings.
 */
export function dataDirForDb(dbOption: string | undefined, options: AppPathsEnv = {}): string {
  return dbOption ? path.dirname(path.resolve(dbOption)) : quireHome(options);
}
