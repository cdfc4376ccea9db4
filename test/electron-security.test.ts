// The app's security, by behaviour, without an Electron binary (none can be downloaded here): the
// window's settings and guards; the IPC handler answers only the app's own frame with arguments the
// contract accepts; host.openPath opens only documents of the library (the real handler, a real
// engine service and real files, a fake `shell` recording what it was asked); and electron/main.ts
// and preload.ts, imported with a fake `electron` module and an in-process engine, wire all of it.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { IPC_REQUEST_CHANNEL, type EventName, type QuireApi } from '../electron/contract/types.ts';
import type { StartEngineOptions } from '../electron/engine-host/client.ts';
import { EngineService } from '../electron/engine-host/service.ts';
import { createIpcHandler, type IpcEnvelope, type IpcSenderEvent } from '../electron/ipc-validation.ts';
import { createOpenPathHandler, engineLibrary, type OpenShell } from '../electron/open-path.ts';
import { guardContents, guardSession, mainWindowOptions, RENDERER_CSP, type GuardedContents } from '../electron/window-options.ts';
import { makePdf } from './fixtures/indexer-corpus.ts';

/** What the fake `electron` module was asked to do. */
const electron = vi.hoisted(() => {
  const state = {
    lock: true,
    appListeners: new Map<string, (...args: unknown[]) => void>(),
    quits: 0,
    windows: [] as unknown[],
    loaded: [] as string[],
    ipcHandlers: new Map<string, (...args: unknown[]) => Promise<unknown>>(),
    permissionRequest: undefined as ((c: unknown, p: string, cb: (granted: boolean) => void) => void) | undefined,
    permissionCheck: undefined as ((c: unknown, p: string) => boolean) | undefined,
    shellCalls: [] as [string, string][],
    exposed: [] as [string, unknown][],
    invoked: [] as unknown[][],
    invokeResult: undefined as unknown,
  };
  class BrowserWindow {
    webContents = { send: () => undefined };
    constructor(options: unknown) {
      state.windows.push(options);
    }
    once() {}
    on() {}
    show() {}
    isMinimized() {
      return false;
    }
    restore() {}
    focus() {}
    async loadFile(file: string) {
      state.loaded.push(file);
    }
  }
  const module = {
    app: {
      requestSingleInstanceLock: () => state.lock,
      quit: () => void state.quits++,
      on: (event: string, listener: (...args: unknown[]) => void) => void state.appListeners.set(event, listener),
      whenReady: () => Promise.resolve(),
      getVersion: () => '0.0.0-test',
    },
    BrowserWindow,
    dialog: { showOpenDialog: async () => ({ canceled: true, filePaths: [] }) },
    ipcMain: { handle: (channel: string, handler: (...args: unknown[]) => Promise<unknown>) => void state.ipcHandlers.set(channel, handler) },
    session: {
      defaultSession: {
        setPermissionRequestHandler: (h: typeof state.permissionRequest) => void (state.permissionRequest = h),
        setPermissionCheckHandler: (h: typeof state.permissionCheck) => void (state.permissionCheck = h),
      },
    },
    shell: {
      openPath: async (p: string) => (state.shellCalls.push(['openPath', p]), ''),
      openExternal: async (url: string) => void state.shellCalls.push(['openExternal', url]),
      showItemInFolder: (p: string) => void state.shellCalls.push(['showItemInFolder', p]),
    },
    contextBridge: { exposeInMainWorld: (key: string, api: unknown) => void state.exposed.push([key, api]) },
    ipcRenderer: {
      invoke: async (...args: unknown[]) => (state.invoked.push(args), state.invokeResult),
      on: () => undefined,
      off: () => undefined,
    },
    webUtils: { getPathForFile: () => '/dropped' },
  };
  return { state, module };
});
vi.mock('electron', () => ({ ...electron.module, default: electron.module }));

// main.ts's engine, in this process: the real service, without the worker thread around it.
vi.mock('../electron/engine-host/client.ts', () => ({
  startEngine: async ({ workerUrl: _w, ...options }: StartEngineOptions) => {
    const listeners = new Set<(name: EventName, payload: unknown) => void>();
    const service = await EngineService.start({ ...options, emit: (name, payload) => listeners.forEach((l) => l(name, payload)) });
    return {
      request: (name: never, args: unknown) => service.handle(name, args),
      onEvent: (l: (name: EventName, payload: unknown) => void) => (listeners.add(l), () => listeners.delete(l)),
      close: () => service.close(),
    };
  },
}));

