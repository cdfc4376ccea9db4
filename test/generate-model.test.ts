import { mkdtemp, readFile, rm, stat } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import ort from 'onnxruntime-node';
import { Tokenizer } from '@huggingface/tokenizers';
import { AutoTokenizer, env } from '@huggingface/transformers';
import { generateModel } from './tools/generate-model.ts';
import { causalMask, referenceForward } from './tools/reference.ts';
import { buildWeights, specToHfConfig, tinySpec, type TinyModelSpec } from './tools/tiny-model-spec.ts';
import { maxAbsDiff } from './helpers/compare.ts';

/**
 * Qwen2 style: attention biases, GQA (4 query heads per KV head), half of each head rotating, llama3
 * scaling, tied head, no BOS.
 */
const qwenVariant = tinySpec({
  arch: 'qwen2',
  seed: 7,
  heads: 4,
  kvHeads: 1,
  partialRotaryFactor: 0.5,
  // with rotaryDim 8 the wavelengths are 6.3, 63, 628, 6283: one is kept, one smoothed, two divided
  ropeScaling: {
    rope_type: 'llama3',
    factor: 8,
    low_freq_factor: 1,
    high_freq_factor: 4,
    original_max_position_embeddings: 64,
  },
  tieWordEmbeddings: true,
  addBos: false,
});

/** One KV head per query head, and yarn scaling: the only scaling whose attention factor is not 1 (here 1.139). */
const yarnVariant = tinySpec({
  seed: 3,
  kvHeads: 4,
  ropeScaling: { rope_type: 'yarn', factor: 4, original_max_position_embeddings: 32 },
});

const PROMPT = [5, 100, 33, 200, 7, 9, 300, 12, 44, 55, 66, 77];

interface Run {
  logits: Float32Array;
  outputs: ort.InferenceSession.OnnxValueMapType;
}

interface Model {
  spec: TinyModelSpec;
  dir: string;
  session: ort.InferenceSession;
}

let root: string;

async function loadGenerated(name: string, spec: TinyModelSpec): Promise<Model> {
  const dir = path.join(root, name);
  await generateModel(dir, spec);
  const session = await ort.InferenceSession.create(path.join(dir, 'onnx', 'model.onnx'));
  return { spec, dir, session };
}

const int64 = (values: number[], dims: number[]) => new ort.Tensor('int64', BigInt64Array.from(values, BigInt), dims);

function emptyPast(spec: TinyModelSpec, batch = 1): ort.Tensor {
  const data = spec.kvDtype === 'float16' ? new Uint16Array(0) : new Float32Array(0);
  return new ort.Tensor(spec.kvDtype, data, [batch, spec.kvHeads, 0, spec.headDim]);
}

/** Batch-1 run of `ids` at positions start.. after `past` (the present outputs of an earlier run). */
async function run(model: Model, ids: number[], start = 0, past?: Run): Promise<Run> {
  const { spec, session } = model;
  const feeds: Record<string, ort.Tensor> = {
    input_ids: int64(ids, [1, ids.length]),
    attention_mask: int64(new Array(start + ids.length).fill(1), [1, start + ids.length]),
    position_ids: int64(ids.map((_, i) => start + i), [1, ids.length]),
  };
  for (let l = 0; l < spec.layers; l++) {
    for (const part of ['key', 'value']) {
      feeds[`past_key_values.${l}.${part}`] = (past?.outputs[`present.${l}.${part}`] as ort.Tensor) ?? emptyPast(spec);
    }
  }
  const outputs = await session.run(feeds);
  return { logits: outputs.logits.data as Float32Array, outputs };
}

let llama: Model;
let llamaFp16: Model;
let qwen: Model;
let yarn: Model;

beforeAll(async () => {
  root = await mkdtemp(path.join(os.tmpdir(), 'quire-generate-model-'));
  llama = await loadGenerated('llama', tinySpec());
  llamaFp16 = await loadGenerated('llama-fp16', tinySpec({ kvDtype: 'float16' }));
  qwen = await loadGenerated('qwen', qwenVariant);
  yarn = await loadGenerated('yarn', yarnVariant);
});

