// @vitest-environment happy-dom
// Component tests of the main views against a fake typed API (no engine, no server).
import { act, cleanup, fireEvent, render, screen, waitFor } from '@testing-library/react';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { App } from '../renderer/App.tsx';
import { Readout } from '../renderer/components/Readout.tsx';
import { ChatView } from '../renderer/views/ChatView.tsx';
import { LibraryView } from '../renderer/views/LibraryView.tsx';
import { SearchView } from '../renderer/views/SearchView.tsx';
import { SettingsView } from '../renderer/views/SettingsView.tsx';
import { fakeApi, folder, info, noModel, readyModel, settings, kvStats } from './helpers/ui-fake-api.ts';

afterEach(cleanup);

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
      'app.info': () => info({ model: readyModel, folders: 1 }),
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
      'app.info': () => info({ model: readyModel, folders: 1 }),
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
  it('names the model, with the provider and why in its tooltip; a spinner while it loads', async () => {
    const providerReason = 'webgpu adapter is a CPU (llvmpipe (LLVM 15.0.6, 256 bits)): using cpu';
    const { api, emit } = fakeApi({
      'app.info': () => info({ model: { ...readyModel, loading: true, ready: false }, folders: 1 }),
      'folders.list': () => [folder({ state: 'done' })],
      'chats.list': () => [],
      'settings.get': () => settings,
      'kv.stats': () => kvStats(),
      'models.catalog': () => [],
    });
    render(<App api={api} />);
    const badge = await screen.findByRole('button', { name: 'Model status' });
    expect(badge.textContent).toBe('Loading Qwen2.5 0.5B Instruct…');
    expect(screen.getByRole('img', { name: 'Loading the model' })).toBeTruthy();
    act(() => emit('model.changed', { ...readyModel, providerReason }));
    await waitFor(() => expect(badge.textContent).toBe('Qwen2.5 0.5B Instruct'));
    expect(badge.textContent).not.toContain('cpu');
    expect(screen.queryByRole('img', { name: 'Loading the model' })).toBeNull();
    expect(badge.getAttribute('title')).toBe(`/models/qwen\nruns on cpu\n${providerReason}`);
    fireEvent.click(badge); // the badge leads to the model's settings
    expect(await screen.findByRole('region', { name: 'Settings' })).toBeTruthy();
  });
});

