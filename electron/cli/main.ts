// The `quire` command line: one subcommand per file, loaded on demand and dispatched here; errors
// print one clear line.
import { UsageError } from './args.ts';

interface Command {
  usage: string;
  load: () => Promise<(argv: string[]) => Promise<void>>;
}

const commands: Record<string, Command> = {
  generate: {
    usage: 'quire generate --model DIR [--block TEXT]... --prompt TEXT [--raw] [--max-new-tokens N] [--temperature T] [--top-p P] [--top-k K] [--seed S] [--mode block|full] [--provider P] [--threads N] [--json]',
    load: async () => (await import('./generate.ts')).generateCommand,
  },
  index: {
    usage: 'quire index <folder>... [--db PATH] [--model DIR] [--no-kv] [--json] [--max-file-mb N]',
    load: async () => (await import('./index.ts')).indexCommand,
  },
  search: {
    usage: 'quire search <query> [--db PATH] [-k N] [--all-words] [--json]',
    load: async () => (await import('./search.ts')).searchCommand,
  },
  ask: {
    usage: 'quire ask <question> [--db PATH] [--model DIR|ID] [--mode block|full] [--quality shared-prefix|isolated] [--boundary K] [-k N] [--folder DIR] [--max-new-tokens N] [--provider P] [--json]',
    load: async () => (await import('./ask.ts')).askCommand,
  },
  models: {
    usage: 'quire models list|download [ID]|use ID|DIR [--hub-url URL] [--json]',
    load: async () => (await import('./models.ts')).modelsCommand,
  },
  'make-model': {
    usage: 'quire make-model --out DIR [--shape tiny|bench] [--seed S] [--kv float32|float16] [--style STYLE]',
    load: async () => (await import('./make-model.ts')).makeModelCommand,
  },
  serve: {
    usage: 'quire serve [--port P] [--db PATH] [--model DIR] [--renderer DIR]',
    load: async () => (await import('./serve.ts')).serveCommand,
  },
};

function usage(): string {
  return `usage:\n${Object.values(commands)
    .map((c) => `  ${c.usage}`)
    .join('\n')}\nevery command also takes --verbose: onnxruntime's and the GPU driver's warnings on stderr\n`;
}

async function main(args: string[]): Promise<number> {
  // --verbose (any position, any command) lets onnxruntime's and the GPU driver's warnings through;
  // set in the environment so the engine (and quire serve's engine worker) read it
  const argv = args.filter((a) => a !== '--verbose');
  if (argv.length !== args.length) process.env.QUIRE_VERBOSE = '1';
  const [name, ...rest] = argv;
  if (!name || name === '--help' || name === '-h' || name === 'help') {
    process.stdout.write(usage());
    return name ? 0 : 2;
  }
  const command = commands[name];
  if (!command) {
    process.stderr.write(`quire: unknown command "${name}"\n${usage()}`);
    return 2;
  }
  try {
    await (await command.load())(rest);
    return 0;
  } catch (e) {
    const err = e as Error & { code?: string };
    if (err.name === 'AbortError') {
      process.stderr.write('\nquire: cancelled\n');
      return 130;
    }
    const isUsage = e instanceof UsageError || err.code?.startsWith('ERR_PARSE_ARGS');
    process.stderr.write(`quire ${name}: ${err.message}\n${isUsage ? `usage: ${command.usage}\n` : ''}`);
    return isUsage ? 2 : 1;
  }
}

process.exitCode = await main(process.argv.slice(2));
