import { useState, type DragEvent } from 'react';
import type { FileView, FolderView, PrefillLimit } from '../../electron/contract/types.ts';
import type { RendererApi } from '../api.ts';
import { ConfirmButton } from '../components/ConfirmButton.tsx';
import { KvCoverage } from '../components/KvCoverage.tsx';
import { ProgressBar } from '../components/ProgressBar.tsx';
import { basename, formatBytes, formatCount, formatEta } from '../format.ts';

const STATE_LABEL: Record<FolderView['state'], string> = {
  queued: 'Queued',
  scanning: 'Scanning',
  parsing: 'Parsing',
  prefilling: 'Preparing answers (KV prefill)',
  paused: 'Paused',
  done: 'Done',
  error: 'Stopped with an error',
};

/** Where the Library sends the user to change a setting. */
export type SettingName = 'kvBudgetBytes' | 'eagerPrefill' | 'model';

/** The file being parsed and the time left, in one line. */
function ParsingLine({ folder }: { folder: FolderView }) {
  if (folder.state !== 'parsing' && folder.state !== 'scanning') return null;
  const eta = folder.state === 'parsing' ? formatEta(folder.parse.etaMs) : '';
  const file = folder.currentFile ? relativeTo(folder.path, folder.currentFile) : null;
  return (
    <p className="current-file" data-testid="current-file" title={folder.currentFile ?? undefined}>
      {folder.state === 'scanning' ? 'Looking for files…' : file ? `Reading ${file}` : 'Reading files'}
      {eta && ` · ${eta}`}
    </p>
  );
}

/** Why the KV prefill covers fewer passages than were indexed, and where to change that. */
function PrefillLine({ folder, onSettings }: { folder: FolderView; onSettings: (setting: SettingName) => void }) {
  const limit: PrefillLimit | null = folder.prefillLimit;
  if (!limit || folder.passages === 0) return null;
  const left = formatCount(limit.passagesLeft);
  const link = (label: string, setting: SettingName) => (
    <button type="button" className="link" onClick={() => onSettings(setting)}>
      {label}
    </button>
  );
  return (
    <p className="prefill-line" data-testid="prefill-line">
      {limit.reason === 'kv-budget' && (
        <>
          {left} of {formatCount(folder.passages)} passages have no stored KV: the KV budget ({formatBytes(limit.budgetBytes)}) is full. They still
          answer, a little slower the first time (their KV is computed then). {link('Change the KV budget', 'kvBudgetBytes')}
        </>
      )}
      {limit.reason === 'no-model' && <>No KV prefill yet: it starts as soon as a model is chosen. {link('Choose a model', 'model')}</>}
      {limit.reason === 'eager-off' && (
        <>Background prefill is off: passages get their KV when a question first uses them. {link('Turn it on', 'eagerPrefill')}</>
      )}
    </p>
  );
}

