// The OpenAI-compatible API over the library, under /v1 on a 127.0.0.1 server (`quire serve`'s
// bridge, or the desktop app's api-server.ts): GET /v1/models, GET /v1/models/{id} and
// POST /v1/chat/completions, plain or streamed as server-sent events ending with `data: [DONE]`.
//
// Models are the library's scopes: `quire-library` (retrieval over every folder), `quire-folder-<id>`
// (one folder) and `quire-chat` (a plain chat, no retrieval). Answers come from the engine's
// completions.create (engine-host/completion-service.ts); a library answer's citations and sources
// ride in an extension field, `quire`, of the response (of the last chunk when streamed).
//
// Every request needs `Authorization: Bearer <key>`; the Host/Origin rules of local-origin.ts apply;
// errors use OpenAI's shape {error: {message, type, param, code}}. A client that closes the
// connection before the answer is complete cancels it, which frees the engine for the next request.
import { randomBytes } from 'node:crypto';
import type http from 'node:http';
import { z } from 'zod';
import { QuireRequestError, type CompletionScope, type CompletionView, type RequestArgs } from '../contract/types.ts';
import type { EngineClient } from '../engine-host/client.ts';
import { bearerToken, foreignRequest, sameSecret } from './local-access.ts';

export type ApiEngine = Pick<EngineClient, 'request' | 'onEvent'>;

export interface OpenAiApiOptions {
  engine: ApiEngine;
  /** Clients send it as `Authorization: Bearer <key>`. */
  apiKey: string;
}

export interface OpenAiApi {
  /** Whether `url` (a request's path) is the API's to answer. */
  owns(url: string | undefined): boolean;
  /** Answers one request to a server listening on 127.0.0.1:`port`. */
  handle(req: http.IncomingMessage, res: http.ServerResponse, port: number): Promise<void>;
}

export const LIBRARY_MODEL = 'quire-library';
export const CHAT_MODEL = 'quire-chat';
const FOLDER_MODEL = /^quire-folder-([1-9]\d{0,15})$/;
/** Whole transcripts travel in every request; 4 MiB holds a long one. */
export const MAX_API_BODY_BYTES = 4 * 1024 * 1024;

const textPart = z.object({ type: z.literal('text', { error: 'only text content parts are supported' }), text: z.string() });
const message = z.object({
  role: z.enum(['system', 'developer', 'user', 'assistant'], { error: 'role must be system, developer, user or assistant (tools are not supported)' }),
  content: z.union([z.string(), z.array(textPart), z.null()]),
  name: z.string().optional(),
});
const unsupported = (what: string) => ({ error: `${what} is not supported` });

/** A chat completion request as OpenAI defines it; fields not named here are ignored. */
const chatCompletionBody = z.object({
  model: z.string().min(1),
  messages: z.array(message).min(1, { error: 'messages must hold at least one message' }),
  stream: z.boolean().nullish(),
  stream_options: z.object({ include_usage: z.boolean().nullish() }).nullish(),
  temperature: z.number().min(0).max(2).nullish(),
  top_p: z.number().min(0).max(1).nullish(),
  max_tokens: z.number().int().min(1).nullish(),
  max_completion_tokens: z.number().int().min(1).nullish(),
  stop: z.union([z.string().min(1), z.array(z.string().min(1)).max(4)]).nullish(),
  seed: z.number().int().nullish(),
  n: z.literal(1, unsupported('n other than 1')).nullish(),
  frequency_penalty: z.literal(0, unsupported('frequency_penalty')).nullish(),
  presence_penalty: z.literal(0, unsupported('presence_penalty')).nullish(),
  logprobs: z.literal(false, unsupported('logprobs')).nullish(),
  tools: z.array(z.unknown()).max(0, unsupported('tools')).nullish(),
  response_format: z.object({ type: z.literal('text', unsupported('a response_format other than text')) }).nullish(),
});
type ChatCompletionBody = z.output<typeof chatCompletionBody>;

type ErrorType = 'invalid_request_error' | 'authentication_error' | 'permission_error' | 'not_found_error' | 'server_error';

class ApiError extends Error {
  constructor(
    readonly status: number,
    message: string,
    readonly type: ErrorType = 'invalid_request_error',
    readonly code: string | null = null,
    readonly param: string | null = null,
  ) {
    super(message);
  }
}

function sendJson(res: http.ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}): void {
  res.writeHead(status, { 'Content-Type': 'application/json; charset=utf-8', 'Cache-Control': 'no-store', ...headers });
  res.end(JSON.stringify(body));
}

function sendError(res: http.ServerResponse, e: ApiError, headers?: Record<string, string>): void {
  sendJson(res, e.status, errorBody(e), headers);
}

function errorBody(e: ApiError) {
  return { error: { message: e.message, type: e.type, param: e.param, code: e.code } };
}