afterAll(async () => {
  await Promise.all([llama, llamaFp16, qwen, yarn].map((m) => m?.session.release()));
  if (root) await rm(root, { recursive: true, force: true });
});

describe('generated model folder', () => {
  it('holds the Hugging Face files, with the weights in external data', async () => {
    const config = JSON.parse(await readFile(path.join(llama.dir, 'config.json'), 'utf8'));
    expect(config).toEqual(JSON.parse(JSON.stringify(specToHfConfig(llama.spec))));
    const generation = JSON.parse(await readFile(path.join(llama.dir, 'generation_config.json'), 'utf8'));
    expect(generation).toMatchObject({ bos_token_id: 1, eos_token_id: 2 });
    for (const file of ['tokenizer.json', 'tokenizer_config.json']) {
      expect((await stat(path.join(llama.dir, file))).isFile()).toBe(true);
    }
    const weights = buildWeights(llama.spec);
    const layerArrays = weights.layers.flatMap((l) => Object.values(l) as Float32Array[]);
    const arrays = [weights.embed, weights.finalNorm, weights.lmHead, ...layerArrays];
    const weightBytes = arrays.reduce((sum, a) => sum + a.byteLength, 0);
    const graph = await stat(path.join(llama.dir, 'onnx', 'model.onnx'));
    const data = await stat(path.join(llama.dir, 'onnx', 'model.onnx_data'));
    expect(data.size).toBeGreaterThanOrEqual(weightBytes);
    expect(graph.size).toBeLessThan(weightBytes / 10);
  });

  it('declares the Optimum input and output names, element types and dims', () => {
    const { session, spec } = llamaFp16;
    const kv = (name: string, tokens: string) => ({
      name,
      isTensor: true,
      type: 'float16',
      shape: ['batch_size', spec.kvHeads, tokens, spec.headDim],
    });
    expect(session.inputMetadata).toEqual([
      { name: 'input_ids', isTensor: true, type: 'int64', shape: ['batch_size', 'sequence_length'] },
      { name: 'attention_mask', isTensor: true, type: 'int64', shape: ['batch_size', 'total_sequence_length'] },
      { name: 'position_ids', isTensor: true, type: 'int64', shape: ['batch_size', 'sequence_length'] },
      ...[0, 1].flatMap((l) => [
        kv(`past_key_values.${l}.key`, 'past_sequence_length'),
        kv(`past_key_values.${l}.value`, 'past_sequence_length'),
      ]),
    ]);
    expect(session.outputMetadata).toEqual([
      { name: 'logits', isTensor: true, type: 'float32', shape: ['batch_size', 'sequence_length', spec.vocabSize] },
      ...[0, 1].flatMap((l) => [
        kv(`present.${l}.key`, 'total_sequence_length'),
        kv(`present.${l}.value`, 'total_sequence_length'),
      ]),
    ]);
  });
});

