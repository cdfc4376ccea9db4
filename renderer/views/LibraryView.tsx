import { useState, type DragEvent } from 'react';
import type { FileView, FolderView } from '../../electron/contract/types.ts';
import type { RendererApi } from '../api.ts';
import { ProgressBar } from '../components/ProgressBar.tsx';

const STATE_LABEL: Record<FolderView['state'], string> = {
  queued: 'Queued',
  scanning: 'Scanning',
  parsing: 'Parsing',
  prefilling: 'Preparing answers (KV prefill)',
  paused: 'Paused',
  done: 'Done',
  error: 'Stopped with an error',
};

function FolderCard({ api, folder }: { api: RendererApi; folder: FolderView }) {
  const [problems, setProblems] = useState<FileView[] | null>(null);
  const busy = ['queued', 'scanning', 'parsing', 'prefilling'].includes(folder.state);
  const act = (p: Promise<unknown>) => void p.catch(() => undefined);
  const showProblems = async () => setProblems(problems ? null : await api.request('folders.files', { folderId: folder.id, problemsOnly: true }));
  return (
    <li className="folder-card" aria-label={`Folder ${folder.path}`}>
      <div className="folder-head">
        <strong className="folder-path">{folder.path}</strong>
        <span className={`state state-${folder.state}`} data-testid="folder-state">
          {STATE_LABEL[folder.state]}
        </span>
      </div>
      <ProgressBar label="Parsing" progress={folder.parse} />
      <ProgressBar label="KV prefill" progress={folder.prefill} />
      <p className="folder-counts">
        {folder.indexed} indexed · {folder.passages} passages · {folder.skipped} skipped · {folder.failed} failed
      </p>
      {folder.error && <p className="error" role="alert">{folder.error}</p>}
      <div className="actions">
        {busy ? (
          <button type="button" onClick={() => act(api.request('folders.pause', { folderId: folder.id }))}>
            Pause
          </button>
        ) : folder.state === 'paused' ? (
          <button type="button" onClick={() => act(api.request('folders.resume', { folderId: folder.id }))}>
            Resume
          </button>
        ) : (
          <button type="button" onClick={() => act(api.request('folders.reindex', { folderId: folder.id }))}>
            Re-index
          </button>
        )}
        {folder.failed + folder.skipped > 0 && (
          <button type="button" aria-expanded={problems !== null} onClick={() => void showProblems()}>
            {problems ? 'Hide' : 'Show'} files not indexed
          </button>
        )}
        <button type="button" className="danger" onClick={() => act(api.request('folders.remove', { folderId: folder.id }))}>
          Remove
        </button>
      </div>
      {problems && (
        <ul className="problems" aria-label="Files not indexed">
          {problems.map((p) => (
            <li key={p.path}>
              <span className="problem-status">{p.status}</span> {p.path}: {p.error ?? 'no reason recorded'}
            </li>
          ))}
        </ul>
      )}
    </li>
  );
}

export function AddFolder({ api, onAdded }: { api: RendererApi; onAdded?: () => void }) {
  const [path, setPath] = useState('');
  const [error, setError] = useState<string | null>(null);
  const add = async (p: string) => {
    if (!p.trim()) return;
    try {
      await api.request('folders.add', { path: p.trim() });
      setPath('');
      setError(null);
      onAdded?.();
    } catch (e) {
      setError((e as Error).message);
    }
  };
  const browse = async () => {
    const r = await api.request('host.pickFolder', {});
    if (r.path) await add(r.path);
  };
  const onDrop = (e: DragEvent) => {
    e.preventDefault();
    const file = e.dataTransfer.files[0];
    const dropped = file && api.pathForFile?.(file);
    if (dropped) void add(dropped);
    else setError('Drop a folder from your file manager (in the desktop app), or type its path.');
  };
  return (
    <div className="add-folder" onDragOver={(e) => e.preventDefault()} onDrop={onDrop} aria-label="Add a folder">
      <form
        onSubmit={(e) => {
          e.preventDefault();
          void add(path);
        }}
      >
        <input aria-label="Folder path" placeholder="/path/to/your/notes" value={path} onChange={(e) => setPath(e.target.value)} />
        <button type="submit" disabled={!path.trim()}>
          Add folder
        </button>
        {api.host === 'electron' && (
          <button type="button" onClick={() => void browse()}>
            Browse…
          </button>
        )}
      </form>
      <p className="note">{api.host === 'electron' ? 'Or drop a folder here.' : 'Type the path of a folder on this computer.'}</p>
      {error && <p className="error" role="alert">{error}</p>}
    </div>
  );
}

export function LibraryView({ api, folders }: { api: RendererApi; folders: FolderView[] }) {
  return (
    <section className="library-view" aria-label="Library">
      <h2>Library</h2>
      <AddFolder api={api} />
      {folders.length === 0 ? (
        <div className="empty-state">
          <p>No folders yet. Add one: Quire reads Markdown, text, HTML, PDF, Word and code files, all on this computer.</p>
        </div>
      ) : (
        <ul className="folders">
          {folders.map((f) => (
            <FolderCard key={f.id} api={api} folder={f} />
          ))}
        </ul>
      )}
    </section>
  );
}
