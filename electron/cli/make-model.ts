// `quire make-model`: write a seeded random decoder folder (tests, benchmarks, trying the app offline).
import { generateModel } from '../../test/tools/generate-model.ts';
import { benchSpec, tinySpec } from '../../test/tools/tiny-model-spec.ts';
import { UsageError } from './args.ts';
import { KV_DTYPE, MODEL_SEED, OUT, SHAPE, STYLE, type ParsedArgs } from './options.ts';

export async function makeModelCommand(args: ParsedArgs): Promise<void> {
  const out = args.get(OUT);
  if (!out) throw new UsageError('--out DIR is required');
  const shape = args.get(SHAPE);
  const kvDtype = args.get(KV_DTYPE);
  const overrides = { seed: args.get(MODEL_SEED), exportStyle: args.get(STYLE), ...(kvDtype ? { kvDtype } : {}) };
  const spec = shape === 'bench' ? benchSpec(overrides) : tinySpec(overrides);
  await generateModel(out, spec);
  process.stderr.write(`wrote ${shape} model to ${out}\n`);
}