describe('generated model forward', () => {
  // The split run multiplies differently shaped matrices, so onnxruntime may sum in another order:
  // 1e-5 leaves room for that (logits are of order 1, float32 epsilon 1.2e-7) while any error in
  // positions, masking or the cache layout moves logits by 1e-2 or more.
  const SPLIT_TOLERANCE = 1e-5;

  for (const name of ['float32', 'float16'] as const) {
    it(`gives the same logits for a prompt run at once or as 5 + 7 tokens with a ${name} cache`, async () => {
      const model = name === 'float32' ? llama : llamaFp16;
      const vocab = model.spec.vocabSize;
      const whole = await run(model, PROMPT);
      const first = await run(model, PROMPT.slice(0, 5));
      const second = await run(model, PROMPT.slice(5), 5, first);
      expect(maxAbsDiff(whole.logits.subarray(0, 5 * vocab), first.logits)).toBeLessThan(SPLIT_TOLERANCE);
      expect(maxAbsDiff(whole.logits.subarray(5 * vocab), second.logits)).toBeLessThan(SPLIT_TOLERANCE);
      const present = second.outputs['present.1.key'] as ort.Tensor;
      expect(present.dims).toEqual([1, model.spec.kvHeads, PROMPT.length, model.spec.headDim]);
      expect(present.type).toBe(name);
      expect(present.data).toBeInstanceOf(name === 'float16' ? Uint16Array : Float32Array);
    });
  }

  it('changes logits only by rounding when the cache is float16', async () => {
    const [exact, rounded] = await Promise.all([run(llama, PROMPT), run(llamaFp16, PROMPT)]);
    // keys and values keep 11 significant bits (relative error <= 4.9e-4), which moves logits of
    // order 1 by up to ~1e-3; a cache written or read in the wrong layout would move them by far more
    expect(maxAbsDiff(exact.logits, rounded.logits)).toBeLessThan(5e-3);
    expect(maxAbsDiff(exact.logits, rounded.logits)).toBeGreaterThan(0);
  });

  it('runs the qwen2 variant (biases, GQA, partial rotary, llama3 scaling, tied head) with a past', async () => {
    const vocab = qwen.spec.vocabSize;
    const whole = await run(qwen, PROMPT);
    const second = await run(qwen, PROMPT.slice(5), 5, await run(qwen, PROMPT.slice(0, 5)));
    expect(whole.logits.every(Number.isFinite)).toBe(true);
    // the tied head reads the std-1 embedding, so these logits are ~8x larger than the untied model's
    expect(maxAbsDiff(whole.logits.subarray(5 * vocab), second.logits)).toBeLessThan(SPLIT_TOLERANCE * 10);
  });

  it('masks padding: a left-padded row of a batch equals its tokens run alone', async () => {
    const { spec, session } = llama;
    const width = 9;
    const short = PROMPT.slice(0, 6);
    const pad = width - short.length;
    const zeros = new Array(pad).fill(0);
    const feeds: Record<string, ort.Tensor> = {
      input_ids: int64([...zeros, ...short, ...PROMPT.slice(0, width)], [2, width]),
      attention_mask: int64([...zeros, ...new Array(short.length + width).fill(1)], [2, width]),
      position_ids: int64([...zeros, ...short.keys(), ...PROMPT.slice(0, width).keys()], [2, width]),
    };
    for (let l = 0; l < spec.layers; l++) {
      for (const part of ['key', 'value']) feeds[`past_key_values.${l}.${part}`] = emptyPast(spec, 2);
    }
    const batch = (await session.run(feeds)).logits.data as Float32Array;
    const vocab = spec.vocabSize;
    // padded query rows attend to no key: they must come out finite, not NaN
    expect(batch.every(Number.isFinite)).toBe(true);
    const alone = await run(llama, short);
    expect(maxAbsDiff(batch.subarray(pad * vocab, width * vocab), alone.logits)).toBeLessThan(SPLIT_TOLERANCE);
    const full = await run(llama, PROMPT.slice(0, width));
    expect(maxAbsDiff(batch.subarray(width * vocab), full.logits)).toBeLessThan(SPLIT_TOLERANCE);
  });

  // The reference sums in float64, onnxruntime in float32: over 2 layers that leaves ~1e-6 on the
  // untied model's logits (order 1) and ~1e-5 on the tied variant's (order 10). 1e-4 bounds both
  // with margin, while a wrong rotation, scaling, bias or head mapping shows up at 1e-2 and above.
  const REFERENCE_TOLERANCE = 1e-4;

  for (const [name, model] of [
    ['llama', () => llama],
    ['qwen2 variant', () => qwen],
    ['yarn variant', () => yarn],
  ] as const) {
    it(`matches the float64 reference forward (${name})`, async () => {
      const { spec } = model();
      const tokens = PROMPT.slice(0, 10);
      const onnx = await run(model(), tokens);
      const reference = referenceForward(spec, buildWeights(spec), tokens, tokens.map((_, i) => i), causalMask());
      const vocab = spec.vocabSize;
      reference.logits.forEach((row, t) => {
        expect(maxAbsDiff(onnx.logits.subarray(t * vocab, (t + 1) * vocab), row)).toBeLessThan(REFERENCE_TOLERANCE);
      });
      const presentKey = (onnx.outputs['present.0.key'] as ort.Tensor).data as Float32Array;
      expect(maxAbsDiff(presentKey, reference.keys[0])).toBeLessThan(REFERENCE_TOLERANCE);
    });
  }
});