/** An engine failure as the API reports it. */
function apiError(e: unknown): ApiError {
  if (e instanceof ApiError) return e;
  if (e instanceof QuireRequestError) {
    if (e.code === 'invalid-arguments') return new ApiError(400, e.message);
    if (e.code === 'unavailable') return new ApiError(503, e.message, 'server_error', 'model_not_loaded');
    if (e.code === 'unknown-request') return new ApiError(404, e.message, 'not_found_error');
  }
  return new ApiError(500, (e as Error)?.message ?? String(e), 'server_error');
}

async function readJson(req: http.IncomingMessage): Promise<unknown> {
  const declared = Number(req.headers['content-length'] ?? 0);
  const tooLarge = new ApiError(413, `the request body is larger than ${MAX_API_BODY_BYTES} bytes`, 'invalid_request_error', 'request_too_large');
  if (declared > MAX_API_BODY_BYTES) throw tooLarge;
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req) {
    size += (chunk as Buffer).length;
    if (size > MAX_API_BODY_BYTES) throw tooLarge;
    chunks.push(chunk as Buffer);
  }
  try {
    return JSON.parse(Buffer.concat(chunks).toString('utf8'));
  } catch {
    throw new ApiError(400, 'the body is not valid JSON');
  }
}

function parseBody(body: unknown): ChatCompletionBody {
  const parsed = chatCompletionBody.safeParse(body);
  if (parsed.success) return parsed.data;
  const issue = parsed.error.issues[0];
  const param = issue.path.length > 0 ? issue.path.join('.') : null;
  throw new ApiError(400, `${param ?? 'body'}: ${issue.message}`, 'invalid_request_error', null, param);
}

/** The scope a model id names; throws 404 for ids that name none. */
function scopeOf(model: string): CompletionScope {
  if (model === LIBRARY_MODEL) return { kind: 'library' };
  if (model === CHAT_MODEL) return { kind: 'chat' };
  const folder = FOLDER_MODEL.exec(model);
  if (folder) return { kind: 'folder', folderId: Number(folder[1]) };
  throw new ApiError(404, `The model '${model}' does not exist (GET /v1/models lists them)`, 'invalid_request_error', 'model_not_found', 'model');
}

function messageText(content: z.output<typeof message>['content']): string {
  if (content === null) return '';
  return typeof content === 'string' ? content : content.map((p) => p.text).join('');
}

/** The engine request for a chat completion body ('developer' is OpenAI's newer name for 'system'). */
function completionArgs(requestId: string, body: ChatCompletionBody): RequestArgs<'completions.create'> {
  const stop = body.stop == null ? undefined : typeof body.stop === 'string' ? [body.stop] : body.stop;
  const maxTokens = body.max_completion_tokens ?? body.max_tokens ?? undefined;
  return {
    requestId,
    scope: scopeOf(body.model),
    messages: body.messages.map((m) => ({ role: m.role === 'developer' ? 'system' : m.role, content: messageText(m.content) })),
    ...(body.temperature != null ? { temperature: body.temperature } : {}),
    ...(body.top_p != null ? { topP: body.top_p } : {}),
    ...(maxTokens !== undefined ? { maxTokens } : {}),
    ...(stop && stop.length > 0 ? { stop } : {}),
    ...(body.seed != null ? { seed: body.seed } : {}),
  };
}

function usage(view: CompletionView) {
  return { prompt_tokens: view.promptTokens, completion_tokens: view.completionTokens, total_tokens: view.promptTokens + view.completionTokens };
}

/** The response's extension field: where a library answer's passages are. */
function quireExtension(view: CompletionView) {
  return { citations: view.citations, sources: view.sources, context: view.context };
}

