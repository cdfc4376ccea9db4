// An independent generation loop: transformers.js (its own tokenizer, KV handling and greedy search,
// over the same onnxruntime-node) must produce our full-mode greedy tokens, token for token.
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AutoModelForCausalLM, AutoTokenizer, env, Tensor } from '@huggingface/transformers';
import { Engine } from '../native-models/engine.ts';
import { tinySpec } from './tools/tiny-model-spec.ts';
import { makeModelDir, removeDir, SAMPLE_TEXTS } from './helpers/models.ts';

describe('full mode matches transformers.js greedy generation', () => {
  let dir: string;
  beforeAll(async () => {
    // qwen2 with GQA and biases, float16 KV: the common shape of downloadable small models
    dir = await makeModelDir(tinySpec({ seed: 21, arch: 'qwen2', kvDtype: 'float16', addBos: false }));
    env.allowRemoteModels = false;
    env.localModelPath = path.dirname(dir);
  });
  afterAll(() => removeDir(dir));

  it('produces the same tokens for the same prompt', async () => {
    const maxNewTokens = 24;
    const engine = await Engine.load(dir, { provider: 'cpu' });
    const ours = await engine.generate({ blocks: [], prompt: SAMPLE_TEXTS[0], raw: true, mode: 'full', maxNewTokens });
    await engine.release();

    const id = path.basename(dir);
    const tokenizer = await AutoTokenizer.from_pretrained(id);
    const model = await AutoModelForCausalLM.from_pretrained(id, { dtype: 'fp32', device: 'cpu', use_external_data_format: true });
    const ids = tokenizer.encode(SAMPLE_TEXTS[0]);
    expect(ids).toEqual(ours.promptTokenIds);
    const input = new Tensor('int64', BigInt64Array.from(ids, BigInt), [1, ids.length]);
    const output = (await model.generate({
      input_ids: input,
      attention_mask: new Tensor('int64', new BigInt64Array(ids.length).fill(1n), [1, ids.length]),
      max_new_tokens: maxNewTokens,
      do_sample: false,
    })) as Tensor;
    await model.dispose();
    const theirs = Array.from(output.data as BigInt64Array, Number).slice(ids.length);
    // transformers.js keeps the EOS it stopped on; we report it as the stop reason instead
    const eos = engine.stopTokenIds;
    const trimmed = eos.includes(theirs[theirs.length - 1]) ? theirs.slice(0, -1) : theirs;
    expect(ours.tokenIds).toEqual(trimmed);
    expect(ours.tokenIds.length).toBeGreaterThan(4);
  });
});