describe('generated tokenizer', () => {
  const TEXTS = [
    'The librarian read the question twice.',
    'naïve café — 東京 🚀',
    ' two  spaces\tand\nnew lines  ',
  ];

  async function loadBoth(model: Model) {
    const json = JSON.parse(await readFile(path.join(model.dir, 'tokenizer.json'), 'utf8'));
    const config = JSON.parse(await readFile(path.join(model.dir, 'tokenizer_config.json'), 'utf8'));
    env.allowRemoteModels = false;
    env.allowLocalModels = true;
    return { tokenizer: new Tokenizer(json, config), transformers: await AutoTokenizer.from_pretrained(model.dir) };
  }

  it('round-trips text, agrees with transformers.js and prepends BOS only when the spec says so', async () => {
    for (const model of [llama, qwen]) {
      const { tokenizer, transformers } = await loadBoth(model);
      expect(tokenizer.get_vocab(true).size).toBe(model.spec.vocabSize);
      for (const text of TEXTS) {
        const ids = tokenizer.encode(text).ids;
        expect(ids[0] === 1).toBe(model.spec.addBos);
        expect(Math.max(...ids)).toBeLessThan(model.spec.vocabSize);
        expect(tokenizer.decode(ids, { skip_special_tokens: true })).toBe(text);
        expect(transformers.encode(text)).toEqual(ids);
      }
    }
  });

  it('compresses English with learned merges and keeps special tokens whole', async () => {
    const { tokenizer } = await loadBoth(llama);
    const text = 'The student read the documents again.';
    expect(tokenizer.encode(text, { add_special_tokens: false }).ids.length).toBeLessThan(text.length / 2);
    expect(tokenizer.encode('<|im_start|>user<|im_end|><|endoftext|>', { add_special_tokens: false }).ids).toEqual([
      3,
      ...tokenizer.encode('user', { add_special_tokens: false }).ids,
      2,
      0,
    ]);
  });

  it('renders the ChatML template, with BOS for a BOS tokenizer', async () => {
    const messages = [
      { role: 'system', content: 'Be brief.' },
      { role: 'user', content: 'Hi' },
    ];
    const body = '<|im_start|>system\nBe brief.<|im_end|>\n<|im_start|>user\nHi<|im_end|>\n';
    for (const [model, prefix] of [
      [llama, '<s>'],
      [qwen, ''],
    ] as const) {
      const { transformers } = await loadBoth(model);
      expect(transformers.apply_chat_template(messages, { tokenize: false })).toBe(prefix + body);
      expect(transformers.apply_chat_template(messages, { tokenize: false, add_generation_prompt: true })).toBe(
        `${prefix}${body}<|im_start|>assistant\n`,
      );
    }
  });
});

describe('generated model with a real tokenizer (tokenizerFrom)', () => {
  const LLAMA2 = path.resolve('../shared/fixtures/tiny-llama-fp16-genai');

  it('copies the Llama 2 tokenizer files, which then give the ids of Llama 2', async () => {
    const dir = await mkdtemp(path.join(os.tmpdir(), 'quire-gen-tok-'));
    try {
      await generateModel(dir, tinySpec({ vocabSize: 32000, seed: 5 }), { tokenizerFrom: LLAMA2 });
      for (const name of ['tokenizer.json', 'tokenizer_config.json', 'special_tokens_map.json']) {
        expect(await readFile(path.join(dir, name), 'utf8')).toBe(await readFile(path.join(LLAMA2, name), 'utf8'));
      }
      const json = JSON.parse(await readFile(path.join(dir, 'tokenizer.json'), 'utf8'));
      const config = JSON.parse(await readFile(path.join(dir, 'tokenizer_config.json'), 'utf8'));
      // Llama 2's ids: <s> = 1, "▁Hello" = 15043, "▁world" = 3186
      expect(new Tokenizer(json, config).encode('Hello world').ids).toEqual([1, 15043, 3186]);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it('refuses a tokenizer whose vocabulary is not the spec one', async () => {
    const dir = await mkdtemp(path.join(os.tmpdir(), 'quire-gen-tok-'));
    try {
      await expect(generateModel(dir, tinySpec(), { tokenizerFrom: LLAMA2 })).rejects.toThrow(/32000 tokens, the spec 384/);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
