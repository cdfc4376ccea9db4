import { useEffect, useRef, useState, type ReactNode } from 'react';
import {
  ATTENTION_MODES,
  PROVIDER_CHOICES,
  QUALITY_SETTINGS,
  SYSTEM_PROMPT_MAX_CHARS,
  type CatalogModel,
  type EventPayloads,
  type KvStatsView,
  type ModelStatus,
  type Settings,
} from '../../electron/contract/types.ts';
import type { RendererApi } from '../api.ts';
import { formatBytes } from '../format.ts';

const MB = 1024 * 1024;

/** What each quality mode does, in a sentence. */
const QUALITY_HELP: Record<Settings['quality'], string> = {
  auto: 'Quire picks: isolated for models trained for block attention, shared prefix for the rest.',
  'shared-prefix': 'Each passage is prepared after the instructions, as in a normal prompt: better answers from ordinary models.',
  isolated: 'Each passage is prepared on its own, as block-attention models are trained: the method’s own form.',
};

const ATTENTION_HELP: Record<Settings['mode'], string> = {
  block: 'Reuses each passage’s stored KV: answers start in milliseconds.',
  full: 'Recomputes the whole prompt for every question: slow, the reference to compare with.',
};

export function ModelPicker({ api, model }: { api: RendererApi; model: ModelStatus }) {
  const [dir, setDir] = useState(model.dir ?? '');
  const [catalog, setCatalog] = useState<CatalogModel[]>([]);
  const [download, setDownload] = useState<EventPayloads['model.download'] | null>(null);
  const [error, setError] = useState<string | null>(null);
  useEffect(() => {
    api.request('models.catalog', {}).then(setCatalog, () => undefined);
    return api.on('model.download', (d) => {
      setDownload(d);
      if (d.done && !d.error) api.request('models.catalog', {}).then(setCatalog, () => undefined);
    });
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
    setError(null);
    try {
      await api.request('models.download', { modelId: id });
    } catch (e) {
      setError((e as Error).message);
    }
  };
  const downloading = download !== null && !download.done;
  const failed = download?.done && download.error ? download : null;
  return (
    <div className="model-picker">
      <p role="status" data-testid="model-state">
        {model.loading
          ? `Loading ${model.name ?? 'the model'}…`
          : model.ready
            ? `Model ready: ${model.name ?? model.dir} (${model.provider ?? 'cpu'})`
            : `No model loaded${model.problem ? `: ${model.problem}` : ''}.`}
      </p>
      {catalog.map((m) => (
        <div key={m.id} className="catalog-row">
          <span>
            {m.name} ({formatBytes(m.sizeBytes)}){m.isDefault ? ' — recommended' : ''}
          </span>
          <button type="button" disabled={m.installed || downloading} onClick={() => void get(m.id)} aria-label={`Download ${m.name}`}>
            {m.installed ? 'Installed' : downloading && download?.modelId === m.id ? 'Downloading…' : 'Download'}
          </button>
        </div>
      ))}
      {downloading && (
        <div className="download-progress">
          <progress aria-label="Model download" max={Math.max(download.totalBytes, 1)} value={download.receivedBytes} />
          <span className="note">
            {formatBytes(download.receivedBytes)} of {formatBytes(download.totalBytes)}
          </span>
        </div>
      )}
      {failed && (
        <p className="error" role="alert">
          The download stopped: {failed.error}.{' '}
          <button type="button" onClick={() => void get(failed.modelId)}>
            Retry
          </button>{' '}
          <span className="note">(it goes on from where it stopped)</span>
        </p>
      )}
      <form
        onSubmit={(e) => {
          e.preventDefault();
          void use();
        }}
      >
        <input aria-label="Model folder" placeholder="/full/path/to/an/onnx/model/folder" value={dir} onChange={(e) => setDir(e.target.value)} />
        <button type="submit" disabled={!dir.trim()}>
          Use this folder
        </button>
      </form>
      {error && (
        <p className="error" role="alert">
          {error}
        </p>
      )}
    </div>
  );
}

/** A labelled setting with one line of help under it (the field's accessible description). */
function Field({ id, label, help, children }: { id: string; label: string; help: ReactNode; children: (describedBy: string) => ReactNode }) {
  return (
    <div className="field">
      <label htmlFor={id}>{label}</label>
      {children(`${id}-help`)}
      <p className="help" id={`${id}-help`}>
        {help}
      </p>
    </div>
  );
}

type NumberSetting = 'temperature' | 'maxAnswerTokens' | 'k' | 'kvBudgetBytes' | 'chatKvBytes' | 'passageTokens' | 'apiPort';

/** A number setting; `unit` scales what is shown (megabytes for byte sizes). */
function NumberField(props: {
  name: NumberSetting;
  label: string;
  help: ReactNode;
  settings: Settings;
  set: (patch: Partial<Settings>) => void;
  min: number;
  max?: number;
  step?: number;
  unit?: number;
}) {
  const { name, settings, set, min, max, step, unit = 1 } = props;
  const shown = unit === 1 ? settings[name] : Math.round(settings[name] / unit);
  return (
    <Field id={`setting-${name}`} label={props.label} help={props.help}>
      {(d) => (
        <input
          id={`setting-${name}`}
          aria-describedby={d}
          type="number"
          min={min}
          max={max}
          step={step}
          value={shown}
          onChange={(e) => {
            const typed = Math.max(min, Math.min(max ?? Infinity, Number(e.target.value)));
            set({ [name]: step ? typed : Math.round(typed) * unit });
          }}
        />
      )}
    </Field>
  );
}

type SwitchSetting = 'eagerPrefill' | 'apiServer';

/** An on/off setting: the checkbox with its label, one line of help under it. */
function CheckboxField(props: { name: SwitchSetting; label: string; help: ReactNode; settings: Settings; set: (patch: Partial<Settings>) => void }) {
  const { name, settings, set } = props;
  const id = `setting-${name}`;
  return (
    <div className="field">
      <label className="checkbox">
        <input id={id} type="checkbox" aria-describedby={`${id}-help`} checked={settings[name]} onChange={(e) => set({ [name]: e.target.checked })} />
        {props.label}
      </label>
      <p className="help" id={`${id}-help`}>
        {props.help}
      </p>
    </div>
  );
}

type ChoiceSetting = 'provider' | 'mode' | 'quality';

function SelectField<N extends ChoiceSetting>(props: {
  name: N;
  label: string;
  help: ReactNode;
  options: readonly Settings[N][];
  settings: Settings;
  set: (patch: Partial<Settings>) => void;
}) {
  const { name, settings, set } = props;
  return (
    <Field id={`setting-${name}`} label={props.label} help={props.help}>
      {(d) => (
        <select id={`setting-${name}`} aria-describedby={d} value={settings[name]} onChange={(e) => set({ [name]: e.target.value as Settings[N] })}>
          {props.options.map((o) => (
            <option key={o}>{o}</option>
          ))}
        </select>
      )}
    </Field>
  );
}

export function SettingsView({ api, model, focus }: { api: RendererApi; model: ModelStatus; focus?: string | null }) {
  const [settings, setSettings] = useState<Settings | null>(null);
  const [kv, setKv] = useState<KvStatsView | null>(null);
  const [saved, setSaved] = useState<string | null>(null);
  const focused = useRef(false);
  useEffect(() => {
    api.request('settings.get', {}).then(setSettings, () => undefined);
    api.request('kv.stats', {}).then(setKv, () => undefined);
  }, [api]);
  // the Library's "change the KV budget" link lands on that field
  useEffect(() => {
    if (!settings || !focus || focused.current) return;
    focused.current = true;
    const el = document.getElementById(`setting-${focus}`);
    el?.scrollIntoView?.({ block: 'center' });
    el?.focus();
  }, [settings, focus]);
  if (!settings) return <p>Loading settings…</p>;
  const set = (patch: Partial<Settings>) => {
    setSettings({ ...settings, ...patch });
    setSaved(null);
  };
  const save = async () => {
    try {
      const { modelDir: _ignored, ...rest } = settings;
      setSettings(await api.request('settings.set', rest));
      setSaved('Saved.');
      api.request('kv.stats', {}).then(setKv, () => undefined);
    } catch (e) {
      setSaved((e as Error).message);
    }
  };
  const common = { settings, set };
  return (
    <section className="settings-view" aria-label="Settings">
      <h2>Settings</h2>
      <fieldset id="setting-model" tabIndex={-1}>
        <legend>Model</legend>
        <ModelPicker api={api} model={model} />
      </fieldset>
      {/* noValidate: the engine validates (and says what is wrong); fields clamp what they can as typed */}
      <form
        noValidate
        onSubmit={(e) => {
          e.preventDefault();
          void save();
        }}
      >
        <fieldset>
          <legend>Answers</legend>
          <NumberField
            {...common}
            name="temperature"
            label="Temperature"
            min={0}
            max={2}
            step={0.1}
            help="0 gives the same answer to the same question every time; higher values (up to 2) vary the wording, and invent more."
          />
          <NumberField
            {...common}
            name="maxAnswerTokens"
            label="Max answer length (tokens)"
            min={16}
            max={8192}
            help="An answer stops after this many tokens (a token is about ¾ of an English word)."
          />
          <Field
            id="setting-systemPrompt"
            label="System prompt (optional)"
            help="Replaces Quire’s own instruction to the model. It is part of every prompt’s first block, so changing it prepares the stored passages’ KV again (in the background)."
          >
            {(d) => (
              <textarea
                id="setting-systemPrompt"
                aria-describedby={d}
                rows={3}
                maxLength={SYSTEM_PROMPT_MAX_CHARS}
                placeholder="You are an intelligent AI assistant. Please answer questions based on the user's instructions."
                value={settings.systemPrompt}
                onChange={(e) => set({ systemPrompt: e.target.value })}
              />
            )}
          </Field>
          <NumberField
            {...common}
            name="k"
            label="Passages per question"
            min={1}
            max={32}
            help="How many passages a question reads: more finds more, but makes the prompt longer."
          />
        </fieldset>
        <fieldset>
          <legend>Speed and memory</legend>
          <NumberField
            {...common}
            name="kvBudgetBytes"
            label="KV budget (MB)"
            min={16}
            unit={MB}
            help={
              <>
                Disk space for passages’ precomputed model states (KV). Passages with stored KV answer at once; the rest are computed the first
                time a question uses them. Background prefill fills its free room, never pushing out blocks questions use.{' '}
                <span data-testid="kv-usage">{kv ? `In use: ${formatBytes(kv.bytes)} in ${kv.entries} blocks.` : ''}</span>
              </>
            }
          />
          <CheckboxField
            {...common}
            name="eagerPrefill"
            label="Prepare passages ahead of questions (background KV prefill)"
            help="From the moment a model is chosen, between questions: first what your last question will likely need next, then recently changed documents, the folders you ask about, then the rest."
          />
          <NumberField
            {...common}
            name="chatKvBytes"
            label="Chat memory (MB)"
            min={0}
            unit={MB}
            help="Follow-ups reuse a chat’s KV kept in memory; past this, the least recently used chats start over."
          />
          <NumberField
            {...common}
            name="passageTokens"
            label="Passage size (tokens)"
            min={32}
            max={2048}
            help="How long each indexed passage is; applies to the next indexing."
          />
        </fieldset>
        <fieldset>
          <legend>Engine</legend>
          <SelectField
            {...common}
            name="provider"
            label="Provider"
            options={PROVIDER_CHOICES}
            help="Where the model runs: auto uses a GPU only when it is faster than the CPU on this model."
          />
          <SelectField {...common} name="mode" label="Attention mode" options={ATTENTION_MODES} help={ATTENTION_HELP[settings.mode]} />
          <SelectField {...common} name="quality" label="Quality mode" options={QUALITY_SETTINGS} help={QUALITY_HELP[settings.quality]} />
        </fieldset>
        <fieldset>
          <legend>Other apps</legend>
          <CheckboxField
            {...common}
            name="apiServer"
            label="Local OpenAI-compatible API"
            help="Editors, note apps and scripts that speak OpenAI’s API can ask your library, from this computer only (127.0.0.1), with the key below."
          />
          {settings.apiServer && (
            <>
              <NumberField
                {...common}
                name="apiPort"
                label="API port"
                min={1}
                max={65535}
                help={`Clients use the base URL http://127.0.0.1:${settings.apiPort}/v1.`}
              />
              <Field id="setting-apiKey" label="API key" help="Clients send it as “Authorization: Bearer KEY”. It is kept in the app’s settings file.">
                {(d) => (
                  <input
                    id="setting-apiKey"
                    aria-describedby={d}
                    readOnly
                    placeholder="made when you save"
                    value={settings.apiKey}
                    onFocus={(e) => e.target.select()}
                  />
                )}
              </Field>
            </>
          )}
        </fieldset>
        <div className="save-row">
          <button type="submit">Save settings</button>
          {saved && <span role="status"> {saved}</span>}
        </div>
      </form>
    </section>
  );
}
