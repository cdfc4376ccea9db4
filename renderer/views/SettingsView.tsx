import { useEffect, useState } from 'react';
import { ATTENTION_MODES, PROVIDER_CHOICES, QUALITY_SETTINGS, type CatalogModel, type EventPayloads, type KvStatsView, type ModelStatus, type Settings } from '../../electron/contract/types.ts';
import type { RendererApi } from '../api.ts';

const MB = 1024 * 1024;
export const formatBytes = (n: number) => (n >= 1024 * MB ? `${(n / (1024 * MB)).toFixed(1)} GB` : `${(n / MB).toFixed(1)} MB`);

export function ModelPicker({ api, model }: { api: RendererApi; model: ModelStatus }) {
  const [dir, setDir] = useState(model.dir ?? '');
  const [catalog, setCatalog] = useState<CatalogModel[]>([]);
  const [download, setDownload] = useState<EventPayloads['model.download'] | null>(null);
  const [error, setError] = useState<string | null>(null);
  useEffect(() => {
    api.request('models.catalog', {}).then(setCatalog, () => undefined);
    return api.on('model.download', setDownload);
  }, [api]);
  const use = async () => {
    try {
      const status = await api.request('models.useFolder', { path: dir.trim() });
      setError(status.problem);
    } catch (e) {
      setError((e as Error).message);
    }
  };
  const get = async (id: string) => {
    try {
      await api.request('models.download', { modelId: id });
    } catch (e) {
      setError((e as Error).message);
    }
  };
  return (
    <div className="model-picker">
      <p role="status">
        {model.ready ? `Model ready (${model.provider ?? 'cpu'}): ${model.dir}` : `No model loaded${model.problem ? `: ${model.problem}` : ''}.`}
      </p>
      {catalog.map((m) => (
        <div key={m.id} className="catalog-row">
          <span>
            {m.name} ({formatBytes(m.sizeBytes)}){m.isDefault ? ' — recommended' : ''}
          </span>
          <button type="button" disabled={m.installed} onClick={() => void get(m.id)} aria-label={`Download ${m.name}`}>
            {m.installed ? 'Installed' : 'Download'}
          </button>
        </div>
      ))}
      {download && !download.done && (
        <progress aria-label="Model download" max={Math.max(download.totalBytes, 1)} value={download.receivedBytes} />
      )}
      {download?.error && <p className="error">{download.error}</p>}
      <form
        onSubmit={(e) => {
          e.preventDefault();
          void use();
        }}
      >
        <input aria-label="Model folder" placeholder="/path/to/an/onnx/model/folder" value={dir} onChange={(e) => setDir(e.target.value)} />
        <button type="submit" disabled={!dir.trim()}>
          Use this folder
        </button>
      </form>
      {error && <p className="error" role="alert">{error}</p>}
    </div>
  );
}

/** A byte size edited in whole megabytes. */
function MegabytesField({ label, minMb, bytes, onChange }: { label: string; minMb: number; bytes: number; onChange: (bytes: number) => void }) {
  return (
    <label>
      {label}
      <input type="number" min={minMb} value={Math.round(bytes / MB)} onChange={(e) => onChange(Math.max(minMb, Number(e.target.value)) * MB)} />
    </label>
  );
}

export function SettingsView({ api, model }: { api: RendererApi; model: ModelStatus }) {
  const [settings, setSettings] = useState<Settings | null>(null);
  const [kv, setKv] = useState<KvStatsView | null>(null);
  const [saved, setSaved] = useState<string | null>(null);
  useEffect(() => {
    api.request('settings.get', {}).then(setSettings, () => undefined);
    api.request('kv.stats', {}).then(setKv, () => undefined);
  }, [api]);
  if (!settings) return <p>Loading settings…</p>;
  const set = (patch: Partial<Settings>) => setSettings({ ...settings, ...patch });
  const save = async () => {
    try {
      const { modelDir: _ignored, ...rest } = settings;
      setSettings(await api.request('settings.set', rest));
      setSaved('Saved.');
    } catch (e) {
      setSaved((e as Error).message);
    }
  };
  return (
    <section className="settings-view" aria-label="Settings">
      <h2>Settings</h2>
      <fieldset>
        <legend>Model</legend>
        <ModelPicker api={api} model={model} />
      </fieldset>
      <form
        onSubmit={(e) => {
          e.preventDefault();
          void save();
        }}
      >
        <label>
          Provider
          <select value={settings.provider} onChange={(e) => set({ provider: e.target.value as Settings['provider'] })}>
            {PROVIDER_CHOICES.map((p) => (
              <option key={p}>{p}</option>
            ))}
          </select>
        </label>
        <MegabytesField label="KV budget (MB)" minMb={16} bytes={settings.kvBudgetBytes} onChange={(kvBudgetBytes) => set({ kvBudgetBytes })} />
        <p className="note" data-testid="kv-usage">
          {kv ? `In use: ${formatBytes(kv.bytes)} in ${kv.entries} blocks` : ''}
        </p>
        <MegabytesField label="Chat memory (MB)" minMb={0} bytes={settings.chatKvBytes} onChange={(chatKvBytes) => set({ chatKvBytes })} />
        <p className="note">Follow-ups reuse a chat's KV kept in memory; past this, the least recently used chats start over.</p>
        <label>
          Passage size (tokens)
          <input type="number" min={32} max={2048} value={settings.passageTokens} onChange={(e) => set({ passageTokens: Number(e.target.value) })} />
        </label>
        <label>
          Passages per question (k)
          <input type="number" min={1} max={32} value={settings.k} onChange={(e) => set({ k: Number(e.target.value) })} />
        </label>
        <label>
          <input type="checkbox" checked={settings.eagerPrefill} onChange={(e) => set({ eagerPrefill: e.target.checked })} />
          Prefill passage KV in the background (newest documents first, within the budget)
        </label>
        <label>
          Attention mode
          <select value={settings.mode} onChange={(e) => set({ mode: e.target.value as Settings['mode'] })}>
            {ATTENTION_MODES.map((m) => (
              <option key={m}>{m}</option>
            ))}
          </select>
        </label>
        <label>
          Quality mode
          <select value={settings.quality} onChange={(e) => set({ quality: e.target.value as Settings['quality'] })}>
            {QUALITY_SETTINGS.map((m) => (
              <option key={m}>{m}</option>
            ))}
          </select>
        </label>
        <button type="submit">Save settings</button>
        {saved && <span role="status"> {saved}</span>}
      </form>
    </section>
  );
}
