// `quire generate`: run the engine on block texts and a final prompt, streaming or as one JSON object.
import { parseArgs } from 'node:util';
import { Engine } from '../../native-models/engine.ts';
import { providerChoicePath } from '../app-paths.ts';
import { ATTENTION_MODES } from '../../native-models/attention-modes.ts';
import { PROVIDER_CHOICES } from '../../native-models/provider-names.ts';
import { choiceOption, numberOption, UsageError } from './args.ts';

export async function generateCommand(argv: string[]): Promise<void> {
  const { values } = parseArgs({
    args: argv,
    options: {
      model: { type: 'string' },
      block: { type: 'string', multiple: true },
      prompt: { type: 'string' },
      raw: { type: 'boolean' },
      'max-new-tokens': { type: 'string' },
      temperature: { type: 'string' },
      'top-p': { type: 'string' },
      'top-k': { type: 'string' },
      seed: { type: 'string' },
      mode: { type: 'string' },
      provider: { type: 'string' },
      threads: { type: 'string' },
      json: { type: 'boolean' },
    },
    strict: true,
  });
  if (!values.model) throw new UsageError('--model DIR is required');
  if (values.prompt === undefined) throw new UsageError('--prompt TEXT is required');
  const engine = await Engine.load(values.model, {
    provider: choiceOption(values.provider, 'provider', PROVIDER_CHOICES),
    threads: numberOption(values.threads, 'threads', (n) => Number.isInteger(n) && n >= 0),
    providerCache: providerChoicePath(),
  });
  const controller = new AbortController();
  process.once('SIGINT', () => controller.abort());
  const json = values.json ?? false;
  if (!json) process.stderr.write(`provider: ${engine.provider} (${engine.runner.providerReason})\n`);
  const result = await engine.generate({
    blocks: values.block ?? [],
    prompt: values.prompt,
    raw: values.raw,
    mode: choiceOption(values.mode, 'mode', ATTENTION_MODES),
    maxNewTokens: numberOption(values['max-new-tokens'], 'max-new-tokens', (n) => Number.isInteger(n) && n >= 0) ?? 128,
    sampling: {
      temperature: numberOption(values.temperature, 'temperature', (n) => n >= 0),
      topP: numberOption(values['top-p'], 'top-p', (n) => n > 0 && n <= 1),
      topK: numberOption(values['top-k'], 'top-k', (n) => Number.isInteger(n) && n >= 0),
      seed: numberOption(values.seed, 'seed', Number.isInteger),
    },
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
