// The subcommands: what each does, the options it takes (from the table in options.ts), examples,
// and its implementation, loaded on demand (one bundle chunk each) so that help and usage errors stay
// fast. main.ts parses argv against a command's list before loading it.
import {
  ALL_WORDS,
  API_KEY,
  ANSWER_MAX_TOKENS,
  BLOCK,
  BOUNDARY,
  BOUNDARY_LIST,
  CODEC_LIST,
  DB,
  FIDELITY_MODE_LIST,
  FOLDER,
  formatOptions,
  GENERATE_MAX_TOKENS,
  HUB,
  JSON_OUTPUT,
  KV_BUDGET,
  KV_DTYPE,
  MAX_FILE_MB,
  MODE,
  MODEL,
  MODEL_SEED,
  NO_KV,
  OUT,
  PORT,
  PROMPT,
  PROMPTS,
  PROVIDER,
  QUALITY,
  RAW,
  RENDERER,
  RETRIEVE_K,
  SEARCH_LIMIT,
  SEED,
  SHAPE,
  STYLE,
  TEMPERATURE,
  THREADS,
  TOP_K,
  TOP_P,
  withDefault,
  type OptionSpec,
  type ParsedArgs,
} from './options.ts';

export type CommandRun = (args: ParsedArgs) => Promise<void>;

export interface CommandSpec {
  name: string;
  /** What follows the name in the usage line, before [options]: "<folder>...". */
  synopsis: string;
  /** One line: what the command does. */
  summary: string;
  options: readonly OptionSpec[];
  positionals: boolean;
  examples: readonly string[];
  load: () => Promise<CommandRun>;
}

