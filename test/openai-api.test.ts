// The OpenAI-compatible API as a client sees it, through the official `openai` package: the engine
// runs in its worker (as under `quire serve`) over a small library written with the db functions
// and a generated model; the bridge serves /v1 on 127.0.0.1.
//
// Token counts are checked against an independent count: the whole prompt rendered as one string
// through the model's chat template (@huggingface/jinja directly) and encoded by the tokenizer.
import { Template } from '@huggingface/jinja';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import OpenAI from 'openai';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openDatabase } from '../db/open.ts';
import { loadModelFolder } from '../native-models/model-folder.ts';
import { TextTokenizer } from '../native-models/tokenizer.ts';
import { ANSWER_INSTRUCTION, DOCUMENTS_INTRO, SYSTEM_INSTRUCTION } from '../electron/answering/prompt-blocks.ts';
import type { CitationView, EventName, EventPayloads } from '../electron/contract/types.ts';
import { startEngine, type EngineClient } from '../electron/engine-host/client.ts';
import { ApiServerSwitch } from '../electron/serve/api-server.ts';
import { startBridge, type Bridge } from '../electron/serve/bridge.ts';
import { createOpenAiApi, MAX_API_BODY_BYTES } from '../electron/serve/openai-api.ts';
import { rawRequest, type RawRequest } from './helpers/http.ts';
import { addLibrary } from './helpers/library.ts';
import { ANSWER_DOCS, makeModelDir, removeDir } from './helpers/models.ts';
import { tinySpec } from './tools/tiny-model-spec.ts';

const KEY = 'test-key-0123456789abcdef';
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'quire-openai-'));
const home = path.join(tmp, 'home');
const OTHER_DOCS = { 'search.md': ['A binary search halves the interval each step, so a million sorted keys need twenty probes.'] };
const Q1 = 'What did the lighthouse keeper write about storms?';

let modelDir: string;
let engine: EngineClient;
let bridge: Bridge;
let client: OpenAI;
let tokenizer: TextTokenizer;
let chatTemplate: string;
let bosToken: string;
let docsFolder: number;
let otherFolder: number;
const texts = new Map<string, string[]>();

interface QuireExtension {
  citations: CitationView[];
  sources: CitationView[];
  context: 'new' | 'continued' | 'transcript';
}
const quireOf = (x: object) => (x as { quire: QuireExtension }).quire;

/** Token count of a whole ChatML prompt rendered in one piece (the template writes the BOS). */
function promptTokens(messages: { role: string; content: string }[]): number {
  const text = new Template(chatTemplate).render({ messages, add_generation_prompt: true, bos_token: bosToken, eos_token: '' });
  return tokenizer.encode(text).length;
}

/** A question, its answer and a follow-up question, sent as one conversation. */
function followUp(model: string, [question, answer, next]: [string, string, string], maxTokens: number) {
  return client.chat.completions.create({
    model,
    messages: [
      { role: 'user', content: question },
      { role: 'assistant', content: answer },
      { role: 'user', content: next },
    ],
    max_tokens: maxTokens,
  });
}

const raw = (pathname: string, options?: RawRequest) => rawRequest(bridge.port, pathname, options);

beforeAll(async () => {
  modelDir = await makeModelDir(tinySpec({ seed: 61 }));
  const model = loadModelFolder(modelDir);
  tokenizer = new TextTokenizer(model);
  chatTemplate = model.chatTemplate!;
  bosToken = String(model.tokenizerConfig.bos_token ?? '');
  const dbPath = path.join(tmp, 'quire.db');
  const db = openDatabase(dbPath);
  docsFolder = addLibrary(db, path.join(tmp, 'docs'), ANSWER_DOCS);
  otherFolder = addLibrary(db, path.join(tmp, 'other'), OTHER_DOCS);
  db.close();
  for (const [name, t] of Object.entries({ ...ANSWER_DOCS, ...OTHER_DOCS })) texts.set(name, t);
  fs.mkdirSync(home);
  fs.writeFileSync(path.join(home, 'app-settings.json'), JSON.stringify({ provider: 'cpu', eagerPrefill: false, k: 3 }));
  engine = await startEngine({ dbPath, dataDir: home, modelDir, host: 'serve' });
  const staticDir = path.join(tmp, 'static');
  fs.mkdirSync(staticDir);
  fs.writeFileSync(path.join(staticDir, 'index.html'), '<!doctype html><title>Quire</title>');
  bridge = await startBridge({ engine, staticDir, api: createOpenAiApi({ engine, apiKey: KEY }) });
  client = new OpenAI({ baseURL: `http://127.0.0.1:${bridge.port}/v1`, apiKey: KEY, maxRetries: 0 });
});
afterAll(async () => {
  await bridge?.close();
  await engine?.close();
  removeDir(modelDir);
  fs.rmSync(tmp, { recursive: true, force: true });
});