/** A reason without its details ("too large (3.1 MB > 50 MB cap)" -> "too large"), to group files by. */
export function reasonGroup(reason: string | null): string {
  if (!reason) return 'no reason recorded';
  return reason.replace(/\s*\(.*$/, '').split(':')[0].trim() || reason;
}

function relativeTo(root: string, file: string): string {
  return file.startsWith(root) ? file.slice(root.length).replace(/^[\\/]+/, '') : file;
}

/** The files not indexed, grouped by reason (largest group first), each file with its detail. */
function ProblemList({ root, files }: { root: string; files: FileView[] }) {
  const groups = new Map<string, FileView[]>();
  for (const f of files) groups.set(reasonGroup(f.error), [...(groups.get(reasonGroup(f.error)) ?? []), f]);
  if (files.length === 0) return <p className="note">Every file was indexed.</p>;
  return (
    <div className="problems" aria-label="Files not indexed" role="group">
      {[...groups]
        .sort((a, b) => b[1].length - a[1].length)
        .map(([reason, group]) => (
          <details key={reason} open={files.length <= 20}>
            <summary>
              {reason} <span className="note">({group.length} file{group.length === 1 ? '' : 's'}, {group[0].status})</span>
            </summary>
            <ul>
              {group.map((f) => (
                <li key={f.path} title={f.path}>
                  {relativeTo(root, f.path)}
                  {f.error && reasonGroup(f.error) !== f.error && <span className="note"> — {f.error}</span>}
                </li>
              ))}
            </ul>
          </details>
        ))}
    </div>
  );
}

function FolderCard({ api, folder, onSettings }: { api: RendererApi; folder: FolderView; onSettings: (setting: SettingName) => void }) {
  const [problems, setProblems] = useState<FileView[] | null>(null);
  const [error, setError] = useState<string | null>(null);
  const busy = ['queued', 'scanning', 'parsing', 'prefilling'].includes(folder.state);
  const act = (p: Promise<unknown>) => void p.catch((e: Error) => setError(e.message));
  const showProblems = async () => setProblems(problems ? null : await api.request('folders.files', { folderId: folder.id, problemsOnly: true }));
  return (
    <li className="folder-card" aria-label={`Folder ${folder.path}`}>
      <div className="folder-head">
        <strong className="folder-path" title={folder.path}>
          {folder.path}
        </strong>
        <span className={`state state-${folder.state}`} data-testid="folder-state">
          {STATE_LABEL[folder.state]}
        </span>
      </div>
      <ParsingLine folder={folder} />
      <ProgressBar label="Parsing" progress={folder.parse} showEta={folder.state === 'parsing'} />
      <ProgressBar label="KV prefill" progress={folder.prefill} showEta={folder.state === 'prefilling'} />
      <KvCoverage api={api} folder={folder} />
      <PrefillLine folder={folder} onSettings={onSettings} />
      <p className="folder-counts">
        {formatCount(folder.indexed)} indexed · {formatCount(folder.passages)} passages · {formatCount(folder.skipped)} skipped ·{' '}
        {formatCount(folder.failed)} failed
      </p>
      {folder.error && (
        <p className="error" role="alert">
          {folder.error}
        </p>
      )}
      {error && (
        <p className="error" role="alert">
          {error}
        </p>
      )}
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
        <ConfirmButton
          label="Remove"
          question={`Remove ${basename(folder.path)} from Quire? Its index goes; your files stay.`}
          confirmLabel="Remove folder"
          onConfirm={() => act(api.request('folders.remove', { folderId: folder.id }))}
        />
      </div>
      {problems && <ProblemList root={folder.path} files={problems} />}
    </li>
  );
}

export function AddFolder({ api, onAdded }: { api: RendererApi; onAdded?: (path: string) => void }) {
  const [path, setPath] = useState('');
  const [error, setError] = useState<string | null>(null);
  const add = async (p: string) => {
    if (!p.trim()) return;
    try {
      const folder = await api.request('folders.add', { path: p.trim() });
      setPath('');
      setError(null);
      onAdded?.(folder.path);
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
        <input aria-label="Folder path" placeholder="/home/you/notes (a full path)" value={path} onChange={(e) => setPath(e.target.value)} />
        <button type="submit" disabled={!path.trim()}>
          Add folder
        </button>
        {api.host === 'electron' && (
          <button type="button" onClick={() => void browse()}>
            Browse…
          </button>
        )}
      </form>
      <p className="note">{api.host === 'electron' ? 'Or drop a folder here.' : 'Type the full path of a folder on this computer.'}</p>
      {error && (
        <p className="error" role="alert">
          {error}
        </p>
      )}
    </div>
  );
}

export function LibraryView({ api, folders, onSettings }: { api: RendererApi; folders: FolderView[]; onSettings: (setting: SettingName) => void }) {
  return (
    <section className="library-view" aria-label="Library">
      <h2>Library</h2>
      <AddFolder api={api} />
      {folders.length === 0 ? (
        <div className="empty-state">
          <p>No folders yet. Add one: Quire reads Markdown, text, HTML, PDF, Word, code and gzip-compressed text (man pages), all on this computer.</p>
        </div>
      ) : (
        <ul className="folders">
          {folders.map((f) => (
            <FolderCard key={f.id} api={api} folder={f} onSettings={onSettings} />
          ))}
        </ul>
      )}
    </section>
  );
}
