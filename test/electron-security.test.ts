// The window keeps its security settings, and the IPC handler answers only the app's own frame with
// arguments the contract accepts. Checked without an Electron binary (none can be downloaded here).
import fs from 'node:fs';
import { describe, expect, it, vi } from 'vitest';
import { createIpcHandler, type IpcSenderEvent } from '../electron/ipc-validation.ts';
import { guardContents, guardSession, mainWindowOptions, RENDERER_CSP, type GuardedContents } from '../electron/window-options.ts';

const APP = 'file:///opt/Quire/resources/app.asar/dist/renderer/index.html';

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

  it('main.ts uses these options, the single-instance lock and the guards; the preload exposes one API', () => {
    const main = fs.readFileSync(new URL('../electron/main.ts', import.meta.url), 'utf8');
    expect(main).toContain('new BrowserWindow(mainWindowOptions(');
    expect(main).toContain('requestSingleInstanceLock()');
    expect(main).toContain('guardContents(contents, appUrl)');
    expect(main).toContain('guardSession(session.defaultSession)');
    expect(main).toContain('createIpcHandler(');
    const preload = fs.readFileSync(new URL('../electron/preload.ts', import.meta.url), 'utf8');
    expect(preload.match(/exposeInMainWorld\(/g)).toHaveLength(1);
    expect(preload).not.toMatch(/exposeInMainWorld\([^)]*ipcRenderer\s*\)/);
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