const APP = 'file:///opt/Quire/resources/app.asar/dist/renderer/index.html';

/** Polls until `check` holds (bounded by the test timeout; never a time assertion). */
async function until(check: () => boolean | Promise<boolean>): Promise<void> {
  while (!(await check())) await new Promise((r) => setTimeout(r, 20));
}

// A library and the files around it, for host.openPath.
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'quire-security-'));
const lib = path.join(tmp, 'library');
const outside = path.join(tmp, 'outside');
const inLib = (name: string) => path.join(lib, name);
/** The first bytes of this machine's node binary: a real program (ELF, Mach-O or PE). */
const programBytes = () => {
  const fd = fs.openSync(process.execPath, 'r');
  const head = Buffer.alloc(64 * 1024);
  fs.readSync(fd, head, 0, head.length, 0);
  fs.closeSync(fd);
  return head;
};

async function writeLibrary(): Promise<void> {
  fs.mkdirSync(lib, { recursive: true });
  fs.mkdirSync(outside, { recursive: true });
  fs.writeFileSync(inLib('notes.pdf'), await makePdf([['The heron waits.'], ['Page two.']]));
  fs.writeFileSync(inLib('memo.md'), '# Memo\n\nThe heron waits by the river.\n');
  fs.writeFileSync(inLib('run.txt'), 'echo this text file is executable\n', { mode: 0o755 });
  fs.writeFileSync(inLib('script.sh'), 'echo hello from a script\n', { mode: 0o644 });
  fs.writeFileSync(inLib('shebang.txt'), '#!/bin/sh\necho a script with a text name\n', { mode: 0o644 });
  fs.writeFileSync(inLib('fake.pdf'), programBytes(), { mode: 0o644 });
  fs.writeFileSync(inLib('id'), programBytes(), { mode: 0o755 });
  fs.writeFileSync(inLib('letter.docx'), 'not a zip at all', { mode: 0o644 });
  fs.writeFileSync(inLib('zeros.txt'), Buffer.alloc(4096), { mode: 0o644 });
  fs.writeFileSync(path.join(outside, 'secret.md'), '# Secret\n\nOutside the library.\n');
  fs.writeFileSync(path.join(outside, 'prog'), programBytes(), { mode: 0o755 });
  fs.symlinkSync(path.join(outside, 'secret.md'), inLib('outside-link.md'));
}

afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));

describe('BrowserWindow options', () => {
  const wp = mainWindowOptions('/opt/Quire/preload.cjs').webPreferences!;
  it('isolates and sandboxes the renderer, with no Node', () => {
    expect(wp.contextIsolation).toBe(true);
    expect(wp.sandbox).toBe(true);
    expect(wp.nodeIntegration).toBe(false);
    expect(wp.nodeIntegrationInWorker).toBe(false);
    expect(wp.nodeIntegrationInSubFrames).toBe(false);
    expect(wp.webSecurity).toBe(true);
    expect(wp.allowRunningInsecureContent).toBe(false);
    expect(wp.webviewTag).toBe(false);
    expect(wp.preload).toBe('/opt/Quire/preload.cjs');
  });

  it('has a strict CSP: own scripts only, no inline or eval, no remote connections', () => {
    expect(RENDERER_CSP).toContain("default-src 'none'");
    expect(RENDERER_CSP).toContain("script-src 'self'");
    expect(RENDERER_CSP).toContain("connect-src 'self'");
    expect(RENDERER_CSP).toContain("object-src 'none'");
    expect(RENDERER_CSP).not.toMatch(/unsafe-inline|unsafe-eval|\*/);
    const html = fs.readFileSync(new URL('../renderer/index.html', import.meta.url), 'utf8');
    const meta = /http-equiv="Content-Security-Policy" content="([^"]+)"/.exec(html)?.[1];
    expect(meta).toBeDefined();
    expect(meta).not.toMatch(/unsafe-inline|unsafe-eval|\*/);
    expect(meta).toContain("script-src 'self'");
  });

  it('blocks navigation away from the app, window.open and webviews', () => {
    const listeners = new Map<string, (event: { preventDefault(): void }, url?: string) => void>();
    let openHandler: ((d: { url: string }) => { action: string }) | undefined;
    const contents = {
      on: (name: string, l: (event: { preventDefault(): void }, url?: string) => void) => listeners.set(name, l),
      setWindowOpenHandler: (h: (d: { url: string }) => { action: string }) => (openHandler = h),
    } as unknown as GuardedContents;
    guardContents(contents, APP);
    const attempt = (name: string, url?: string) => {
      const preventDefault = vi.fn();
      listeners.get(name)!({ preventDefault }, url);
      return preventDefault.mock.calls.length > 0;
    };
    expect(attempt('will-navigate', 'https://evil.example/')).toBe(true);
    expect(attempt('will-navigate', 'file:///etc/passwd')).toBe(true);
    expect(attempt('will-redirect', 'https://evil.example/')).toBe(true);
    expect(attempt('will-navigate', `${APP}#chat`)).toBe(false);
    expect(attempt('will-attach-webview')).toBe(true);
    expect(openHandler!({ url: 'https://example.com' })).toEqual({ action: 'deny' });
  });

  it('denies every permission request', () => {
    let request: ((c: unknown, p: string, cb: (granted: boolean) => void) => void) | undefined;
    let check: ((c: unknown, p: string) => boolean) | undefined;
    guardSession({ setPermissionRequestHandler: (h) => (request = h), setPermissionCheckHandler: (h) => (check = h) });
    for (const p of ['media', 'geolocation', 'notifications', 'clipboard-read', 'openExternal']) {
      const cb = vi.fn();
      request!(null, p, cb);
      expect(cb).toHaveBeenCalledWith(false);
      expect(check!(null, p)).toBe(false);
    }
  });
});

