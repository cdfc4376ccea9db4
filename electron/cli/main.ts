// The `quire` command line: finds the subcommand (commands.ts), parses its options against its table
// (options.ts) before loading it, answers --help and --version, and turns errors into one clear line
// and an exit code: 0 done, 1 failed, 2 usage error, 130 interrupted.
import { UsageError } from './args.ts';
import { commandHelp, findCommand, mainHelp, usageLine } from './commands.ts';
import { parseOptions } from './options.ts';
import { QUIRE_VERSION } from './version.ts';

async function main(argv: string[]): Promise<number> {
  const [name, ...rest] = argv;
  if (name === '--version' || name === '-V') {
    process.stdout.write(`${QUIRE_VERSION}\n`);
    return 0;
  }
  if (!name || name === '--help' || name === '-h' || name === 'help') {
    const topic = name === 'help' && rest[0] ? findCommand(rest[0]) : undefined;
    (name ? process.stdout : process.stderr).write(topic ? commandHelp(topic) : mainHelp());
    return name ? 0 : 2;
  }
  const command = findCommand(name);
  if (!command) {
    process.stderr.write(`quire: unknown command "${name}"\n${mainHelp()}`);
    return 2;
  }
  try {
    const args = parseOptions(rest, command.options, command.positionals);
    if (args.help) {
      process.stdout.write(commandHelp(command));
      return 0;
    }
    // --verbose lets onnxruntime's and the GPU driver's warnings through: set in the environment,
    // before the command loads, so the engine (native-models/session.ts) and quire serve's engine
    // worker read it
    if (args.verbose) process.env.QUIRE_VERBOSE = '1';
    await (await command.load())(args);
    return 0;
  } catch (e) {
    const err = e as Error & { code?: string };
    if (err.name === 'AbortError') {
      process.stderr.write('\nquire: cancelled\n');
      return 130;
    }
    const isUsage = e instanceof UsageError || err.code?.startsWith('ERR_PARSE_ARGS');
    process.stderr.write(`quire ${name}: ${err.message}\n${isUsage ? `usage: ${usageLine(command)} (quire ${name} --help for more)\n` : ''}`);
    return isUsage ? 2 : 1;
  }
}

process.exitCode = await main(process.argv.slice(2));
