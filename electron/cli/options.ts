// The command line's options as one table: each option is defined once (name, value placeholder,
// one line of meaning, default, and the parser that turns its text into a typed value), and each
// subcommand lists the ones it takes (commands.ts). node:util's parseArgs and --help are both made
// from those lists, so help cannot miss an option the parser accepts, and an option means the same
// in every subcommand that takes it. Values are checked when parsed: a bad one is a usage error
// (exit 2) before any work starts.
//
// Kept free of heavy imports: `quire <command> --help` and option errors never load a model runtime.
import { parseArgs } from 'node:util';
import { DEFAULT_KV_BUDGET_BYTES } from '../../db/kv-store.ts';
import { ATTENTION_MODES } from '../../native-models/attention-modes.ts';
import { EXPORT_STYLES, type ExportStyleId } from '../../native-models/export-style.ts';
import { PROVIDER_CHOICES } from '../../native-models/provider-names.ts';
import { FIDELITY_CODECS, FIDELITY_MODES } from '../answering/fidelity-names.ts';
import { QUALITY_MODES } from '../answering/quality-mode-names.ts';
import { DEFAULT_TOP_K } from '../answering/retrieve.ts';
import { formatByteSize, parseByteSize, SIZE_EXAMPLES } from '../byte-size.ts';
import { apiKeySchema } from '../contract/schemas.ts';
import { DEFAULT_MODEL_ID } from '../models/catalog.ts';
import { UsageError } from './args.ts';

interface OptionBase {
  /** Long name: --name. */
  name: string;
  /** One letter: -x. */
  short?: string;
  /** One line of meaning, for --help. */
  help: string;
  /** What applies when the option is absent, as --help says it; omitted for options off by default. */
  defaultText?: string;
}

export interface FlagOption extends OptionBase {
  kind: 'flag';
}

export interface ValueOption<T = unknown> extends OptionBase {
  kind: 'value';
  /** Stands for the value in help: PATH, N, SIZE... */
  placeholder: string;
  /** May be given several times (values kept in order). */
  multiple?: boolean;
  /** The typed value of the text; throws with a message that says what is accepted. */
  parse: (text: string) => T;
  /** The value when absent, when it is a constant (defaultText is then made from it unless given). */
  fallback?: T;
}

export type OptionSpec = FlagOption | ValueOption;

const flag = (name: string, help: string, extra: Partial<FlagOption> = {}): FlagOption => ({ kind: 'flag', name, help, ...extra });

function value<T>(
  name: string,
  placeholder: string,
  help: string,
  parse: (text: string) => T,
  extra: Partial<ValueOption<NoInfer<T>>> = {},
): ValueOption<T> {
  const spec: ValueOption<T> = { kind: 'value', name, placeholder, help, parse, ...extra };
  if (spec.defaultText === undefined && spec.fallback !== undefined) spec.defaultText = String(spec.fallback);
  return spec;
}

/** The same option with another default (e.g. --model: index loads none unless given). */
export function withDefault<O extends OptionSpec>(option: O, defaultText: string): O {
  return { ...option, defaultText };
}

// ---- value parsers: each throws a message naming what it accepts --------------------------------

const text = (s: string): string => s;

function integer(range: { min: number; max?: number }): (s: string) => number {
  return (s) => {
    const n = Number(s);
    const inRange = Number.isInteger(n) && n >= range.min && (range.max === undefined || n <= range.max);
    if (s.trim() === '' || !inRange) {
      throw new Error(`"${s}" is not an integer ${range.max === undefined ? `>= ${range.min}` : `from ${range.min} to ${range.max}`}`);
    }
    return n;
  };
}

function decimal(ok: (n: number) => boolean, accepted: string): (s: string) => number {
  return (s) => {
    const n = Number(s);
    if (s.trim() === '' || !Number.isFinite(n) || !ok(n)) throw new Error(`"${s}" is not ${accepted}`);
    return n;
  };
}

function oneOf<T extends string>(choices: readonly T[]): (s: string) => T {
  return (s) => {
    if (!choices.includes(s as T)) throw new Error(`must be one of ${choices.join(', ')} (got "${s}")`);
    return s as T;
  };
}