describe('IPC validation', () => {
  const trusted: IpcSenderEvent = { senderFrame: { url: `${APP}#x`, parent: null } };
  const setup = () => {
    const dispatch = vi.fn(async (name: string, args: unknown) => ({ name, args }));
    return { dispatch, handle: createIpcHandler({ appUrl: APP, dispatch }) };
  };

  it('answers the app frame with validated arguments', async () => {
    const { dispatch, handle } = setup();
    expect(await handle(trusted, 'search', { query: 'moon', limit: 5 })).toEqual({
      ok: true,
      result: { name: 'search', args: { query: 'moon', limit: 5 } },
    });
    expect(dispatch).toHaveBeenCalledTimes(1);
  });

  it('refuses other senders: another page, a subframe, no frame', async () => {
    const { dispatch, handle } = setup();
    for (const event of [
      { senderFrame: { url: 'https://evil.example/', parent: null } },
      { senderFrame: { url: 'file:///tmp/other.html', parent: null } },
      { senderFrame: { url: APP, parent: {} } },
      { senderFrame: null },
    ]) {
      const r = await handle(event, 'folders.list', {});
      expect(r.ok).toBe(false);
    }
    expect(dispatch).not.toHaveBeenCalled();
  });

  it('refuses unknown requests and arguments the schema rejects', async () => {
    const { dispatch, handle } = setup();
    expect(await handle(trusted, 'shell.exec', {})).toMatchObject({ ok: false, error: { code: 'unknown-request' } });
    expect(await handle(trusted, '__proto__', {})).toMatchObject({ ok: false, error: { code: 'unknown-request' } });
    expect(await handle(trusted, 'folders.remove', { folderId: -1 })).toMatchObject({ ok: false, error: { code: 'invalid-arguments' } });
    expect(await handle(trusted, 'folders.add', { path: '' })).toMatchObject({ ok: false, error: { code: 'invalid-arguments' } });
    expect(await handle(trusted, 'search', { query: 'x', sql: 'DROP TABLE' })).toMatchObject({ ok: false, error: { code: 'invalid-arguments' } });
    expect(await handle(trusted, 'host.openPath', { path: 42 })).toMatchObject({ ok: false, error: { code: 'invalid-arguments' } });
    expect(dispatch).not.toHaveBeenCalled();
  });
});

