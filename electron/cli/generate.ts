// `quire generate`: run the engine on block texts and a final prompt, streaming or as one JSON object.
import { Engine } from '../../native-models/engine.ts';
import { providerChoicePath, quireHome } from '../app-paths.ts';
import { resolveModelDir } from '../models/catalog.ts';
import { providerOption } from './app-defaults.ts';
import { UsageError } from './args.ts';
import {
  BLOCK,
  GENERATE_MAX_TOKENS,
  JSON_OUTPUT,
  MODE,
  MODEL,
  PROMPT,
  RAW,
  SEED,
  TEMPERATURE,
  THREADS,
  TOP_K,
  TOP_P,
  type ParsedArgs,
} from './options.ts';

export async function generateCommand(args: ParsedArgs): Promise<void> {
  const prompt = args.get(PROMPT);
  if (prompt === undefined) throw new UsageError('--prompt TEXT is required');
  const home = quireHome();
  const engine = await Engine.load(resolveModelDir(args.get(MODEL)), {
    provider: providerOption(args, home),
    threads: args.get(THREADS),
    providerCache: providerChoicePath(home),
  });
  const controller = new AbortController();
  process.once('SIGINT', () => controller.abort());
  const json = args.has(JSON_OUTPUT);
  if (!json) process.stderr.write(`provider: ${engine.provider} (${engine.runner.providerReason})\n`);
  const result = await engine.generate({
    blocks: args.all(BLOCK),
    prompt,
    raw: args.has(RAW),
    mode: args.get(MODE),
    maxNewTokens: args.get(GENERATE_MAX_TOKENS),
    sampling: { temperature: args.get(TEMPERATURE), topP: args.get(TOP_P), topK: args.get(TOP_K), seed: args.get(SEED) },
    signal: controller.signal,
    onText: json ? undefined : (piece) => process.stdout.write(piece),
  });
  await engine.release();
  if (json) {
    const { promptTokenIds, tokenIds, text, ttftMs, mode, provider, topLogits } = result;
    const providerReason = engine.runner.providerReason;
    process.stdout.write(`${JSON.stringify({ promptTokenIds, tokenIds, text, ttftMs, mode, provider, providerReason, topLogits })}\n`);
  } else {
    process.stdout.write('\n');
    process.stderr.write(
      `${result.mode} mode, ${result.promptTokenIds.length} prompt tokens, TTFT ${result.ttftMs.toFixed(1)} ms, ` +
        `${result.tokenIds.length} tokens${result.tokensPerSecond === null ? '' : ` at ${result.tokensPerSecond.toFixed(1)} tok/s`} (${result.stopReason})\n`,
    );
  }
}
