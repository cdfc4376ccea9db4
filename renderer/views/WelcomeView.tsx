import type { FolderView, ModelStatus } from '../../electron/contract/types.ts';
import type { RendererApi } from '../api.ts';
import { AddFolder } from './LibraryView.tsx';
import { ModelPicker } from './SettingsView.tsx';

/**
 * First run: two steps, a model and a folder. Step 1 stays on offer until a model is chosen (adding a
 * folder first does not skip it); search works before any model, so the user may go on at any time.
 */
export function WelcomeView({ api, model, folders, onDone }: { api: RendererApi; model: ModelStatus; folders: FolderView[]; onDone: () => void }) {
  const hasModel = model.ready;
  const hasFolder = folders.length > 0;
  return (
    <section className="welcome-view" aria-label="Welcome">
      <h1>Welcome to Quire</h1>
      <p>Quire answers questions about your own documents, entirely on this computer. Two steps to start:</p>
      <ol className="steps">
        <li className={hasModel ? 'step done' : 'step'} data-testid="step-model">
          <h2>
            1. Get a model {hasModel && <span className="step-done">✓ {model.name}</span>}
          </h2>
          <p>Answers need a local language model. Download the recommended one, or choose a folder that holds an ONNX model.</p>
          <ModelPicker api={api} model={model} />
        </li>
        <li className={hasFolder ? 'step done' : 'step'} data-testid="step-folder">
          <h2>
            2. Add a folder to index {hasFolder && <span className="step-done">✓ {folders.length === 1 ? folders[0].path : `${folders.length} folders`}</span>}
          </h2>
          <p>Search works as soon as a folder is indexed, even before a model is present.</p>
          <AddFolder api={api} />
        </li>
      </ol>
      <button type="button" className={hasModel && hasFolder ? 'primary' : ''} onClick={onDone}>
        {hasModel && hasFolder ? 'Start asking' : hasFolder ? 'Continue without a model (search only)' : 'Continue to the app'}
      </button>
    </section>
  );
}
