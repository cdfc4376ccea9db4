// @vitest-environment happy-dom
// The Library row (current file, ETAs, why prefill covers fewer passages, with a link to the setting,
// Remove asked first, the files not indexed grouped by reason), the welcome view keeping step 1 on
// offer until a model is chosen, Settings' generation fields with their help, a failed download said
// in words with Retry, and the passage panel (Escape, title once, the question's words).
import { act, cleanup, fireEvent, render, screen, waitFor, within } from '@testing-library/react';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { App } from '../renderer/App.tsx';
import { PassagePanel } from '../renderer/components/PassagePanel.tsx';
import { LibraryView, reasonGroup } from '../renderer/views/LibraryView.tsx';
import { SettingsView } from '../renderer/views/SettingsView.tsx';
import { fakeApi, folder, info, noModel, readyModel, settings, kvStats } from './helpers/ui-fake-api.ts';

beforeEach(() => localStorage.clear());
afterEach(cleanup);

describe('the Library row', () => {
  it('names the file being parsed and the time left for parsing and for prefill', () => {
    const { api } = fakeApi({});
    const { rerender } = render(
      <LibraryView
        api={api}
        folders={[folder({ currentFile: '/home/me/notes/deep/plan.md', parse: { done: 3, total: 10, etaMs: 42_000 } })]}
        onSettings={() => undefined}
      />,
    );
    expect(screen.getByTestId('current-file').textContent).toBe('Reading deep/plan.md · about 42 s left');
    expect(screen.getAllByText(/about 42 s left/).length).toBeGreaterThan(0);
    rerender(
      <LibraryView
        api={api}
        folders={[folder({ state: 'prefilling', parse: { done: 10, total: 10 }, prefill: { done: 100, total: 400, etaMs: 5 * 60_000 } })]}
        onSettings={() => undefined}
      />,
    );
    expect(screen.queryByTestId('current-file')).toBeNull();
    expect(screen.getByText(/100\/400/).textContent).toBe('100/400 · about 5 min left');
  });

  it('says plainly why prefill covers fewer passages (the KV budget), with a link to change it', () => {
    const onSettings = vi.fn();
    const { api } = fakeApi({});
    render(
      <LibraryView
        api={api}
        folders={[
          folder({
            state: 'done',
            passages: 1200,
            prefill: { done: 800, total: 800 },
            prefillLimit: { reason: 'kv-budget', passagesLeft: 400, budgetBytes: 2 * 1024 ** 3 },
          }),
        ]}
        onSettings={onSettings}
      />,
    );
    expect(screen.getByTestId('prefill-line').textContent).toMatch(/^400 of 1,200 passages have no stored KV: the KV budget \(2\.0 GB\) is full\./);
    fireEvent.click(screen.getByRole('button', { name: 'Change the KV budget' }));
    expect(onSettings).toHaveBeenCalledWith('kvBudgetBytes');
  });

  it('asks before removing a folder', async () => {
    const { api, request } = fakeApi({ 'folders.remove': () => ({ removed: true }) });
    render(<LibraryView api={api} folders={[folder({ state: 'done' })]} onSettings={() => undefined} />);
    fireEvent.click(screen.getByRole('button', { name: 'Remove' }));
    expect(screen.getByText('Remove notes from Quire? Its index goes; your files stay.')).toBeTruthy();
    expect(request).not.toHaveBeenCalledWith('folders.remove', expect.anything());
    fireEvent.click(screen.getByRole('button', { name: 'Cancel' }));
    expect(screen.queryByText(/Remove notes from Quire/)).toBeNull();
    fireEvent.click(screen.getByRole('button', { name: 'Remove' }));
    fireEvent.click(screen.getByRole('button', { name: 'Remove folder' }));
    await waitFor(() => expect(request).toHaveBeenCalledWith('folders.remove', { folderId: 1 }));
  });

  it('groups the files not indexed by reason, largest group first', async () => {
    const { api } = fakeApi({
      'folders.files': () => [
        { path: '/home/me/notes/a.bin', status: 'skipped', error: 'binary file' },
        { path: '/home/me/notes/big.log', status: 'skipped', error: 'too large (80.0 MB > 50.0 MB cap)' },
        { path: '/home/me/notes/huge.csv', status: 'skipped', error: 'too large (51.0 MB > 50.0 MB cap)' },
        { path: '/home/me/notes/x.pdf', status: 'failed', error: 'pdf parser error: bad xref' },
      ],
    });
    render(<LibraryView api={api} folders={[folder({ state: 'done', skipped: 3, failed: 1 })]} onSettings={() => undefined} />);
    fireEvent.click(screen.getByRole('button', { name: 'Show files not indexed' }));
    const group = await screen.findByRole('group', { name: 'Files not indexed' });
    const summaries = [...group.querySelectorAll('summary')].map((s) => s.textContent);
    expect(summaries).toEqual(['too large (2 files, skipped)', 'binary file (1 file, skipped)', 'pdf parser error (1 file, failed)']);
    const tooLarge = [...group.querySelectorAll('details')[0].querySelectorAll('li')].map((li) => li.textContent);
    expect(tooLarge).toEqual(['big.log — too large (80.0 MB > 50.0 MB cap)', 'huge.csv — too large (51.0 MB > 50.0 MB cap)']);
    expect(reasonGroup('unreadable (EACCES)')).toBe('unreadable');
  });

  it('shows why a typed path was refused', async () => {
    const { api } = fakeApi({ 'folders.add': () => Promise.reject(new Error('type a full path: "notes" is relative (for example /home/me/Documents)')) });
    render(<LibraryView api={api} folders={[]} onSettings={() => undefined} />);
    fireEvent.change(screen.getByLabelText('Folder path'), { target: { value: 'notes' } });
    fireEvent.click(screen.getByRole('button', { name: 'Add folder' }));
    expect((await screen.findByRole('alert')).textContent).toMatch(/^type a full path: "notes" is relative/);
  });
});

