// @vitest-environment happy-dom
// Component tests of the main views against a fake typed API (no engine, no server).
import { act, cleanup, fireEvent, render, screen, waitFor } from '@testing-library/react';
import { afterEach, describe, expect, it, vi } from 'vitest';
import type { EventName, EventPayloads, FolderView, RequestName, RequestResults } from '../electron/contract/types.ts';
import type { RendererApi } from '../renderer/api.ts';
import { App } from '../renderer/App.tsx';
import { ChatView, Readout } from '../renderer/views/ChatView.tsx';
import { LibraryView } from '../renderer/views/LibraryView.tsx';
import { SearchView } from '../renderer/views/SearchView.tsx';
import { SettingsView } from '../renderer/views/SettingsView.tsx';

afterEach(cleanup);

type Handlers = { [N in RequestName]?: (args: never) => RequestResults[N] | Promise<RequestResults[N]> };

function fakeApi(handlers: Handlers) {
  const listeners = new Map<string, Set<(p: unknown) => void>>();
  const request = vi.fn(async (name: RequestName, args: unknown) => {
    const h = handlers[name] as ((a: unknown) => unknown) | undefined;
    if (!h) throw new Error(`unexpected ${name}`);
    return h(args);
  });
  const api = {
    host: 'serve',
    request,
    on(name: EventName, l: (p: unknown) => void) {
      if (!listeners.has(name)) listeners.set(name, new Set());
      listeners.get(name)!.add(l);
      return () => listeners.get(name)!.delete(l);
    },
  } as unknown as RendererApi;
  const emit = <E extends EventName>(name: E, payload: EventPayloads[E]) => listeners.get(name)?.forEach((l) => l(payload));
  return { api, request, emit };
}

const folder = (over: Partial<FolderView> = {}): FolderView => ({
  id: 1,
  path: '/home/me/notes',
  state: 'parsing',
  parse: { done: 3, total: 10 },
  prefill: { done: 0, total: 0 },
  files: 10,
  indexed: 3,
  failed: 1,
  skipped: 0,
  passages: 12,
  error: null,
  ...over,
});

const noModel = { ready: false, dir: null, problem: 'no model chosen yet', provider: null };
const info = (over = {}) => ({
  version: '0.1.0',
  dataDir: '/tmp',
  host: 'serve' as const,
  model: noModel,
  folders: 0,
  features: { indexing: true, answering: true, downloads: true },
  ...over,
});

describe('App', () => {
  it('opens on the welcome view on first run (no model, no folder)', async () => {
    const { api } = fakeApi({ 'app.info': () => info(), 'folders.list': () => [], 'models.catalog': () => [
      { id: 'm', name: 'Small model', sizeBytes: 490e6, isDefault: true, installed: false },
    ] });
    render(<App api={api} />);
    expect(await screen.findByRole('heading', { name: 'Welcome to Quire' })).toBeTruthy();
    expect(await screen.findByText(/Small model \(467\.3 MB\) — recommended/)).toBeTruthy();
    expect(screen.getByLabelText('Folder path')).toBeTruthy();
  });

  it('Ctrl+K opens search', async () => {
    const { api } = fakeApi({
      'app.info': () => info({ model: { ...noModel, ready: true, provider: 'cpu' }, folders: 1 }),
      'folders.list': () => [folder({ state: 'done' })],
      'chats.list': () => [],
    });
    render(<App api={api} />);
    await screen.findByRole('region', { name: 'Chat' });
    fireEvent.keyDown(window, { key: 'k', ctrlKey: true });
    expect(await screen.findByLabelText('Search your library')).toBeTruthy();
  });
});

describe('App: engine stopped', () => {
  it('says when the engine stopped and was restarted, or could not be, and refreshes the folders', async () => {
    const { api, emit, request } = fakeApi({
      'app.info': () => info({ model: { ...noModel, ready: true, provider: 'cpu' }, folders: 1 }),
      'folders.list': () => [folder({ state: 'done' })],
      'chats.list': () => [],
    });
    render(<App api={api} />);
    await screen.findByRole('navigation', { name: 'Views' });
    const listsBefore = request.mock.calls.filter(([name]) => name === 'folders.list').length;
    act(() => emit('engine.stopped', { reason: 'it ran out of memory', restarted: true }));
    expect((await screen.findByText(/The engine stopped \(it ran out of memory\) and was restarted/)).getAttribute('role')).toBe('alert');
    await waitFor(() => expect(request.mock.calls.filter(([name]) => name === 'folders.list').length).toBe(listsBefore + 1));
    act(() => emit('engine.stopped', { reason: 'it exited with code 3', restarted: false }));
    expect(await screen.findByText(/could not be restarted: restart Quire/)).toBeTruthy();
    fireEvent.click(screen.getByRole('button', { name: 'Dismiss' }));
    expect(screen.queryByRole('alert')).toBeNull();
  });
});