export const COMMANDS: readonly CommandSpec[] = [
  {
    name: 'index',
    synopsis: '<folder>...',
    summary: 'Index folders into the database (incremental; safe to interrupt and rerun). With --model, prefill passage KV within the KV budget.',
    options: [
      DB,
      withDefault(MODEL, 'none: token counts are estimated and no KV is prefilled'),
      PROVIDER,
      KV_BUDGET,
      NO_KV,
      MAX_FILE_MB,
      JSON_OUTPUT,
    ],
    positionals: true,
    examples: ['quire index ~/notes ~/papers', 'quire index ~/notes --model qwen2.5-0.5b-instruct-q4f16 --kv-budget 2GiB --json'],
    load: async () => (await import('./index.ts')).indexCommand,
  },
  {
    name: 'search',
    synopsis: '<query>',
    summary: 'Search the indexed passages with the ranking ask uses (a question or keywords; "phrases", +word, NOT word), offline, no model.',
    options: [DB, SEARCH_LIMIT, ALL_WORDS, JSON_OUTPUT],
    positionals: true,
    examples: ['quire search "how do blocks reuse their KV?"', 'quire search "RoPE" -k 3 --all-words --json'],
    load: async () => (await import('./search.ts')).searchCommand,
  },
  {
    name: 'ask',
    synopsis: '<question>',
    summary: 'Answer a question from the indexed passages, reusing their stored KV; streams a cited answer.',
    options: [DB, MODEL, PROVIDER, KV_BUDGET, MODE, QUALITY, BOUNDARY, RETRIEVE_K, FOLDER, ANSWER_MAX_TOKENS, JSON_OUTPUT],
    positionals: true,
    examples: ['quire ask "What does the paper say about RoPE?"', 'quire ask "Who wrote the report?" -k 5 --json'],
    load: async () => (await import('./ask.ts')).askCommand,
  },
  {
    name: 'fidelity',
    synopsis: '',
    summary: "How far block attention moves the model's next-token distributions from full attention (KL, top-1 agreement) per quality mode, boundary recompute and KV codec.",
    options: [MODEL, PROVIDER, PROMPTS, DB, FIDELITY_MODE_LIST, BOUNDARY_LIST, CODEC_LIST, JSON_OUTPUT],
    positionals: false,
    examples: [
      'quire fidelity --model ~/models/stories260k --json',
      'quire fidelity --prompts prompts.jsonl --modes full,shared-prefix --boundary 0,16 --codecs float16,int8',
    ],
    load: async () => (await import('./fidelity.ts')).fidelityCommand,
  },
  {
    name: 'status',
    synopsis: '',
    summary: 'Where the data lives, the folders and their counts, the model, the KV budget, stored KV and coverage per folder.',
    options: [DB, JSON_OUTPUT],
    positionals: false,
    examples: ['quire status', 'quire status --json'],
    load: async () => (await import('./status.ts')).statusCommand,
  },
  {
    name: 'models',
    synopsis: 'list | download [ID] | use ID|DIR',
    summary: 'The curated models: list them, download one (resumable, verified), choose the one Quire uses.',
    options: [HUB, JSON_OUTPUT],
    positionals: true,
    examples: ['quire models list', 'quire models download qwen2.5-0.5b-instruct-q4f16', 'quire models use ~/models/my-onnx-model'],
    load: async () => (await import('./models.ts')).modelsCommand,
  },
  {
    name: 'serve',
    synopsis: '',
    summary: "The app's UI in a browser, over a 127.0.0.1 bridge with a per-run token, and the OpenAI-compatible API under /v1 on the same port; runs until interrupted.",
    options: [PORT, DB, withDefault(MODEL, `the app's model, else the one chosen with "quire models use"`), PROVIDER, KV_BUDGET, RENDERER, API_KEY],
    positionals: false,
    examples: ['quire serve', 'quire serve --port 8080 --provider cpu --kv-budget 500MB'],
    load: async () => (await import('./serve.ts')).serveCommand,
  },
  {
    name: 'generate',
    synopsis: '',
    summary: 'The engine alone: blocks prefilled separately, re-encoded, then the final block.',
    options: [MODEL, BLOCK, PROMPT, RAW, GENERATE_MAX_TOKENS, TEMPERATURE, TOP_P, TOP_K, SEED, MODE, PROVIDER, THREADS, JSON_OUTPUT],
    positionals: false,
    examples: ['quire generate --model DIR --block "Rivers run to the sea." --prompt "Where do rivers go?" --json'],
    load: async () => (await import('./generate.ts')).generateCommand,
  },
  {
    name: 'make-model',
    synopsis: '',
    summary: 'Write a seeded random model folder (tiny, or Qwen2.5-0.5B-shaped; any export style) for trying Quire offline and for benchmarks.',
    options: [OUT, SHAPE, MODEL_SEED, KV_DTYPE, STYLE],
    positionals: false,
    examples: [
      'quire make-model --out /tmp/tiny-model',
      'quire make-model --out /tmp/bench-model --shape bench --kv float16',
      'quire make-model --out /tmp/genai-model --style genai-fp16',
    ],
    load: async () => (await import('./make-model.ts')).makeModelCommand,
  },
];

export function findCommand(name: string): CommandSpec | undefined {
  return COMMANDS.find((c) => c.name === name);
}

export function usageLine(c: CommandSpec): string {
  return `quire ${c.name}${c.synopsis ? ` ${c.synopsis}` : ''} [options]`;
}

/** `quire <command> --help`. */
export function commandHelp(c: CommandSpec): string {
  return [
    `usage: ${usageLine(c)}`,
    '',
    c.summary,
    '',
    'options:',
    formatOptions(c.options),
    '',
    c.examples.length > 1 ? 'examples:' : 'example:',
    ...c.examples.map((e) => `  ${e}`),
    '',
  ].join('\n');
}

/** `quire --help`. */
export function mainHelp(): string {
  const width = Math.max(...COMMANDS.map((c) => c.name.length)) + 2;
  return [
    'usage: quire <command> [options]',
    '',
    'commands:',
    ...COMMANDS.map((c) => `  ${c.name.padEnd(width)}${c.summary}`),
    '',
    '"quire <command> --help" lists a command\'s options; "quire --version" prints the version.',
    '',
  ].join('\n');
}