describe('LibraryView', () => {
  it('shows per-folder progress, counts and the files not indexed with reasons', async () => {
    const { api, request } = fakeApi({
      'folders.files': () => [{ path: '/home/me/notes/broken.pdf', status: 'failed', error: 'corrupt PDF (bad xref)' }],
      'folders.pause': () => folder({ state: 'paused' }),
    });
    render(<LibraryView api={api} folders={[folder()]} onSettings={() => undefined} />);
    const parsing = screen.getByLabelText('Parsing') as HTMLProgressElement;
    expect(parsing.value).toBe(3);
    expect(parsing.max).toBe(10);
    expect(screen.getByText(/3 indexed · 12 passages · 0 skipped · 1 failed/)).toBeTruthy();
    fireEvent.click(screen.getByRole('button', { name: 'Show files not indexed' }));
    expect(await screen.findByText('broken.pdf')).toBeTruthy();
    expect(screen.getByText(/corrupt PDF \(bad xref\)/)).toBeTruthy();
    fireEvent.click(screen.getByRole('button', { name: 'Pause' }));
    await waitFor(() => expect(request).toHaveBeenCalledWith('folders.pause', { folderId: 1 }));
  });

  it("shows each folder's coverage, and says each why and ETA once: the coverage line, the run's bar or the prefill line", async () => {
    const coverage = { folderId: 1, passages: 1000, stored: 624, limitedBy: 'prefilling' as const, etaMs: 4.4 * 60_000 };
    const { api, request } = fakeApi({
      'kv.stats': () => kvStats({ entries: 624, bytes: 1, budgetBytes: 2, folders: [coverage], prefill: { queued: 376, msPerBlock: 700 } }),
    });
    const card = () => screen.getByRole('listitem', { name: 'Folder /home/me/notes' }).textContent!;
    // background prefill outside the folder's run (what questions predict): the coverage line has the ETA
    const { rerender } = render(<LibraryView api={api} folders={[folder({ state: 'done' })]} onSettings={() => undefined} />);
    expect((await screen.findByTestId('kv-coverage')).textContent).toBe('62% answer instantly · preparing more, about 4 min left');
    expect(request).toHaveBeenCalledWith('kv.stats', { folderId: 1 });
    // the folder's own prefill run: its bar has the ETA, the coverage line only the share
    rerender(
      <LibraryView api={api} folders={[folder({ state: 'prefilling', prefill: { done: 624, total: 1000, etaMs: 4.4 * 60_000 } })]} onSettings={() => undefined} />,
    );
    await waitFor(() => expect(screen.getByTestId('kv-coverage').textContent).toBe('62% answer instantly'));
    expect(card().match(/about 4 min left/g)).toHaveLength(1);
    // a full budget: said by the prefill line, with its link, and not again by the coverage line
    Object.assign(coverage, { stored: 999, limitedBy: 'budget', etaMs: null });
    const prefillLimit = { reason: 'kv-budget' as const, passagesLeft: 1, budgetBytes: 2 * 1024 ** 3 };
    rerender(<LibraryView api={api} folders={[folder({ state: 'done', passages: 1000, prefillLimit })]} onSettings={() => undefined} />);
    await waitFor(() => expect(screen.getByTestId('kv-coverage').textContent).toBe('99% answer instantly'));
    expect(screen.getByTestId('prefill-line').textContent).toMatch(/^1 of 1,000 passages have no stored KV: the KV budget \(2\.0 GB\) is full\./);
    expect(card().match(/budget/gi)).toHaveLength(2); // "the KV budget (2.0 GB) is full" and the link "Change the KV budget"
    Object.assign(coverage, { stored: 1000, limitedBy: null });
    rerender(<LibraryView api={api} folders={[folder({ state: 'done', prefill: { done: 1, total: 1 } })]} onSettings={() => undefined} />);
    await waitFor(() => expect(screen.getByTestId('kv-coverage').textContent).toBe('100% answer instantly'));
    expect(screen.queryByTestId('prefill-line')).toBeNull();
  });

  it('tells a new user what to do when empty, and adds a typed path', async () => {
    const { api, request } = fakeApi({ 'folders.add': () => folder() });
    render(<LibraryView api={api} folders={[]} onSettings={() => undefined} />);
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
              figures: {
                contextPassages: 3,
                ttftMs: 42,
                reusedBlocks: 2,
                computedBlocks: 1,
                tokensPerSecond: 31.5,
                provider: 'cpu',
                mode: 'block',
                passagesUsed: 3,
                passagesDropped: 0,
                passagesShortened: 0,
                prefetched: false,
              },
              cancelled: false,
            });
        }),
    });
    const open = vi.fn();
    render(<ChatView api={api} modelReady folders={[folder({ state: 'done' })]} onOpenPassage={open} onGo={() => undefined} />);
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
    const figures = { contextPassages: null, ttftMs: null, reusedBlocks: null, computedBlocks: null, tokensPerSecond: null, provider: null, mode: null, prefetched: null };
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

  it("shows the fit beside the chat's passage figures: the context holds earlier passages, the fit counts this answer's", () => {
    const live = { contextPassages: 5, ttftMs: 40, reusedBlocks: 1, computedBlocks: 1, tokensPerSecond: null, provider: null, mode: null, prefetched: false };
    expect(render(<Readout figures={{ ...live, passagesUsed: 2, passagesDropped: 4, passagesShortened: 0 }} />).container.textContent).toBe(
      'TTFT 40 ms · blocks 1 reused / 1 computed (+3 already in this chat) · passages 2 used / 4 left out to fit the model',
    );
    cleanup();
    // every passage found left out: the model still ran (on the question alone), so the figures show
    const none = { ...live, contextPassages: 0, reusedBlocks: 0, computedBlocks: 0, passagesUsed: 0, passagesDropped: 3, passagesShortened: 0 };
    expect(render(<Readout figures={none} />).container.textContent).toBe('TTFT 40 ms · blocks 0 reused / 0 computed · passages 0 used / 3 left out to fit the model');
    cleanup();
    // nothing found: the model did not run
    const nothing = { ...live, contextPassages: 0, ttftMs: null, reusedBlocks: null, computedBlocks: null, passagesUsed: 0, passagesDropped: 0, passagesShortened: 0 };
    expect(render(<Readout figures={nothing} />).container.textContent).toBe('');
  });

  it('says when the context was prepared while the question was typed (and marks the line for tests either way)', () => {
    const live = {
      contextPassages: 2,
      ttftMs: 12,
      reusedBlocks: 2,
      computedBlocks: 0,
      tokensPerSecond: null,
      provider: null,
      mode: null,
      passagesUsed: 2,
      passagesDropped: 0,
      passagesShortened: 0,
    };
    const line = render(<Readout figures={{ ...live, prefetched: true }} />).getByTestId('readout');
    expect(line.textContent).toBe('TTFT 12 ms · blocks 2 reused / 0 computed · prefetched while typing');
    expect(line.dataset.prefetched).toBe('true');
    cleanup();
    const plain = render(<Readout figures={{ ...live, prefetched: false }} />).getByTestId('readout');
    expect(plain.textContent).toBe('TTFT 12 ms · blocks 2 reused / 0 computed');
    expect(plain.dataset.prefetched).toBe('false');
  });
});

describe('SettingsView', () => {
  it('shows the settings with KV usage and saves changes', async () => {
    const { api, request } = fakeApi({
      'settings.get': () => settings,
      'settings.set': (patch: object) => ({ ...settings, ...patch }),
      'kv.stats': () => ({ entries: 5, bytes: 3 * 1024 * 1024, budgetBytes: settings.kvBudgetBytes, codec: 'float16', folders: [], prefill: { queued: 0, msPerBlock: null } }),
      'models.catalog': () => [],
    });
    render(<SettingsView api={api} model={noModel} />);
    expect((await screen.findByTestId('kv-usage')).textContent).toBe('In use: 3.0 MB in 5 blocks.');
    fireEvent.change(screen.getByLabelText('Passages per question'), { target: { value: '6' } });
    fireEvent.change(screen.getByLabelText('Provider'), { target: { value: 'cpu' } });
    fireEvent.change(screen.getByLabelText('Chat memory (MB)'), { target: { value: '256' } });
    fireEvent.click(screen.getByRole('button', { name: 'Save settings' }));
    await waitFor(() =>
      expect(request).toHaveBeenCalledWith('settings.set', expect.objectContaining({ k: 6, provider: 'cpu', chatKvBytes: 256 * 1024 ** 2 })),
    );
  });
});
