// The contract's argument schemas, used where a request crosses a trust boundary: the preload's IPC
// handler in the main process (ipc-validation.ts), the serve bridge, and the engine worker. Never
// imported by the renderer (zod stays out of its bundle). Each schema is checked at compile time to
// accept exactly its type in types.ts, so the two cannot drift.
import { z } from 'zod';
import {
  ATTENTION_MODES,
  PROVIDER_CHOICES,
  QUALITY_SETTINGS,
  QUESTION_MAX_CHARS,
  QuireRequestError,
  SYSTEM_PROMPT_MAX_CHARS,
  type RequestArgs,
  type RequestArgsByName,
  type RequestName,
  type Settings,
} from './types.ts';

const id = z.number().int().positive();
const text = (max: number) => z.string().max(max);
const noArgs = z.object({}).strict();

/** The OpenAI-compatible API's key: sent in a header, so printable ASCII without spaces. */
export const apiKeySchema = z
  .string()
  .min(16)
  .max(256)
  .regex(/^[\x21-\x7e]+$/, 'printable ASCII without spaces');

export const settingsSchema = z.object({
  modelDir: z.string().max(4096).nullable(),
  provider: z.enum(PROVIDER_CHOICES),
  kvBudgetBytes: z.number().int().min(16 * 1024 ** 2).max(1024 ** 4),
  passageTokens: z.number().int().min(32).max(2048),
  eagerPrefill: z.boolean(),
  k: z.number().int().min(1).max(32),
  mode: z.enum(ATTENTION_MODES),
  quality: z.enum(QUALITY_SETTINGS),
  chatKvBytes: z.number().int().min(0).max(1024 ** 4),
  temperature: z.number().min(0).max(2),
  maxAnswerTokens: z.number().int().min(16).max(8192),
  systemPrompt: z.string().max(SYSTEM_PROMPT_MAX_CHARS),
  apiServer: z.boolean(),
  apiPort: z.number().int().min(1).max(65535),
  apiKey: z.union([z.literal(''), apiKeySchema]),
});

const completionScope = z.discriminatedUnion('kind', [
  z.object({ kind: z.literal('library') }).strict(),
  z.object({ kind: z.literal('folder'), folderId: id }).strict(),
  z.object({ kind: z.literal('chat') }).strict(),
]);

const completionMessage = z.object({ role: z.enum(['system', 'user', 'assistant']), content: text(200_000) }).strict();

/** Request name -> schema of its one argument. */
export const requestSchemas = {
  'app.info': noArgs,
  'folders.list': noArgs,
  'folders.add': z.object({ path: text(4096).min(1) }).strict(),
  'folders.remove': z.object({ folderId: id }).strict(),
  'folders.reindex': z.object({ folderId: id }).strict(),
  'folders.pause': z.object({ folderId: id }).strict(),
  'folders.resume': z.object({ folderId: id }).strict(),
  'folders.files': z.object({ folderId: id, problemsOnly: z.boolean().optional() }).strict(),
  search: z.object({ query: text(1000), folderId: id.optional(), limit: z.number().int().min(1).max(100).optional() }).strict(),
  'passage.get': z.object({ passageId: id, query: text(1000).optional(), question: text(QUESTION_MAX_CHARS).optional() }).strict(),
  ask: z
    .object({
      requestId: text(64).min(1),
      question: text(QUESTION_MAX_CHARS).min(1),
      chatId: id.optional(),
      folderId: id.optional(),
      regenerate: z.boolean().optional(),
    })
    .strict(),
  'ask.cancel': z.object({ requestId: text(64).min(1) }).strict(),
  'ask.prepare': z.object({ question: text(QUESTION_MAX_CHARS).min(1), chatId: id.optional(), folderId: id.optional() }).strict(),
  'completions.create': z
    .object({
      requestId: text(64).min(1),
      scope: completionScope,
      messages: z.array(completionMessage).min(1).max(1000),
      temperature: z.number().min(0).max(2).optional(),
      topP: z.number().min(0).max(1).optional(),
      maxTokens: z.number().int().min(1).optional(),
      stop: z.array(text(200).min(1)).max(4).optional(),
      seed: z.number().int().optional(),
    })
    .strict(),
  'completions.cancel': z.object({ requestId: text(64).min(1) }).strict(),
  'chats.list': noArgs,
  'chats.messages': z.object({ chatId: id }).strict(),
  'chats.delete': z.object({ chatId: id }).strict(),
  'chats.update': z.object({ chatId: id, title: text(200).min(1).optional(), folderId: id.nullable().optional() }).strict(),
  'chats.export': z.object({ chatId: id }).strict(),
  'settings.get': noArgs,
  'settings.set': settingsSchema.partial().strict(),
  'kv.stats': z.object({ folderId: id.optional() }).strict(),
  'models.catalog': noArgs,
  'models.download': z.object({ modelId: text(200).min(1) }).strict(),
  'models.useFolder': z.object({ path: text(4096).min(1) }).strict(),
  'host.pickFolder': noArgs,
  'host.openPath': z.object({ path: text(4096).min(1), page: z.number().int().positive().optional() }).strict(),
} satisfies Record<RequestName, z.ZodType>;

// Compile-time: each schema's output is exactly its contract type (not merely assignable to it).
type Same<A, B> = (<T>() => T extends A ? 1 : 2) extends <T>() => T extends B ? 1 : 2 ? true : false;
type Drifted = { [N in RequestName]: Same<z.output<(typeof requestSchemas)[N]>, RequestArgsByName[N]> extends true ? never : N }[RequestName];
const requestSchemasMatchTypes: [Drifted] extends [never] ? true : Drifted = true;
const settingsSchemaMatchesType: Same<z.output<typeof settingsSchema>, Settings> = true;
void requestSchemasMatchTypes;
void settingsSchemaMatchesType;

/** Validates a request's argument; throws QuireRequestError('invalid-arguments') with the reasons. */
export function parseRequest<N extends RequestName>(name: N, args: unknown): RequestArgs<N> {
  const result = requestSchemas[name].safeParse(args ?? {});
  if (!result.success) {
    const why = result.error.issues.map((i) => `${i.path.join('.') || '(argument)'}: ${i.message}`).join('; ');
    throw new QuireRequestError('invalid-arguments', `${name}: ${why}`);
  }
  return result.data as RequestArgs<N>;
}