describe('host.openPath: only documents of the library, never programs', () => {
  let service: EngineService;
  const shellCalls: [string, string][] = [];
  const shell: OpenShell = {
    openPath: async (p) => (shellCalls.push(['openPath', p]), ''),
    openExternal: async (url) => void shellCalls.push(['openExternal', url]),
    showItemInFolder: (p) => void shellCalls.push(['showItemInFolder', p]),
  };
  let openPath: ReturnType<typeof createOpenPathHandler>;
  /** The handler's answer and what it asked of the shell. */
  const attempt = async (p: string, page?: number) => {
    shellCalls.length = 0;
    const result = await openPath({ path: p, page });
    return { result, shell: [...shellCalls] };
  };

  beforeAll(async () => {
    await writeLibrary();
    service = await EngineService.start({ dbPath: path.join(tmp, 'handler.db'), dataDir: path.join(tmp, 'home'), host: 'electron', emit: () => undefined });
    const folder = await service.handle('folders.add', { path: lib });
    await until(async () => (await service.handle('folders.list', {})).find((f) => f.id === folder.id)?.state === 'done');
    fs.writeFileSync(inLib('later.md'), '# Later\n\nWritten after indexing.\n'); // no document row yet
    openPath = createOpenPathHandler({ shell, library: engineLibrary(() => ({ request: (name, args) => service.handle(name, args) })) });
  });
  afterAll(() => service?.close());

  it('opens a document of the library with the OS, a PDF at its page', async () => {
    expect(await attempt(inLib('memo.md'))).toEqual({ result: { opened: true }, shell: [['openPath', fs.realpathSync(inLib('memo.md'))]] });
    const pdf = fs.realpathSync(inLib('notes.pdf'));
    expect(await attempt(inLib('notes.pdf'))).toEqual({ result: { opened: true }, shell: [['openPath', pdf]] });
    expect((await attempt(inLib('notes.pdf'), 2)).shell).toEqual([['openExternal', `file://${pdf}#page=2`]]);
  });

  it('refuses, asking nothing of the OS: paths outside the library, files not indexed, links out of the folder', async () => {
    const refused = async (p: string) => {
      const { result, shell: calls } = await attempt(p);
      expect(calls, p).toEqual([]);
      expect(result.opened, p).toBe(false);
      return result.reason;
    };
    expect(await refused(path.join(outside, 'prog'))).toBe('only documents of your library can be opened');
    expect(await refused(path.join(outside, 'secret.md'))).toBe('only documents of your library can be opened');
    expect(await refused(process.execPath)).toBe('only documents of your library can be opened');
    expect(await refused(inLib('later.md'))).toBe('only documents of your library can be opened');
    expect(await refused(inLib('../outside/secret.md'))).toBe('only documents of your library can be opened');
    expect(await refused('memo.md')).toBe('not an absolute path');
    // indexed (the walk follows links), but its real path is outside the folder
    expect(await refused(inLib('outside-link.md'))).toBe('it is a link to a file outside its library folder');
  });

  it('shows programs and files that are not what they claim in their folder instead of opening them', async () => {
    const revealed = async (name: string) => {
      const { result, shell: calls } = await attempt(inLib(name));
      expect(calls, name).toEqual([['showItemInFolder', fs.realpathSync(inLib(name))]]);
      expect(result.opened, name).toBe(false);
      return result.reason;
    };
    expect(await revealed('id')).toBe('it is executable: shown in its folder instead');
    expect(await revealed('run.txt')).toBe('it is executable: shown in its folder instead');
    expect(await revealed('script.sh')).toBe('it is a program: shown in its folder instead');
    expect(await revealed('fake.pdf')).toBe('its content is a program: shown in its folder instead');
    expect(await revealed('shebang.txt')).toBe('its content is a program: shown in its folder instead');
    expect(await revealed('letter.docx')).toBe('its content is not a Word document: shown in its folder instead');
    expect(await revealed('zeros.txt')).toBe('its content is not a text document: shown in its folder instead');
  });
});

