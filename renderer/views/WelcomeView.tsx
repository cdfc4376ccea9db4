import type { ModelStatus } from '../../electron/contract/types.ts';
import type { RendererApi } from '../api.ts';
import { AddFolder } from './LibraryView.tsx';
import { ModelPicker } from './SettingsView.tsx';

/** First run: no model yet. Offers the model and a folder; search works before any model. */
export function WelcomeView({ api, model, onDone }: { api: RendererApi; model: ModelStatus; onDone: () => void }) {
  return (
    <section className="welcome-view" aria-label="Welcome">
      <h1>Welcome to Quire</h1>
      <p>Quire answers questions about your own documents, entirely on this computer. Two steps to start:</p>
      <ol className="steps">
        <li>
          <h2>1. Get a model</h2>
          <p>Answers need a local language model. Download the recommended one, or choose a folder that holds an ONNX model.</p>
          <ModelPicker api={api} model={model} />
        </li>
        <li>
          <h2>2. Add a folder to index</h2>
          <p>Search works as soon as a folder is indexed, even before a model is present.</p>
          <AddFolder api={api} onAdded={onDone} />
        </li>
      </ol>
      <button type="button" onClick={onDone}>
        Continue to the app
      </button>
    </section>
  );
}
