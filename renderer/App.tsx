import { useCallback, useEffect, useRef, useState } from 'react';
import type { AppInfo, EventPayloads, FolderView, ModelStatus } from '../electron/contract/types.ts';
import type { RendererApi } from './api.ts';
import { PassagePanel, type PassageRef } from './components/PassagePanel.tsx';
import { Spinner } from './components/Spinner.tsx';
import { ChatView } from './views/ChatView.tsx';
import { LibraryView, type SettingName } from './views/LibraryView.tsx';
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

/** Set once the user leaves the welcome view without a model (it is not shown again then). */
const WELCOME_DONE_KEY = 'quire.welcomeDone';

function welcomeDone(): boolean {
  try {
    return localStorage.getItem(WELCOME_DONE_KEY) === '1';
  } catch {
    return false;
  }
}

/** The header's model badge: its name, a spinner while it loads; the provider and why in the tooltip. */
function ModelBadge({ model, onClick }: { model: ModelStatus; onClick: () => void }) {
  const tooltip = model.ready ? [model.dir, model.provider && `runs on ${model.provider}`, model.providerReason].filter(Boolean).join('\n') : (model.problem ?? undefined);
  return (
    <button type="button" className="model-badge" aria-label="Model status" title={tooltip} onClick={onClick} data-state={model.loading ? 'loading' : model.ready ? 'ready' : 'none'}>
      {model.loading && <Spinner label="Loading the model" />}
      <span role="status">{model.loading ? `Loading ${model.name ?? 'model'}…` : model.ready ? (model.name ?? 'Model ready') : 'No model'}</span>
    </button>
  );
}

export function App({ api, initialView }: { api: RendererApi; initialView?: ViewName }) {
  const [info, setInfo] = useState<AppInfo | null>(null);
  const [problem, setProblem] = useState<string | null>(null);
  const [model, setModel] = useState<ModelStatus | null>(null);
  const [folders, setFolders] = useState<FolderView[]>([]);
  const [view, setView] = useState<ViewName | null>(initialView ?? null);
  const [panel, setPanel] = useState<PassageRef | null>(null);
  const [settingsFocus, setSettingsFocus] = useState<SettingName | null>(null);
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
        setModel((m) => m ?? i.model);
        // first run: the welcome view, until a model is chosen (or the user goes on without one)
        setView((v) => v ?? (i.model.dir === null && !welcomeDone() ? null : 'chat'));
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

  const closePanel = useCallback(() => setPanel(null), []);
  const goToSetting = useCallback((setting: SettingName) => {
    setSettingsFocus(setting);
    setView('settings');
  }, []);
  const go = useCallback((v: ViewName) => {
    setSettingsFocus(null);
    setView(v);
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
  if (view === null) {
    return (
      <WelcomeView
        api={api}
        model={model}
        folders={folders}
        onDone={() => {
          if (!model.ready) {
            try {
              localStorage.setItem(WELCOME_DONE_KEY, '1');
            } catch {
              // not remembered: the welcome view shows again at the next start
            }
          }
          setView(folders.length > 0 && !model.ready ? 'library' : 'chat');
        }}
      />
    );
  }

  return (
    <div className="app">
      <nav className="tabs" aria-label="Views">
        <span className="brand">Quire</span>
        {VIEWS.map((v) => (
          <button key={v.name} type="button" aria-current={view === v.name ? 'page' : undefined} onClick={() => go(v.name)}>
            {v.label}
          </button>
        ))}
        <ModelBadge model={model} onClick={() => goToSetting('model')} />
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
          {/* the chat stays mounted: an answer keeps streaming, and the chat stays open, while another view is shown */}
          <div hidden={view !== 'chat'} className="view-page">
            <ChatView api={api} modelReady={model.ready} folders={folders} onOpenPassage={setPanel} onGo={go} />
          </div>
          {view === 'search' && <SearchView api={api} folders={folders} inputRef={searchInput} onOpenPassage={setPanel} />}
          {view === 'library' && <LibraryView api={api} folders={folders} onSettings={goToSetting} />}
          {view === 'settings' && <SettingsView api={api} model={model} focus={settingsFocus} />}
        </div>
        {panel && <PassagePanel api={api} target={panel} onClose={closePanel} />}
      </main>
    </div>
  );
}