describe('electron/main.ts, with a fake electron module', () => {
  beforeAll(async () => {
    if (!fs.existsSync(lib)) await writeLibrary();
    process.env.QUIRE_HOME = path.join(tmp, 'main-home');
    process.env.QUIRE_DB = path.join(tmp, 'main.db');
  });
  afterAll(() => {
    delete process.env.QUIRE_HOME;
    delete process.env.QUIRE_DB;
  });

  it('quits at once when another instance holds the lock, opening nothing', async () => {
    electron.state.lock = false;
    vi.resetModules();
    await import('../electron/main.ts');
    expect(electron.state.quits).toBe(1);
    expect(electron.state.windows).toEqual([]);
    expect(electron.state.appListeners.has('web-contents-created')).toBe(false);
  });

  it('opens one hardened window, guards every web contents and the session, and answers IPC through the validated handler', async () => {
    electron.state.lock = true;
    electron.state.quits = 0;
    vi.resetModules();
    await import('../electron/main.ts');
    await until(() => electron.state.loaded.length === 1);

    expect(electron.state.windows).toHaveLength(1);
    const options = electron.state.windows[0] as ReturnType<typeof mainWindowOptions>;
    expect(options).toEqual(mainWindowOptions(options.webPreferences!.preload!));
    expect(path.basename(options.webPreferences!.preload!)).toBe('preload.cjs');

    // every web contents created gets the navigation guards
    const listeners = new Map<string, (event: { preventDefault(): void }, url?: string) => void>();
    let openHandler: ((d: { url: string }) => { action: string }) | undefined;
    electron.state.appListeners.get('web-contents-created')!({}, {
      on: (name: string, l: (event: { preventDefault(): void }, url?: string) => void) => listeners.set(name, l),
      setWindowOpenHandler: (h: (d: { url: string }) => { action: string }) => (openHandler = h),
    });
    const preventDefault = vi.fn();
    listeners.get('will-navigate')!({ preventDefault }, 'https://evil.example/');
    expect(preventDefault).toHaveBeenCalled();
    expect(openHandler!({ url: 'https://evil.example/' })).toEqual({ action: 'deny' });

    const granted = vi.fn();
    electron.state.permissionRequest!(null, 'media', granted);
    expect(granted).toHaveBeenCalledWith(false);
    expect(electron.state.permissionCheck!(null, 'geolocation')).toBe(false);

    const handle = electron.state.ipcHandlers.get(IPC_REQUEST_CHANNEL)!;
    const appUrl = `file://${electron.state.loaded[0]}`;
    const trusted = { senderFrame: { url: appUrl, parent: null } };
    expect(await handle({ senderFrame: { url: 'https://evil.example/', parent: null } }, 'folders.list', {})).toMatchObject({ ok: false });
    expect(await handle(trusted, 'shell.exec', {})).toMatchObject({ ok: false, error: { code: 'unknown-request' } });

    // host.openPath goes through the open-path policy
    const added = (await handle(trusted, 'folders.add', { path: lib })) as IpcEnvelope;
    expect(added.ok).toBe(true);
    await until(async () => ((await handle(trusted, 'folders.list', {})) as { result: { state: string }[] }).result[0].state === 'done');
    electron.state.shellCalls.length = 0;
    expect(await handle(trusted, 'host.openPath', { path: path.join(outside, 'prog') })).toEqual({
      ok: true,
      result: { opened: false, reason: 'only documents of your library can be opened' },
    });
    expect(await handle(trusted, 'host.openPath', { path: inLib('id') })).toMatchObject({ ok: true, result: { opened: false } });
    expect(await handle(trusted, 'host.openPath', { path: inLib('memo.md') })).toEqual({ ok: true, result: { opened: true } });
    expect(electron.state.shellCalls).toEqual([
      ['showItemInFolder', fs.realpathSync(inLib('id'))],
      ['openPath', fs.realpathSync(inLib('memo.md'))],
    ]);

    // quitting waits for the engine to close its database, then quits
    const quitEvent = { preventDefault: vi.fn() };
    electron.state.appListeners.get('before-quit')!(quitEvent);
    expect(quitEvent.preventDefault).toHaveBeenCalled();
    await until(() => electron.state.quits === 1);
  });
});

describe('electron/preload.ts, with a fake electron module', () => {
  it('exposes exactly one API, window.quire, that speaks only through the request channel', async () => {
    vi.resetModules();
    electron.state.exposed.length = 0;
    await import('../electron/preload.ts');
    expect(electron.state.exposed.map(([key]) => key)).toEqual(['quire']);
    const api = electron.state.exposed[0][1] as QuireApi & { pathForFile(f: unknown): string };
    expect(Object.keys(api).sort()).toEqual(['on', 'pathForFile', 'request']);
    expect(Object.values(api).every((v) => typeof v === 'function')).toBe(true);

    electron.state.invokeResult = { ok: true, result: [{ id: 1 }] } satisfies IpcEnvelope;
    expect(await api.request('folders.list', {})).toEqual([{ id: 1 }]);
    expect(electron.state.invoked.at(-1)).toEqual([IPC_REQUEST_CHANNEL, 'folders.list', {}]);
    electron.state.invokeResult = { ok: false, error: { code: 'invalid-arguments', message: 'no' } } satisfies IpcEnvelope;
    const failure = await api.request('folders.list', {}).catch((e: unknown) => e);
    // the preload's own copy of the contract module (modules were reset), hence the name
    expect(failure).toMatchObject({ name: 'QuireRequestError', code: 'invalid-arguments', message: 'no' });
  });
});