describe('the model badge', () => {
  it('says which provider runs the model, and why in its tooltip', async () => {
    const providerReason = 'webgpu adapter is a CPU (llvmpipe (LLVM 15.0.6, 256 bits)): using cpu';
    const { api } = fakeApi({
      'app.info': () => info({ model: { ...noModel, ready: true, provider: 'cpu', providerReason }, folders: 1 }),
      'folders.list': () => [folder({ state: 'done' })],
      'chats.list': () => [],
    });
    render(<App api={api} />);
    const badge = await screen.findByRole('status', { name: 'Model status' });
    await waitFor(() => expect(badge.textContent).toBe('model: cpu'));
    expect(badge.getAttribute('title')).toBe(providerReason);
  });
});

describe('LibraryView', () => {
  it('shows per-folder progress, counts and the files not indexed with reasons', async () => {
    const { api, request } = fakeApi({
      'folders.files': () => [{ path: '/home/me/notes/broken.pdf', status: 'failed', error: 'corrupt PDF (bad xref)' }],
      'folders.pause': () => folder({ state: 'paused' }),
    });
    render(<LibraryView api={api} folders={[folder()]} />);
    const parsing = screen.getByLabelText('Parsing') as HTMLProgressElement;
    expect(parsing.value).toBe(3);
    expect(parsing.max).toBe(10);
    expect(screen.getByText(/3 indexed · 12 passages · 0 skipped · 1 failed/)).toBeTruthy();
    fireEvent.click(screen.getByRole('button', { name: 'Show files not indexed' }));
    expect(await screen.findByText(/broken\.pdf: corrupt PDF \(bad xref\)/)).toBeTruthy();
    fireEvent.click(screen.getByRole('button', { name: 'Pause' }));
    await waitFor(() => expect(request).toHaveBeenCalledWith('folders.pause', { folderId: 1 }));
  });

  it('tells a new user what to do when empty, and adds a typed path', async () => {
    const { api, request } = fakeApi({ 'folders.add': () => folder() });
    render(<LibraryView api={api} folders={[]} />);
    expect(screen.getByText(/No folders yet/)).toBeTruthy();
    fireEvent.change(screen.getByLabelText('Folder path'), { target: { value: '/home/me/notes' } });
    fireEvent.click(screen.getByRole('button', { name: 'Add folder' }));
    await waitFor(() => expect(request).toHaveBeenCalledWith('folders.add', { path: '/home/me/notes' }));
  });
});

describe('SearchView', () => {
  it('searches as you type and highlights the hits, with a folder filter', async () => {
    const { api, request } = fakeApi({
      search: () => [
        {
          passageId: 7,
          documentId: 2,
          path: '/home/me/notes/sea.md',
          title: 'Sea',
          page: null,
          snippet: [
            { text: 'the ', highlighted: false },
            { text: 'lighthouse', highlighted: true },
            { text: ' keeper', highlighted: false },
          ],
        },
      ],
    });
    const open = vi.fn();
    render(<SearchView api={api} folders={[folder({ state: 'done' })]} onOpenPassage={open} />);
    fireEvent.change(screen.getByLabelText('Folder filter'), { target: { value: '1' } });
    fireEvent.change(screen.getByLabelText('Search your library'), { target: { value: 'lighthouse' } });
    const mark = await screen.findByText('lighthouse', { selector: 'mark' });
    expect(mark).toBeTruthy();
    expect(request).toHaveBeenLastCalledWith('search', { query: 'lighthouse', folderId: 1, limit: 30 });
    fireEvent.click(screen.getByRole('button', { name: /Sea/ }));
    expect(open).toHaveBeenCalledWith(expect.objectContaining({ passageId: 7, query: 'lighthouse' }));
  });
});

