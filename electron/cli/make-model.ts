// `quire make-model`: write a seeded random decoder folder (tests, benchmarks, trying the app offline).
import { parseArgs } from 'node:util';
import { EXPORT_STYLES, type ExportStyleId } from '../../native-models/export-style.ts';
import { generateModel } from '../../test/tools/generate-model.ts';
import { benchSpec, tinySpec } from '../../test/tools/tiny-model-spec.ts';
import { choiceOption, numberOption, UsageError } from './args.ts';


export async function makeModelCommand(argv: string[]): Promise<void> {
  const { values } = parseArgs({
    args: argv,
    options: { out: { type: 'string' }, shape: { type: 'string' }, seed: { type: 'string' }, kv: { type: 'string' }, style: { type: 'string' } },
    strict: true,
  });
  if (!values.out) throw new UsageError('--out DIR is required');
  const shape = choiceOption(values.shape, 'shape', ['tiny', 'bench'] as const) ?? 'tiny';
  const overrides = {
    seed: numberOption(values.seed, 'seed', Number.isInteger) ?? 1,
    ...(values.kv ? { kvDtype: choiceOption(values.kv, 'kv', ['float32', 'float16'] as const) } : {}),
    // the graph layout, weight format and activation type of an exporter (native-models/export-style.ts)
    ...(values.style ? { exportStyle: choiceOption(values.style, 'style', Object.keys(EXPORT_STYLES) as ExportStyleId[]) } : {}),
  };
  const spec = shape === 'bench' ? benchSpec(overrides) : tinySpec(overrides);
  await generateModel(values.out, spec);
  process.stderr.write(`wrote ${shape} model to ${values.out}\n`);
}