describe('first run', () => {
  it('keeps offering step 1 (the model) after a folder is added, until a model is chosen', async () => {
    const { api, emit } = fakeApi({
      'app.info': () => info(),
      'folders.list': () => [],
      'models.catalog': () => [{ id: 'm', name: 'Small model', sizeBytes: 490e6, isDefault: true, installed: false }],
      'folders.add': () => folder(),
    });
    render(<App api={api} />);
    await screen.findByRole('heading', { name: 'Welcome to Quire' });
    fireEvent.change(screen.getByLabelText('Folder path'), { target: { value: '/home/me/notes' } });
    fireEvent.click(screen.getByRole('button', { name: 'Add folder' }));
    act(() => emit('folder.progress', folder()));
    expect(await screen.findByText('✓ /home/me/notes')).toBeTruthy();
    // still the welcome view, step 1 still offered
    expect(screen.getByRole('heading', { name: 'Welcome to Quire' })).toBeTruthy();
    expect(within(screen.getByTestId('step-model')).getByRole('button', { name: 'Download Small model' })).toBeTruthy();
    expect(screen.getByRole('button', { name: 'Continue without a model (search only)' })).toBeTruthy();
    act(() => emit('model.changed', readyModel));
    expect(await screen.findByText('✓ Qwen2.5 0.5B Instruct')).toBeTruthy();
    expect(screen.getByRole('button', { name: 'Start asking' })).toBeTruthy();
  });
});