describe('ChatView', () => {
  it('streams the answer, then shows citations and the readout; Enter sends, Shift+Enter does not', async () => {
    let finish: (() => void) | undefined;
    const { api, request, emit } = fakeApi({
      'chats.list': () => [],
      ask: (args: { requestId: string }) =>
        new Promise((resolve) => {
          finish = () =>
            resolve({
              requestId: args.requestId,
              chatId: 3,
              messageId: 9,
              answer: 'Storms and **ships** [1].',
              citations: [{ ordinal: 1, passageId: 7, documentPath: '/n/sea.md', title: 'Sea', page: null, quote: 'q' }],
              sources: [],
              figures: { ttftMs: 42, reusedBlocks: 2, computedBlocks: 1, tokensPerSecond: 31.5, provider: 'cpu', mode: 'block', passagesUsed: 3, passagesDropped: 0, passagesShortened: 0 },
              cancelled: false,
            });
        }),
    });
    const open = vi.fn();
    render(<ChatView api={api} modelReady hasFolders onOpenPassage={open} onGo={() => undefined} />);
    const box = screen.getByLabelText('Ask a question');
    fireEvent.change(box, { target: { value: 'What did the keeper write?' } });
    fireEvent.keyDown(box, { key: 'Enter', shiftKey: true });
    expect(request).not.toHaveBeenCalledWith('ask', expect.anything());
    fireEvent.keyDown(box, { key: 'Enter' });
    await waitFor(() => expect(request).toHaveBeenCalledWith('ask', expect.objectContaining({ question: 'What did the keeper write?' })));
    const requestId = (request.mock.calls.find((c) => c[0] === 'ask')![1] as { requestId: string }).requestId;
    act(() => emit('answer.text', { requestId, text: 'Storms and ' }));
    expect(await screen.findByText(/Storms and/)).toBeTruthy();
    expect(screen.getByRole('button', { name: 'Stop' })).toBeTruthy();
    await act(async () => finish!());
    expect(await screen.findByText('ships', { selector: 'strong' })).toBeTruthy();
    expect(screen.getByTestId('readout').textContent).toBe('TTFT 42 ms · blocks 2 reused / 1 computed · 31.5 tokens/s · cpu · block');
    fireEvent.click(screen.getByRole('button', { name: /Citation 1/ }));
    expect(open).toHaveBeenCalledWith(expect.objectContaining({ passageId: 7, documentPath: '/n/sea.md' }));
  });
});

describe('Readout', () => {
  it('says how many passages fit the model when some were left out or shortened, nothing when all fit', () => {
    const figures = { ttftMs: null, reusedBlocks: null, computedBlocks: null, tokensPerSecond: null, provider: null, mode: null };
    const text = (f: { passagesUsed: number | null; passagesDropped: number | null; passagesShortened: number | null }) =>
      render(<Readout figures={{ ...figures, ...f }} />).container.textContent;
    expect(text({ passagesUsed: 2, passagesDropped: 8, passagesShortened: 0 })).toBe('passages 2 used / 8 left out to fit the model');
    cleanup();
    expect(text({ passagesUsed: 1, passagesDropped: 0, passagesShortened: 1 })).toBe('passages 1 used / 0 left out / 1 shortened to fit the model');
    cleanup();
    expect(text({ passagesUsed: 10, passagesDropped: 0, passagesShortened: 0 })).toBe('');
    cleanup();
    expect(text({ passagesUsed: null, passagesDropped: null, passagesShortened: null })).toBe('');
  });
});

describe('SettingsView', () => {
  it('shows the settings with KV usage and saves changes', async () => {
    const settings = { modelDir: null, provider: 'auto', kvBudgetBytes: 2 * 1024 ** 3, passageTokens: 256, eagerPrefill: true, k: 10, mode: 'block', quality: 'auto', chatKvBytes: 512 * 1024 ** 2, apiServer: false, apiPort: 8078, apiKey: '' } as const;
    const { api, request } = fakeApi({
      'settings.get': () => settings,
      'settings.set': (patch: object) => ({ ...settings, ...patch }),
      'kv.stats': () => ({ entries: 5, bytes: 3 * 1024 * 1024, budgetBytes: settings.kvBudgetBytes }),
      'models.catalog': () => [],
    });
    render(<SettingsView api={api} model={noModel} />);
    expect((await screen.findByTestId('kv-usage')).textContent).toBe('In use: 3.0 MB in 5 blocks');
    fireEvent.change(screen.getByLabelText('Passages per question (k)'), { target: { value: '6' } });
    fireEvent.change(screen.getByLabelText('Provider'), { target: { value: 'cpu' } });
    fireEvent.change(screen.getByLabelText('Chat memory (MB)'), { target: { value: '256' } });
    fireEvent.click(screen.getByRole('button', { name: 'Save settings' }));
    await waitFor(() =>
      expect(request).toHaveBeenCalledWith('settings.set', expect.objectContaining({ k: 6, provider: 'cpu', chatKvBytes: 256 * 1024 ** 2 })),
    );
  });
});