/** A comma-separated list of values, each read by `item`; repeats dropped, order kept. */
function listOf<T>(item: (s: string) => T): (s: string) => T[] {
  return (s) => {
    const parts = s.split(',').map((p) => p.trim());
    if (parts.some((p) => p === '')) throw new Error(`"${s}" is not a comma-separated list (an item is empty)`);
    return [...new Set(parts.map(item))];
  };
}

// ---- the options --------------------------------------------------------------------------------

export const HELP = flag('help', 'show this help and exit', { short: 'h' });
// main.ts turns it into QUIRE_VERBOSE=1, which native-models/session.ts reads (and quire serve's engine worker inherits)
export const VERBOSE = flag('verbose', "onnxruntime's and the GPU driver's warnings on stderr (otherwise only errors)");
export const JSON_OUTPUT = flag('json', 'print one JSON object on stdout instead of text');

export const DB = value('db', 'PATH', "the database file; the app-settings.json beside it applies", text, {
  defaultText: '<data dir>/quire.db, where QUIRE_HOME sets the data dir',
});
export const MODEL = value('model', 'DIR|ID', 'a model folder, or a catalog id from "quire models list"', text, {
  defaultText: `the model chosen with "quire models use", else ${DEFAULT_MODEL_ID}`,
});
export const PROVIDER = value('provider', 'P', `execution provider: ${PROVIDER_CHOICES.join(', ')} (auto: a real GPU only where it is faster on the model, else cpu)`, oneOf(PROVIDER_CHOICES), {
  defaultText: "the app's setting, else auto",
});
export const KV_BUDGET = value(
  'kv-budget',
  'SIZE',
  `most bytes of passage KV kept stored (least recently used evicted), e.g. ${SIZE_EXAMPLES}`,
  parseByteSize,
  { defaultText: `the app's setting, else ${formatByteSize(DEFAULT_KV_BUDGET_BYTES)}` },
);

// index
export const NO_KV = flag('no-kv', 'with --model: count tokens with its tokenizer but prefill no passage KV');
export const MAX_FILE_MB = value('max-file-mb', 'N', 'skip files larger than N MiB (unread)', decimal((n) => n > 0, 'a number of MiB > 0'), {
  defaultText: '50',
});

// search
export const SEARCH_LIMIT = value('k', 'N', 'how many passages to list', integer({ min: 1 }), { short: 'k', fallback: 10 });
export const ALL_WORDS = flag('all-words', 'list only passages with every content word of the query (as AND between words does)');

// ask
export const RETRIEVE_K = value('k', 'N', 'how many passages to retrieve and give the model', integer({ min: 1 }), {
  short: 'k',
  fallback: DEFAULT_TOP_K,
});
export const FOLDER = value('folder', 'DIR', 'only passages from this indexed folder', text, { defaultText: 'every folder' });
export const MODE = value('mode', 'block|full', 'block: stored passage KV + the question only; full: one causal prefill of everything', oneOf(ATTENTION_MODES), {
  fallback: 'block',
});
export const QUALITY = value('quality', 'Q', `how passage blocks are computed: ${QUALITY_MODES.join(', ')}`, oneOf(QUALITY_MODES), {
  defaultText: 'isolated for block fine-tuned models, else shared-prefix',
});
export const BOUNDARY = value('boundary', 'K', 'recompute the first K tokens of each passage block at question time', integer({ min: 0 }), {
  fallback: 0,
});
export const ANSWER_MAX_TOKENS = value('max-new-tokens', 'N', 'longest answer, in tokens', integer({ min: 1 }), { fallback: 256 });

