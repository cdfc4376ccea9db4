// The Electron main process: one window, IPC wiring, dialogs; no heavy work. Indexing and answers
// run in the engine worker (engine-host/), which owns the database. Bundled by
// build/build-electron.mjs into dist/electron/ (main.mjs, preload.cjs, engine-worker.mjs).
import { app, BrowserWindow, dialog, ipcMain, session, shell } from 'electron';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { quireHome, defaultDbPath } from './app-paths.ts';
import {
  IPC_EVENT_CHANNEL,
  IPC_REQUEST_CHANNEL,
  isHostRequest,
  isWindowEvent,
  QuireRequestError,
  type RequestArgs,
  type RequestName,
  type Settings,
} from './contract/types.ts';
import { startEngine, type EngineClient } from './engine-host/client.ts';
import { createIpcHandler } from './ipc-validation.ts';
import { createOpenPathHandler, engineLibrary } from './open-path.ts';
import { ApiServerSwitch } from './serve/api-server.ts';
import { guardContents, guardSession, mainWindowOptions } from './window-options.ts';

const here = path.dirname(fileURLToPath(import.meta.url));
const rendererIndex = path.resolve(here, '..', 'renderer', 'index.html');
const appUrl = pathToFileURL(rendererIndex).href;

let engine: EngineClient | null = null;
let win: BrowserWindow | null = null;
/** The OpenAI-compatible API, on when the apiServer setting says so. */
let api: ApiServerSwitch | null = null;

if (!app.requestSingleInstanceLock()) {
  app.quit();
} else {
  app.on('second-instance', () => {
    if (win?.isMinimized()) win.restore();
    win?.focus();
  });
  app.on('web-contents-created', (_event, contents) => guardContents(contents, appUrl));
  void app.whenReady().then(start);
}

/** Opens only documents of the library, never programs; other library files are shown in their folder (open-path.ts). */
const openPath = createOpenPathHandler({ shell, library: engineLibrary(() => engine!) });

async function dispatch<N extends RequestName>(name: N, args: RequestArgs<N>): Promise<unknown> {
  if (!engine) throw new QuireRequestError('unavailable', 'the engine is starting');
  if (name === 'settings.set') {
    const settings = await engine.request('settings.set', args as RequestArgs<'settings.set'>);
    void applyApiSettings(settings);
    return settings;
  }
  if (!isHostRequest(name)) return engine.request(name, args);
  if (name === 'host.pickFolder') {
    const r = await dialog.showOpenDialog(win!, { properties: ['openDirectory'], title: 'Add a folder to your library' });
    return { path: r.canceled ? null : (r.filePaths[0] ?? null) };
  }
  return openPath(args as RequestArgs<'host.openPath'>);
}

let apiAnnounced: string | null = null;

async function applyApiSettings(settings: Settings): Promise<void> {
  const state = await api!.apply(settings);
  const line = state.problem ?? (state.running ? `OpenAI-compatible API on http://127.0.0.1:${state.port}/v1` : null);
  if (line && line !== apiAnnounced) process.stderr.write(`quire: ${line}\n`);
  apiAnnounced = line;
}

async function start(): Promise<void> {
  guardSession(session.defaultSession);
  const dataDir = quireHome();
  engine = await startEngine({
    dbPath: process.env.QUIRE_DB ?? defaultDbPath(),
    dataDir,
    modelDir: process.env.QUIRE_MODEL,
    host: 'electron',
    version: app.getVersion(),
    workerUrl: new URL('./engine-worker.mjs', import.meta.url),
  });
  ipcMain.handle(IPC_REQUEST_CHANNEL, createIpcHandler({ appUrl, dispatch }));
  engine.onEvent((name, payload) => {
    if (isWindowEvent(name)) win?.webContents.send(IPC_EVENT_CHANNEL, name, payload);
  });
  api = new ApiServerSwitch(engine);
  await applyApiSettings(await engine.request('settings.get', {}));

  win = new BrowserWindow(mainWindowOptions(path.join(here, 'preload.cjs')));
  win.once('ready-to-show', () => win?.show());
  win.on('closed', () => {
    win = null;
  });
  await win.loadFile(rendererIndex);
}

let quitting = false;
app.on('before-quit', (event) => {
  if (quitting || !engine) return;
  // let the engine finish its current database transaction and close the file, then quit
  event.preventDefault();
  quitting = true;
  void Promise.resolve(api?.close())
    .then(() => engine!.close())
    .finally(() => app.quit());
});
app.on('window-all-closed', () => app.quit());