describe('OpenAI-compatible API', () => {
  it('lists the library scopes as models: the library, each folder, and a plain chat', async () => {
    const ids: string[] = [];
    for await (const m of client.models.list()) ids.push(m.id);
    expect(ids).toEqual(['quire-library', `quire-folder-${docsFolder}`, `quire-folder-${otherFolder}`, 'quire-chat']);
    const folder = await client.models.retrieve(`quire-folder-${otherFolder}`);
    expect(folder).toMatchObject({ object: 'model', owned_by: 'quire', quire: { scope: 'folder', folderId: otherFolder, path: path.join(tmp, 'other') } });
    await expect(client.models.retrieve('gpt-4o')).rejects.toBeInstanceOf(OpenAI.NotFoundError);
  });

  it('answers from the library with citations in the quire field and real token counts', async () => {
    const request = { model: 'quire-library', messages: [{ role: 'user' as const, content: Q1 }], max_tokens: 8 };
    await client.chat.completions.create(request); // stores the passage blocks (float16), so the next answers read the same KV
    const answer = await client.chat.completions.create(request);
    expect(answer.object).toBe('chat.completion');
    expect(answer.choices).toHaveLength(1);
    expect(answer.choices[0].message.role).toBe('assistant');
    expect(answer.choices[0].message.content!.length).toBeGreaterThan(0);
    const { sources, context } = quireOf(answer);
    expect(context).toBe('new');
    expect(sources.length).toBeGreaterThan(0);
    expect(sources.map((s) => s.ordinal)).toEqual(sources.map((_, i) => i + 1));
    expect(sources.some((s) => s.quote.includes('lighthouse keeper'))).toBe(true);

    // the prompt as one string: system + user turn holding the documents, the passages, the question
    const blocks = sources.map((s) => `- Title: ${s.title}\n${s.quote}\n`).join('');
    const user = `${DOCUMENTS_INTRO}${blocks}${ANSWER_INSTRUCTION}Question: ${Q1}\n`;
    const expected = promptTokens([
      { role: 'system', content: SYSTEM_INSTRUCTION },
      { role: 'user', content: user },
    ]);
    expect(answer.usage).toEqual({ prompt_tokens: expected, completion_tokens: answer.usage!.completion_tokens, total_tokens: expected + answer.usage!.completion_tokens });
    expect(answer.usage!.completion_tokens).toBeGreaterThan(0);
    expect(answer.usage!.completion_tokens).toBeLessThanOrEqual(8);
    expect(answer.choices[0].finish_reason).toBe(answer.usage!.completion_tokens === 8 ? 'length' : 'stop');

    // streamed: the same answer in deltas, the finish reason, usage and the quire field at the end
    const stream = await client.chat.completions.create({ ...request, stream: true, stream_options: { include_usage: true } });
    let text = '';
    let finish: string | null = null;
    let extension: QuireExtension | undefined;
    let usage: OpenAI.CompletionUsage | undefined | null;
    let first = true;
    for await (const chunk of stream) {
      expect(chunk.object).toBe('chat.completion.chunk');
      if (first) expect(chunk.choices[0].delta.role).toBe('assistant');
      first = false;
      if (chunk.choices.length > 0) {
        text += chunk.choices[0].delta.content ?? '';
        finish = chunk.choices[0].finish_reason ?? finish;
      }
      if ((chunk as object as { quire?: QuireExtension }).quire) extension = quireOf(chunk);
      if (chunk.usage) usage = chunk.usage;
    }
    expect(text.trim()).toBe(answer.choices[0].message.content);
    expect(finish).toBe(answer.choices[0].finish_reason);
    expect(usage).toEqual(answer.usage);
    expect(extension!.sources).toEqual(sources);
  });

  it('a folder model answers from that folder only; an unknown folder is model_not_found', async () => {
    const answer = await client.chat.completions.create({
      model: `quire-folder-${otherFolder}`,
      messages: [{ role: 'user', content: 'How many probes does a binary search need?' }],
      max_tokens: 4,
    });
    const { sources } = quireOf(answer);
    expect(sources.length).toBeGreaterThan(0);
    for (const s of sources) expect(s.documentPath.startsWith(path.join(tmp, 'other') + path.sep)).toBe(true);
    // the same question over the whole library reaches the other folder too (the scope is what narrowed it)
    const wide = await client.chat.completions.create({ model: 'quire-library', messages: [{ role: 'user', content: 'binary search probes lighthouse storms' }], max_tokens: 2 });
    expect(quireOf(wide).sources.some((s) => s.documentPath.startsWith(path.join(tmp, 'docs')))).toBe(true);
    // nothing in the scope covers the question: the honest fixed answer, and the model never ran
    const none = await client.chat.completions.create({ model: `quire-folder-${otherFolder}`, messages: [{ role: 'user', content: 'zeppelin quaternion' }] });
    expect(none.choices[0].message.content).toMatch(/documents|passage/i);
    expect(none.usage).toEqual({ prompt_tokens: 0, completion_tokens: 0, total_tokens: 0 });
    expect(quireOf(none).sources).toEqual([]);
    const missing = client.chat.completions.create({ model: 'quire-folder-999', messages: [{ role: 'user', content: 'x' }] });
    await expect(missing).rejects.toMatchObject({ status: 404, code: 'model_not_found', param: 'model' });
  });

  it('a plain chat uses no retrieval; its system message is the system prompt', async () => {
    const messages = [
      { role: 'system' as const, content: 'You are a terse assistant.' },
      { role: 'user' as const, content: 'Say something about the sea.' },
    ];
    const answer = await client.chat.completions.create({ model: 'quire-chat', messages, max_tokens: 5 });
    expect(quireOf(answer)).toEqual({ citations: [], sources: [], context: 'new' });
    expect(answer.usage!.prompt_tokens).toBe(promptTokens(messages));
    expect(answer.usage!.completion_tokens).toBeGreaterThan(0);
  });

  it('max_tokens and max_completion_tokens stop the answer with finish_reason "length"', async () => {
    const messages = [{ role: 'user' as const, content: 'Tell me a long story about ships.' }];
    const three = await client.chat.completions.create({ model: 'quire-chat', messages, max_tokens: 3 });
    expect(three.choices[0].finish_reason).toBe('length');
    expect(three.usage!.completion_tokens).toBe(3);
    const five = await client.chat.completions.create({ model: 'quire-chat', messages, max_completion_tokens: 5 });
    expect(five.choices[0].finish_reason).toBe('length');
    expect(five.usage!.completion_tokens).toBe(5);
    // greedy by default: the longer answer continues the shorter one
    expect(five.choices[0].message.content!.startsWith(three.choices[0].message.content!.trim())).toBe(true);
  });

  it('stop strings end the answer before them, streamed or not (finish_reason "stop")', async () => {
    const messages = [{ role: 'user' as const, content: 'Write about lighthouses.' }];
    const streamText = async (stop?: string | string[]) => {
      const deltas: string[] = [];
      let finish: string | null = null;
      for await (const chunk of await client.chat.completions.create({ model: 'quire-chat', messages, max_tokens: 40, stop, stream: true })) {
        if (chunk.choices[0]?.delta.content) deltas.push(chunk.choices[0].delta.content);
        finish = chunk.choices[0]?.finish_reason ?? finish;
      }
      return { deltas, text: deltas.join(''), finish };
    };
    const full = await streamText();
    // a stop string across two streamed pieces: the last character of one and the first of the next,
    // where it first occurs in the answer (a stream must not show its first half before knowing)
    let at = -1;
    let stop = '';
    for (let i = Math.floor(full.deltas.length / 3); i < full.deltas.length - 1 && at < 0; i++) {
      const end = full.deltas.slice(0, i + 1).join('').length;
      const candidate = full.text.slice(end - 1, end + 1);
      if (candidate.trim().length === 2 && full.text.indexOf(candidate) === end - 1) [at, stop] = [end - 1, candidate];
    }
    expect(at).toBeGreaterThan(0);
    const cut = full.text.slice(0, at);
    const stopped = await client.chat.completions.create({ model: 'quire-chat', messages, max_tokens: 40, stop });
    expect(stopped.choices[0].finish_reason).toBe('stop');
    expect(stopped.choices[0].message.content).toBe(cut.trim());
    const listed = await client.chat.completions.create({ model: 'quire-chat', messages, max_tokens: 40, stop: ['\u0000never', stop] });
    expect(listed.choices[0].message.content).toBe(cut.trim());
    const streamed = await streamText(stop);
    expect(streamed.text).toBe(cut);
    expect(streamed.finish).toBe('stop');
  });

  it('the same seed gives the same sampled answer; another seed another', async () => {
    const ask = (seed: number) =>
      client.chat.completions.create({
        model: 'quire-chat',
        messages: [{ role: 'user', content: 'Invent a word.' }],
        temperature: 1.5,
        top_p: 0.95,
        max_tokens: 24,
        seed,
      });
    const [a, b, c] = [await ask(7), await ask(7), await ask(8)];
    expect(b.choices[0].message.content).toBe(a.choices[0].message.content);
    expect(c.choices[0].message.content).not.toBe(a.choices[0].message.content);
  });

  it('earlier turns make a follow-up: a kept conversation continues, an edited one is read from the messages', async () => {
    const first = await client.chat.completions.create({ model: 'quire-library', messages: [{ role: 'user', content: Q1 }], max_tokens: 6 });
    const a1 = first.choices[0].message.content!;
    const q2 = 'What happened to the fishing boats?';
    const follow = await followUp('quire-library', [Q1, a1, q2], 6);
    const ext = quireOf(follow);
    expect(ext.context).toBe('continued');
    // passages are numbered on from the first turn's, as in the app
    expect(ext.sources.slice(0, quireOf(first).sources.length)).toEqual(quireOf(first).sources);
    expect(ext.sources.some((s) => s.quote.includes('Fishing boats'))).toBe(true);
    // the model read the whole conversation: the first prompt, the first answer and the new turn
    expect(follow.usage!.prompt_tokens).toBeGreaterThan(first.usage!.prompt_tokens + first.usage!.completion_tokens);

    const edited = await followUp('quire-library', [Q1, 'Something else entirely.', q2], 6);
    expect(quireOf(edited).context).toBe('transcript');
  });

  it('a plain chat continues a kept conversation, or renders the transcript it is sent through the chat template', async () => {
    const u1 = 'Name a colour.';
    const u2 = 'And another one?';
    const first = await client.chat.completions.create({ model: 'quire-chat', messages: [{ role: 'user', content: u1 }], max_tokens: 4 });
    expect(first.choices[0].finish_reason).toBe('length');
    const a1 = first.choices[0].message.content!;
    const continued = await followUp('quire-chat', [u1, a1, u2], 4);
    expect(quireOf(continued).context).toBe('continued');
    // the kept KV: the first prompt, the 4 generated tokens, then the template's turn change and the new message
    const turn = tokenizer.encode(`<|im_end|>\n<|im_start|>user\n${u2}<|im_end|>\n<|im_start|>assistant\n`).length;
    expect(continued.usage!.prompt_tokens).toBe(first.usage!.prompt_tokens + 4 + turn);

    const transcript = [
      { role: 'system' as const, content: 'Answer in one word.' },
      { role: 'user' as const, content: u1 },
      { role: 'assistant' as const, content: 'Blue, of course.' },
      { role: 'user' as const, content: u2 },
    ];
    const replayed = await client.chat.completions.create({ model: 'quire-chat', messages: transcript, max_tokens: 4 });
    expect(quireOf(replayed).context).toBe('transcript');
    expect(replayed.usage!.prompt_tokens).toBe(promptTokens(transcript));
  });

  it('closing the stream cancels the answer and frees the engine for the next request', async () => {
    const pieces = new Map<string, number>();
    const off = engine.onEvent(<E extends EventName>(name: E, payload: EventPayloads[E]) => {
      if (name !== 'completion.text') return;
      const { requestId } = payload as EventPayloads['completion.text'];
      pieces.set(requestId, (pieces.get(requestId) ?? 0) + 1);
    });
    try {
      const messages = [{ role: 'user' as const, content: 'Tell me everything.' }];
      // not vacuous: without a stop, this answer runs to its token limit
      const whole = await client.chat.completions.create({ model: 'quire-chat', messages, max_tokens: 1000 });
      expect(whole.choices[0].finish_reason).toBe('length');

      const stream = await client.chat.completions.create({ model: 'quire-chat', messages, max_tokens: 1000, stream: true });
      let id = '';
      for await (const chunk of stream) {
        id = chunk.id;
        if (chunk.choices[0]?.delta.content) break; // the SDK aborts the request: the connection closes
      }
      const next = await client.chat.completions.create({ model: 'quire-chat', messages: [{ role: 'user', content: 'Hello?' }], max_tokens: 2 });
      expect(next.choices[0].finish_reason).toBe('length');
      // the engine ran the next request after the cancelled one stopped, far short of its limit
      const streamedPieces = pieces.get(id) ?? 0;
      expect(streamedPieces).toBeGreaterThan(0);
      expect(streamedPieces).toBeLessThan(1000);
      const cancelAgain = await engine.request('completions.cancel', { requestId: id });
      expect(cancelAgain).toEqual({ cancelled: false });
    } finally {
      off();
    }
  });

  it('a wrong or missing key is 401 in OpenAI error shape', async () => {
    const wrong = new OpenAI({ baseURL: `http://127.0.0.1:${bridge.port}/v1`, apiKey: 'not-the-key', maxRetries: 0 });
    const err = await wrong.models.list().catch((e: unknown) => e);
    expect(err).toBeInstanceOf(OpenAI.AuthenticationError);
    expect(err).toMatchObject({ status: 401, code: 'invalid_api_key', type: 'invalid_request_error' });
    await expect(wrong.chat.completions.create({ model: 'quire-chat', messages: [{ role: 'user', content: 'hi' }] })).rejects.toBeInstanceOf(
      OpenAI.AuthenticationError,
    );
    const missing = await raw('/v1/models', { method: 'GET' });
    expect(missing.status).toBe(401);
    const body = JSON.parse(missing.body);
    expect(Object.keys(body.error).sort()).toEqual(['code', 'message', 'param', 'type']);
    // the bridge's token is not the API key
    expect((await raw('/v1/models', { method: 'GET', headers: { Authorization: `Bearer ${bridge.token}` } })).status).toBe(401);
  });

  it('bad requests are 400 with the offending parameter', async () => {
    const bad = (body: Record<string, unknown>) => client.chat.completions.create(body as never).catch((e: unknown) => e);
    const cases: [Record<string, unknown>, string | null][] = [
      [{ model: 'quire-chat', messages: [] }, 'messages'],
      [{ model: 'quire-chat', messages: [{ role: 'user', content: 'hi' }], temperature: 3 }, 'temperature'],
      [{ model: 'quire-chat', messages: [{ role: 'user', content: 'hi' }], n: 2 }, 'n'],
      [{ model: 'quire-chat', messages: [{ role: 'tool', content: 'x', tool_call_id: 'a' }] }, 'messages.0.role'],
      [{ model: 'quire-chat', messages: [{ role: 'user', content: 'hi' }], stop: ['a', 'b', 'c', 'd', 'e'] }, 'stop'],
      [{ model: 'quire-chat', messages: [{ role: 'user', content: 'hi' }, { role: 'assistant', content: 'hello' }] }, null],
    ];
    for (const [body, param] of cases) {
      const err = await bad(body);
      expect(err, JSON.stringify(body)).toBeInstanceOf(OpenAI.BadRequestError);
      expect(err).toMatchObject({ status: 400, type: 'invalid_request_error', param });
    }
    // a prompt longer than the model's context (4096 positions) is the client's to shorten
    const tooLong = await bad({ model: 'quire-chat', messages: [{ role: 'user', content: 'storm '.repeat(5000) }] });
    expect(tooLong).toBeInstanceOf(OpenAI.BadRequestError);
    expect((tooLong as Error).message).toMatch(/too long for the model: .* the model reads 4096 tokens in all/);
    const notJson = await raw('/v1/chat/completions', { headers: { Authorization: `Bearer ${KEY}`, 'Content-Type': 'application/json' }, body: '{"model":' });
    expect(notJson.status).toBe(400);
    expect(JSON.parse(notJson.body).error.type).toBe('invalid_request_error');
    const wrongMethod = await raw('/v1/chat/completions', { method: 'GET', headers: { Authorization: `Bearer ${KEY}` } });
    expect(wrongMethod.status).toBe(405);
    expect((await raw('/v1/embeddings', { headers: { Authorization: `Bearer ${KEY}` }, body: '{}' })).status).toBe(404);
  });

  it('refuses bodies over the limit (413), other origins and hosts (403)', async () => {
    const big = Buffer.alloc(MAX_API_BODY_BYTES + 1, 0x20);
    const tooLarge = await raw('/v1/chat/completions', { headers: { Authorization: `Bearer ${KEY}`, 'Content-Type': 'application/json', 'Content-Length': big.length }, body: big });
    expect(tooLarge.status).toBe(413);
    expect(JSON.parse(tooLarge.body).error.code).toBe('request_too_large');
    const auth = { Authorization: `Bearer ${KEY}` };
    const origin = await raw('/v1/models', { method: 'GET', headers: { ...auth, Origin: 'https://evil.example' } });
    expect(origin.status).toBe(403);
    expect(JSON.parse(origin.body).error.type).toBe('permission_error');
    expect((await raw('/v1/models', { method: 'GET', headers: { ...auth, Host: `rebound.example:${bridge.port}` } })).status).toBe(403);
    expect((await raw('/v1/models', { method: 'GET', headers: { ...auth, Origin: `http://127.0.0.1:${bridge.port}` } })).status).toBe(200);
  });
});