// generate
export const BLOCK = value('block', 'TEXT', 'a block prefilled on its own (repeat for several, in order)', text, {
  multiple: true,
  defaultText: 'none',
});
export const PROMPT = value('prompt', 'TEXT', 'the final block: the text the model answers (required)', text);
export const RAW = flag('raw', 'use the texts as written, without the chat template');
export const GENERATE_MAX_TOKENS = value('max-new-tokens', 'N', 'most tokens to generate', integer({ min: 0 }), { fallback: 128 });
export const TEMPERATURE = value('temperature', 'T', 'sampling temperature; 0 is greedy', decimal((n) => n >= 0, 'a number >= 0'), { fallback: 0 });
export const TOP_P = value('top-p', 'P', 'nucleus sampling: keep the likeliest tokens up to this mass', decimal((n) => n > 0 && n <= 1, 'a number in (0, 1]'), {
  fallback: 1,
});
export const TOP_K = value('top-k', 'K', 'sample among the K likeliest tokens; 0 is all', integer({ min: 0 }), { fallback: 0 });
export const SEED = value('seed', 'S', 'random seed for sampling (same seed, same text)', integer({ min: -(2 ** 53) + 1 }), {
  defaultText: 'the clock',
});
export const THREADS = value('threads', 'N', "onnxruntime's intra-op threads; 0 lets it choose", integer({ min: 0 }), { fallback: 0 });

// fidelity
export const PROMPTS = value('prompts', 'FILE', 'a JSONL file, one {"blocks": [text, ...], "question": text} a line (blocks[0]: the instruction block)', text, {
  defaultText: 'built-in: short stories for a model without a chat template, else questions made from the library in --db',
});
export const FIDELITY_MODE_LIST = value('modes', 'LIST', `the modes to measure, comma-separated: ${FIDELITY_MODES.join(', ')}`, listOf(oneOf(FIDELITY_MODES)), {
  fallback: [...FIDELITY_MODES],
});
export const CODEC_LIST = value('codecs', 'LIST', `the stored KV codecs to measure, comma-separated: ${FIDELITY_CODECS.join(', ')} (none: KV as computed)`, listOf(oneOf(FIDELITY_CODECS)), {
  fallback: [...FIDELITY_CODECS],
});
export const BOUNDARY_LIST = value('boundary', 'LIST', 'boundary recompute sizes K to measure, comma-separated (0: none)', listOf(integer({ min: 0 })), {
  fallback: [0],
});

// models
export const HUB = value('hub-url', 'URL', 'the model hub to download from', text, { defaultText: '$HF_ENDPOINT, else https://huggingface.co' });

// make-model
export const OUT = value('out', 'DIR', 'the folder to write the model into (required)', text);
export const SHAPE = value('shape', 'tiny|bench', "tiny, or Qwen2.5-0.5B's shape for benchmarks", oneOf(['tiny', 'bench'] as const), { fallback: 'tiny' });
export const MODEL_SEED = value('seed', 'S', 'seed of the random weights', integer({ min: -(2 ** 53) + 1 }), { fallback: 1 });
export const KV_DTYPE = value('kv', 'float32|float16', "the model's KV dtype", oneOf(['float32', 'float16'] as const), {
  defaultText: 'float16 for bench or a float16 --style, else float32',
});
const EXPORT_STYLE_IDS = Object.keys(EXPORT_STYLES) as ExportStyleId[];
// the graph layout, weight format and activation type of an exporter (native-models/export-style.ts)
export const STYLE = value('style', 'STYLE', `the exporter whose graph to write: ${EXPORT_STYLE_IDS.join(', ')}`, oneOf(EXPORT_STYLE_IDS), {
  fallback: 'optimum-fp32',
});

// serve
export const PORT = value('port', 'P', 'the port on 127.0.0.1; 0 picks a free one', integer({ min: 0, max: 65535 }), { fallback: 0 });
export const RENDERER = value('renderer', 'DIR', 'the built renderer to serve', text, { defaultText: 'dist/renderer of this checkout' });

/** An API key as the contract takes it (the same rule as the app's Settings); also checks QUIRE_API_KEY. */
export function apiKeyText(s: string): string {
  if (!apiKeySchema.safeParse(s).success) throw new Error('a key is 16 to 256 printable ASCII characters without spaces');
  return s;
}
export const API_KEY = value('api-key', 'KEY', 'the key clients of the OpenAI-compatible API (/v1) send as a bearer token; not echoed', apiKeyText, {
  defaultText: '$QUIRE_API_KEY, else one generated and printed',
});

/** Options every subcommand takes. */
export const COMMON_OPTIONS: readonly OptionSpec[] = [VERBOSE, HELP];

// ---- parsing --------------------------------------------------------------------------------------