export function createOpenAiApi(options: OpenAiApiOptions): OpenAiApi {
  const { engine, apiKey } = options;
  const startedAt = Math.floor(Date.now() / 1000);

  const modelEntry = (id: string, extra: Record<string, unknown>) => ({ id, object: 'model', created: startedAt, owned_by: 'quire', quire: extra });

  async function models() {
    const folders = await engine.request('folders.list', {});
    return [
      modelEntry(LIBRARY_MODEL, { scope: 'library', description: 'answers from the whole library, with citations' }),
      ...folders.map((f) =>
        modelEntry(`quire-folder-${f.id}`, { scope: 'folder', folderId: f.id, path: f.path, description: `answers from ${f.path}, with citations` }),
      ),
      modelEntry(CHAT_MODEL, { scope: 'chat', description: 'a plain chat with the model, without retrieval' }),
    ];
  }

  async function chatCompletion(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
    const body = parseBody(await readJson(req));
    const requestId = `chatcmpl-${randomBytes(12).toString('hex')}`;
    const args = completionArgs(requestId, body);
    const scope = args.scope;
    if (scope.kind === 'folder' && !(await engine.request('folders.list', {})).some((f) => f.id === scope.folderId)) {
      throw new ApiError(404, `The model '${body.model}' does not exist: no folder ${scope.folderId}`, 'invalid_request_error', 'model_not_found', 'model');
    }
    const created = Math.floor(Date.now() / 1000);
    // a client that goes away before the answer is complete stops it (the engine is free at once)
    let settled = false;
    res.on('close', () => {
      if (!settled) void engine.request('completions.cancel', { requestId }).catch(() => undefined);
    });

    if (!body.stream) {
      const view = await engine.request('completions.create', args).finally(() => (settled = true));
      if (view.cancelled || res.destroyed) return;
      return sendJson(res, 200, {
        id: requestId,
        object: 'chat.completion',
        created,
        model: body.model,
        choices: [{ index: 0, message: { role: 'assistant', content: view.content, refusal: null }, logprobs: null, finish_reason: view.finishReason }],
        usage: usage(view),
        quire: quireExtension(view),
      });
    }

    const includeUsage = body.stream_options?.include_usage === true;
    const chunk = (choices: unknown[], extra: Record<string, unknown> = {}) =>
      `data: ${JSON.stringify({ id: requestId, object: 'chat.completion.chunk', created, model: body.model, choices, ...(includeUsage ? { usage: null } : {}), ...extra })}\n\n`;
    const delta = (d: Record<string, unknown>, finishReason: string | null = null) => [{ index: 0, delta: d, logprobs: null, finish_reason: finishReason }];
    // the status goes with the first text, so a request that fails before any (no model, prompt too long) gets an error status
    const write = (frame: string) => {
      if (res.destroyed) return;
      if (!res.headersSent) {
        res.writeHead(200, { 'Content-Type': 'text/event-stream; charset=utf-8', 'Cache-Control': 'no-store', Connection: 'keep-alive', 'X-Accel-Buffering': 'no' });
        res.write(chunk(delta({ role: 'assistant', content: '' })));
      }
      res.write(frame);
    };
    const unsubscribe = engine.onEvent((name, payload) => {
      if (name !== 'completion.text') return;
      const piece = payload as { requestId: string; text: string };
      if (piece.requestId === requestId) write(chunk(delta({ content: piece.text })));
    });
    let view: CompletionView;
    try {
      view = await engine.request('completions.create', args);
    } catch (e) {
      if (!res.headersSent) throw e;
      // OpenAI reports a failure after the status as an error event
      return void res.end(`data: ${JSON.stringify(errorBody(apiError(e)))}\n\n`);
    } finally {
      settled = true;
      unsubscribe();
    }
    if (view.cancelled || res.destroyed) return void res.end();
    write(chunk(delta({}, view.finishReason), { quire: quireExtension(view) }));
    if (includeUsage) write(chunk([], { usage: usage(view) }));
    res.end('data: [DONE]\n\n');
  }

  return {
    owns: (url) => url === '/v1' || (url ?? '').startsWith('/v1/'),
    async handle(req, res, port) {
      try {
        const refused = foreignRequest(req, port);
        if (refused) throw new ApiError(403, refused, 'permission_error');
        if (!sameSecret(bearerToken(req), apiKey)) {
          throw new ApiError(401, 'Incorrect or missing API key: send "Authorization: Bearer <key>" with the key quire printed at start', 'invalid_request_error', 'invalid_api_key');
        }
        const { pathname } = new URL(req.url ?? '/', 'http://127.0.0.1');
        const method = req.method ?? 'GET';
        const allow = (m: string) => {
          if (method !== m) throw new ApiError(405, `${pathname} takes ${m}, not ${method}`, 'invalid_request_error', 'method_not_allowed');
        };
        if (pathname === '/v1/models') {
          allow('GET');
          return sendJson(res, 200, { object: 'list', data: await models() });
        }
        if (pathname.startsWith('/v1/models/')) {
          allow('GET');
          const id = pathname.slice('/v1/models/'.length);
          const model = (await models()).find((m) => m.id === id);
          if (!model) throw new ApiError(404, `The model '${id}' does not exist`, 'invalid_request_error', 'model_not_found', 'model');
          return sendJson(res, 200, model);
        }
        if (pathname === '/v1/chat/completions') {
          allow('POST');
          return await chatCompletion(req, res);
        }
        throw new ApiError(404, `Unknown request URL: ${method} ${pathname}`, 'invalid_request_error', 'unknown_url');
      } catch (e) {
        if (res.headersSent) return void res.end();
        const err = apiError(e);
        // a refused body may still be arriving: answer, then close the connection
        sendError(res, err, err.status === 413 ? { Connection: 'close' } : undefined);
      }
    },
  };
}