describe('the desktop app\'s API server (settings apiServer / apiPort / apiKey)', () => {
  it('is off by default; switched on it gets a saved key and serves /v1 only; switched off it stops', async () => {
    expect(await engine.request('settings.get', {})).toMatchObject({ apiServer: false, apiKey: '' });
    const settings = await engine.request('settings.set', { apiServer: true });
    expect(settings.apiKey).toMatch(/^quire-[0-9a-f]{48}$/);
    expect(JSON.parse(fs.readFileSync(path.join(home, 'app-settings.json'), 'utf8'))).toMatchObject({ apiServer: true, apiKey: settings.apiKey });
    const api = new ApiServerSwitch(engine);
    const on = await api.apply({ ...settings, apiPort: 0 }); // any free port here
    expect(on).toMatchObject({ running: true, problem: null });
    const desktop = new OpenAI({ baseURL: `http://127.0.0.1:${on.port}/v1`, apiKey: settings.apiKey, maxRetries: 0 });
    expect((await desktop.models.list()).data.map((m) => m.id)).toContain('quire-chat');
    const answer = await desktop.chat.completions.create({ model: 'quire-chat', messages: [{ role: 'user', content: 'Hi' }], max_tokens: 2 });
    expect(answer.usage!.completion_tokens).toBe(2);
    await expect(new OpenAI({ baseURL: `http://127.0.0.1:${on.port}/v1`, apiKey: KEY, maxRetries: 0 }).models.list()).rejects.toBeInstanceOf(
      OpenAI.AuthenticationError,
    );
    // the renderer's API is not there: only /v1
    expect((await fetch(`http://127.0.0.1:${on.port}/api/settings.get`, { method: 'POST' })).status).toBe(404);

    const offSettings = await engine.request('settings.set', { apiServer: false });
    expect(offSettings.apiKey).toBe(settings.apiKey); // kept for the next time it is switched on
    expect(await api.apply({ ...offSettings, apiPort: 0 })).toEqual({ running: false, port: null, problem: null });
    await expect(desktop.models.list()).rejects.toBeInstanceOf(OpenAI.APIConnectionError);
  });
});