/** What a subcommand was given: typed option values and the positional arguments. */
export class ParsedArgs {
  constructor(
    /** Names of the options this command lists (its table), common ones included. */
    private readonly accepted: ReadonlySet<string>,
    /** Option name -> its values, parsed, in the order given. */
    private readonly values: ReadonlyMap<string, unknown>,
    readonly positionals: readonly string[],
  ) {}

  private check(option: OptionSpec): void {
    // a command reading an option it does not list would read an option --help does not show
    if (!this.accepted.has(option.name)) throw new Error(`internal: --${option.name} is not in this command's option table`);
  }

  /** The option's value (the last one when given twice), its constant default, or undefined. */
  get<T>(option: ValueOption<T>): T | undefined {
    this.check(option);
    const v = this.values.get(option.name) as T[] | undefined;
    return v === undefined ? option.fallback : v[v.length - 1];
  }

  /** Every value of a repeatable option, in order. */
  all<T>(option: ValueOption<T>): T[] {
    this.check(option);
    return [...((this.values.get(option.name) as T[] | undefined) ?? [])];
  }

  has(option: FlagOption): boolean {
    this.check(option);
    return this.values.get(option.name) === true;
  }

  /** --verbose (main.ts turns it into QUIRE_VERBOSE=1 before the command loads). */
  get verbose(): boolean {
    return this.values.get(VERBOSE.name) === true;
  }

  get help(): boolean {
    return this.values.get(HELP.name) === true;
  }
}

/** The node:util parseArgs options object for a list of specs (what the parser accepts). */
export function parseArgsOptions(options: readonly OptionSpec[]): Record<string, { type: 'string' | 'boolean'; short?: string; multiple?: boolean }> {
  const out: Record<string, { type: 'string' | 'boolean'; short?: string; multiple?: boolean }> = {};
  for (const o of options) {
    if (out[o.name]) throw new Error(`internal: --${o.name} listed twice`);
    out[o.name] = { type: o.kind === 'flag' ? 'boolean' : 'string', ...(o.short ? { short: o.short } : {}), multiple: o.kind === 'value' };
  }
  return out;
}

/** Parses argv against `options` (COMMON_OPTIONS added); unknown options and bad values are UsageErrors. */
export function parseOptions(argv: readonly string[], options: readonly OptionSpec[], allowPositionals: boolean): ParsedArgs {
  const all = [...options, ...COMMON_OPTIONS];
  let parsed: ReturnType<typeof parseArgs>;
  try {
    parsed = parseArgs({ args: [...argv], options: parseArgsOptions(all), allowPositionals, strict: true });
  } catch (e) {
    throw new UsageError((e as Error).message);
  }
  const values = new Map<string, unknown>();
  for (const o of all) {
    const raw = parsed.values[o.name];
    if (raw === undefined) continue;
    if (o.kind === 'flag') {
      values.set(o.name, raw === true);
      continue;
    }
    // every value is checked; a single-valued option given twice takes the last (scripts append overrides)
    const texts = raw as string[];
    values.set(
      o.name,
      texts.map((t) => {
        try {
          return o.parse(t);
        } catch (e) {
          throw new UsageError(`--${o.name}: ${(e as Error).message}`);
        }
      }),
    );
  }
  return new ParsedArgs(new Set(all.map((o) => o.name)), values, parsed.positionals);
}

// ---- help -------------------------------------------------------------------------------------

/** "  -k, --k N" : the left column of an option's help line. */
export function optionSynopsis(o: OptionSpec): string {
  const names = `${o.short ? `-${o.short}, ` : '    '}--${o.name}`;
  return o.kind === 'value' ? `${names} ${o.placeholder}${o.multiple ? '...' : ''}` : names;
}

/** The options block of --help: one line each, meaning then default. */
export function formatOptions(options: readonly OptionSpec[]): string {
  const all = [...options, ...COMMON_OPTIONS];
  const width = Math.max(...all.map((o) => optionSynopsis(o).length)) + 2;
  return all
    .map((o) => `  ${optionSynopsis(o).padEnd(width)}${o.help}${o.defaultText !== undefined ? ` (default: ${o.defaultText})` : ''}`)
    .join('\n');
}
