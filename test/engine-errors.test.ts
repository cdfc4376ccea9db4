// Models and prompts the engine cannot handle are refused with an error that names the reason.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeEach, describe, expect, it } from 'vitest';
import { Engine } from '../native-models/engine.ts';
import { ModelLoadError, PromptTooLongError } from '../native-models/errors.ts';
import { loadModelFolder } from '../native-models/model-folder.ts';

const FIXTURE = path.resolve('../shared/fixtures/tiny-llama-fp16-genai');
const root = fs.mkdtempSync(path.join(os.tmpdir(), 'quire-errors-'));
let dir: string;
let n = 0;

/** A writable copy of the fixture folder, to break one thing at a time. */
function copyFixture(): string {
  const to = path.join(root, `m${n++}`);
  fs.cpSync(FIXTURE, to, { recursive: true });
  // shared/ is read-only; the copy must be editable
  for (const f of fs.readdirSync(to)) fs.chmodSync(path.join(to, f), 0o644);
  return to;
}

function editConfig(folder: string, edit: (c: Record<string, unknown>) => void): void {
  const file = path.join(folder, 'config.json');
  const config = JSON.parse(fs.readFileSync(file, 'utf8'));
  edit(config);
  fs.writeFileSync(file, JSON.stringify(config));
}

describe('bad models and prompts', () => {
  beforeEach(() => {
    dir = copyFixture();
  });
  afterAll(() => fs.rmSync(root, { recursive: true, force: true }));

  it('a folder that does not exist', () => {
    expect(() => loadModelFolder(path.join(root, 'nope'))).toThrow(/model folder not found/);
  });

  it.each(['config.json', 'tokenizer.json'])('a folder without %s', (file) => {
    fs.rmSync(path.join(dir, file));
    expect(() => loadModelFolder(dir)).toThrow(new RegExp(`missing ${file.replace('.', '\\.')}`));
  });

  it('a folder without an ONNX file', () => {
    fs.rmSync(path.join(dir, 'model.onnx'));
    expect(() => loadModelFolder(dir)).toThrow(/no ONNX file/);
  });

  it('a config that is not JSON', () => {
    fs.writeFileSync(path.join(dir, 'config.json'), '{ not json');
    expect(() => loadModelFolder(dir)).toThrow(/config\.json is not valid JSON/);
  });

  it('a file that is not ONNX', () => {
    fs.writeFileSync(path.join(dir, 'model.onnx'), 'PK\u0003\u0004 this is a zip, not a model');
    expect(() => loadModelFolder(dir)).toThrow(/is not an ONNX model/);
  });

  it('an ONNX file that is corrupt past its header fails to load with the reason', async () => {
    const file = path.join(dir, 'model.onnx');
    fs.writeFileSync(file, fs.readFileSync(file).subarray(0, 200));
    await expect(Engine.load(dir, { provider: 'cpu' })).rejects.toThrow(ModelLoadError);
  });

  it.each([
    [{ rope_type: 'dynamic', factor: 2 }, /"dynamic" changes frequencies with sequence length/],
    [{ rope_type: 'longrope', factor: 2 }, /"longrope"/],
    [{ rope_type: 'wavy', factor: 2 }, /unknown RoPE scaling type "wavy"/],
  ])('RoPE scaling %j is refused', (scaling, message) => {
    editConfig(dir, (c) => (c.rope_scaling = scaling));
    expect(() => loadModelFolder(dir)).toThrow(message);
    expect(() => loadModelFolder(dir)).toThrow(ModelLoadError);
  });

  it.each([
    [{ model_type: 'gpt2' }, /gpt2 has no rotary position embedding/],
    [{ model_type: 'bloom' }, /bloom has no rotary/],
    [{ alibi: true }, /no rotary position embedding/],
  ])('a model without RoPE (%j) is refused', (change, message) => {
    editConfig(dir, (c) => Object.assign(c, change));
    expect(() => loadModelFolder(dir)).toThrow(message);
  });

  it('a GPT-J style config selects the interleaved RoPE layout', () => {
    editConfig(dir, (c) => (c.rope_interleaved = true));
    expect(loadModelFolder(dir).rope.layout).toBe('interleaved');
    expect(loadModelFolder(FIXTURE).rope.layout).toBe('rotate-half');
  });

  it('a prompt longer than max_position_embeddings', async () => {
    editConfig(dir, (c) => (c.max_position_embeddings = 16));
    const engine = await Engine.load(dir, { provider: 'cpu' });
    try {
      const words = Array.from({ length: 20 }, (_, i) => `word${i}`).join(' ');
      const run = engine.generate({ blocks: [], prompt: words, raw: true, maxNewTokens: 2 });
      await expect(run).rejects.toThrow(PromptTooLongError);
      await expect(engine.generate({ blocks: [], prompt: words, raw: true })).rejects.toThrow(/does not fit the model's 16 positions/);
    } finally {
      await engine.release();
    }
  });

  it('an explicitly requested provider that is missing is an error, not a silent fallback', async () => {
    await expect(Engine.load(dir, { provider: 'coreml' })).rejects.toThrow(/coreml/);
  });
});
