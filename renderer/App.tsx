import { useCallback, useEffect, useRef, useState } from 'react';
import type { AppInfo, EventPayloads, FolderView, ModelStatus } from '../electron/contract/types.ts';
import type { RendererApi } from './api.ts';
import { PassagePanel, type PassageRef } from './components/PassagePanel.tsx';
import { ChatView } from './views/ChatView.tsx';
import { LibraryView } from './views/LibraryView.tsx';
import { SearchView } from './views/SearchView.tsx';
import { SettingsView } from './views/SettingsView.tsx';
import { WelcomeView } from './views/WelcomeView.tsx';

export type ViewName = 'chat' | 'search' | 'library' | 'settings';
const VIEWS: { name: ViewName; label: string }[] = [
  { name: 'chat', label: 'Chat' },
  { name: 'search', label: 'Search' },
  { name: 'library', label: 'Library' },
  { name: 'settings', label: 'Settings' },
];

export function App({ api, initialView }: { api: RendererApi; initialView?: ViewName }) {
  const [info, setInfo] = useState<AppInfo | null>(null);
  const [problem, setProblem] = useState<string | null>(null);
  const [model, setModel] = useState<ModelStatus | null>(null);
  const [folders, setFolders] = useState<FolderView[]>([]);
  const [view, setView] = useState<ViewName | null>(initialView ?? null);
  const [panel, setPanel] = useState<PassageRef | null>(null);
  /** The last time the engine died, and whether the host brought it back. */
  const [engineStop, setEngineStop] = useState<EventPayloads['engine.stopped'] | null>(null);
  const searchInput = useRef<HTMLInputElement>(null);

  const refreshFolders = useCallback(() => {
    api.request('folders.list', {}).then(setFolders, () => undefined);
  }, [api]);

  useEffect(() => {
    api.request('app.info', {}).then(
      (i) => {
        setInfo(i);
        setModel(i.model);
        setView((v) => v ?? (!i.model.ready && i.folders === 0 ? null : 'chat'));
      },
      (e: Error) => setProblem(e.message),
    );
    refreshFolders();
    const offs = [
      api.on('folder.progress', (f) =>
        setFolders((list) => (list.some((x) => x.id === f.id) ? list.map((x) => (x.id === f.id ? f : x)) : [...list, f])),
      ),
      api.on('folders.changed', refreshFolders),
      api.on('model.changed', setModel),
      api.on('engine.stopped', (stop) => {
        setEngineStop(stop);
        if (stop.restarted) refreshFolders();
      }),
    ];
    return () => offs.forEach((off) => off());
  }, [api, refreshFolders]);

  useEffect(() => {
    const onKey = (e: KeyboardEvent) => {
      if ((e.ctrlKey || e.metaKey) && e.key.toLowerCase() === 'k') {
        e.preventDefault();
        setView('search');
        setTimeout(() => searchInput.current?.focus(), 0);
      }
    };
    window.addEventListener('keydown', onKey);
    return () => window.removeEventListener('keydown', onKey);
  }, []);

  if (problem) {
    return (
      <main className="app-problem" role="alert">
        <h1>Quire cannot reach its engine</h1>
        <p>{problem}</p>
      </main>
    );
  }
  if (!info || !model) return <main aria-busy="true">Starting Quire…</main>;
  if (view === null) return <WelcomeView api={api} model={model} onDone={() => setView(folders.length > 0 ? 'library' : 'chat')} />;

  return (
    <div className="app">
      <nav className="tabs" aria-label="Views">
        <span className="brand">Quire</span>
        {VIEWS.map((v) => (
          <button key={v.name} type="button" aria-current={view === v.name ? 'page' : undefined} onClick={() => setView(v.name)}>
            {v.label}
          </button>
        ))}
        <span className="model-badge" role="status" aria-label="Model status" title={model.providerReason ?? undefined}>
          {model.ready ? `model: ${model.provider ?? 'ready'}` : 'no model'}
        </span>
      </nav>
      {engineStop && (
        <p className="error engine-stopped" role="alert">
          {engineStop.restarted
            ? `The engine stopped (${engineStop.reason}) and was restarted; indexing resumes.`
            : `The engine stopped (${engineStop.reason}) and could not be restarted: restart Quire.`}{' '}
          <button type="button" onClick={() => setEngineStop(null)}>
            Dismiss
          </button>
        </p>
      )}
      <main className={panel ? 'content with-panel' : 'content'}>
        <div className="view">
          {view === 'chat' && (
            <ChatView api={api} modelReady={model.ready} hasFolders={folders.length > 0} onOpenPassage={setPanel} onGo={setView} />
          )}
          {view === 'search' && <SearchView api={api} folders={folders} inputRef={searchInput} onOpenPassage={setPanel} />}
          {view === 'library' && <LibraryView api={api} folders={folders} />}
          {view === 'settings' && <SettingsView api={api} model={model} />}
        </div>
        {panel && <PassagePanel api={api} target={panel} onClose={() => setPanel(null)} />}
      </main>
    </div>
  );
}