describe('Settings', () => {
  it('offers temperature, answer length and a system prompt, each with one line of help, and saves them', async () => {
    const { api, request } = fakeApi({
      'settings.get': () => settings,
      'settings.set': (patch: object) => ({ ...settings, ...patch }),
      'kv.stats': () => kvStats(),
      'models.catalog': () => [],
    });
    render(<SettingsView api={api} model={readyModel} />);
    const temperature = await screen.findByLabelText('Temperature');
    for (const label of ['Temperature', 'Max answer length (tokens)', 'System prompt (optional)', 'KV budget (MB)', 'Quality mode', 'Attention mode']) {
      const field = screen.getByLabelText(label);
      const help = document.getElementById(field.getAttribute('aria-describedby')!);
      expect(help?.textContent?.length, label).toBeGreaterThan(20);
    }
    expect(document.getElementById('setting-systemPrompt-help')!.textContent).toMatch(/prepares the stored passages’ KV again/);
    expect(document.getElementById('setting-kvBudgetBytes-help')!.textContent).toMatch(/^Disk space for passages’ precomputed model states \(KV\)/);
    fireEvent.change(screen.getByLabelText('Quality mode'), { target: { value: 'isolated' } });
    expect(document.getElementById('setting-quality-help')!.textContent).toMatch(/on its own/);
    fireEvent.change(temperature, { target: { value: '0.7' } });
    fireEvent.change(screen.getByLabelText('Max answer length (tokens)'), { target: { value: '512' } });
    fireEvent.change(screen.getByLabelText('System prompt (optional)'), { target: { value: 'Answer in French.' } });
    fireEvent.click(screen.getByRole('button', { name: 'Save settings' }));
    await waitFor(() =>
      expect(request).toHaveBeenCalledWith('settings.set', expect.objectContaining({ temperature: 0.7, maxAnswerTokens: 512, systemPrompt: 'Answer in French.' })),
    );
  });

  it('switches the local OpenAI-compatible API on: port and the key the engine made are shown', async () => {
    const madeKey = 'quire-0123456789abcdef0123456789abcdef';
    const { api, request } = fakeApi({
      'settings.get': () => settings,
      // the engine makes the key when the API is switched on without one (settings-store.ts)
      'settings.set': (patch: Partial<typeof settings>) => ({ ...settings, ...patch, apiKey: patch.apiServer && !patch.apiKey ? madeKey : (patch.apiKey ?? '') }),
      'kv.stats': () => kvStats(),
      'models.catalog': () => [],
    });
    render(<SettingsView api={api} model={readyModel} />);
    const toggle = (await screen.findByLabelText('Local OpenAI-compatible API')) as HTMLInputElement;
    expect(toggle.checked).toBe(false);
    expect(screen.queryByLabelText('API port')).toBeNull(); // off: nothing else to set
    expect(document.getElementById(toggle.getAttribute('aria-describedby')!)!.textContent).toMatch(/OpenAI’s API .*\(127\.0\.0\.1\)/);
    fireEvent.click(toggle);
    const port = screen.getByLabelText('API port') as HTMLInputElement;
    expect(port.value).toBe('8078');
    fireEvent.change(port, { target: { value: '9090' } });
    expect(document.getElementById('setting-apiPort-help')!.textContent).toBe('Clients use the base URL http://127.0.0.1:9090/v1.');
    const key = screen.getByLabelText('API key') as HTMLInputElement;
    expect([key.readOnly, key.value, key.placeholder]).toEqual([true, '', 'made when you save']);
    fireEvent.click(screen.getByRole('button', { name: 'Save settings' }));
    await waitFor(() => expect(request).toHaveBeenCalledWith('settings.set', expect.objectContaining({ apiServer: true, apiPort: 9090 })));
    await waitFor(() => expect((screen.getByLabelText('API key') as HTMLInputElement).value).toBe(madeKey));
  });

  it('lands on the field a Library link points at', async () => {
    const { api } = fakeApi({
      'settings.get': () => settings,
      'kv.stats': () => kvStats(),
      'models.catalog': () => [],
    });
    render(<SettingsView api={api} model={readyModel} focus="kvBudgetBytes" />);
    await screen.findByLabelText('KV budget (MB)');
    await waitFor(() => expect(document.activeElement?.id).toBe('setting-kvBudgetBytes'));
  });

  it('says why a download failed, in words, and retries', async () => {
    const { api, request, emit } = fakeApi({
      'settings.get': () => settings,
      'kv.stats': () => kvStats(),
      'models.catalog': () => [{ id: 'm', name: 'Small model', sizeBytes: 490e6, isDefault: true, installed: false }],
      'models.download': () => noModel,
    });
    render(<SettingsView api={api} model={noModel} />);
    fireEvent.click(await screen.findByRole('button', { name: 'Download Small model' }));
    await waitFor(() => expect(request).toHaveBeenCalledWith('models.download', { modelId: 'm' }));
    act(() => emit('model.download', { modelId: 'm', receivedBytes: 0, totalBytes: 0, done: true, error: 'cannot reach the model hub (huggingface.co not found): are you offline?' }));
    expect((await screen.findByRole('alert')).textContent).toMatch(/^The download stopped: cannot reach the model hub \(huggingface\.co not found\): are you offline\?/);
    fireEvent.click(screen.getByRole('button', { name: 'Retry' }));
    await waitFor(() => expect(request.mock.calls.filter((c) => c[0] === 'models.download')).toHaveLength(2));
  });
});

describe('the passage panel', () => {
  it('shows the title once, highlights a question by its content words, and closes with Escape', async () => {
    const { api, request } = fakeApi({
      'passage.get': () => ({
        passageId: 7,
        documentPath: '/home/me/notes/sea.md',
        title: 'The sea › Storms',
        page: null,
        parts: [
          { text: 'The ', highlighted: false },
          { text: 'keeper', highlighted: true },
          { text: ' wrote.', highlighted: false },
        ],
      }),
      'host.openPath': () => ({ opened: true }),
    });
    const onClose = vi.fn();
    render(
      <PassagePanel
        api={api}
        target={{ passageId: 7, documentPath: '/home/me/notes/sea.md', page: null, title: 'The sea › Storms', ordinal: 2, question: 'What did the keeper do?' }}
        onClose={onClose}
      />,
    );
    await screen.findByText('keeper', { selector: 'mark' });
    expect(request).toHaveBeenCalledWith('passage.get', { passageId: 7, question: 'What did the keeper do?' });
    expect(screen.getAllByText(/The sea › Storms/)).toHaveLength(1);
    expect(screen.getByTestId('passage-title').textContent).toBe('[2] The sea › Storms');
    fireEvent.keyDown(window, { key: 'Escape' });
    expect(onClose).toHaveBeenCalledTimes(1);
  });
});
