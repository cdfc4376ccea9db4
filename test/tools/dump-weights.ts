// Writes what transformers-reference.py needs to recompute the "agreement with transformers" pins of
// reference.test.ts on its own: for each case of transformers-cases.ts, the Hugging Face config.json
// of the spec, buildWeights(spec) exactly as the generator and referenceForward use them, the input,
// the pinned logits, and referenceForward's logits, keys and values to compare against.
//
//   npx tsx test/tools/dump-weights.ts OUT.json
//
// Arrays are base64 of their little-endian bytes (float32 weights, float64 results); weight matrices
// keep buildWeights' [in, out] row-major layout, and the script transposes them to torch's [out, in].
import { writeFileSync } from 'node:fs';
import { blockMask, referenceForward } from './reference.ts';
import { buildWeights, specToHfConfig, tinySpec } from './tiny-model-spec.ts';
import { TRANSFORMERS_CASES, TRANSFORMERS_INPUT } from './transformers-cases.ts';

const out = process.argv[2];
if (!out) {
  console.error('usage: npx tsx test/tools/dump-weights.ts OUT.json');
  process.exit(2);
}

const base64 = (a: Float32Array | Float64Array) => Buffer.from(a.buffer, a.byteOffset, a.byteLength).toString('base64');

const { ids, positions, blockLengths } = TRANSFORMERS_INPUT;
const cases = TRANSFORMERS_CASES.map(({ name, overrides, pinned }) => {
  const spec = tinySpec(overrides);
  const weights = buildWeights(spec);
  const reference = referenceForward(spec, weights, ids, positions, blockMask(blockLengths));
  return {
    name,
    config: specToHfConfig(spec),
    weights: {
      embed: base64(weights.embed),
      layers: weights.layers.map((layer) =>
        Object.fromEntries(Object.entries(layer).map(([key, value]) => [key, base64(value as Float32Array)])),
      ),
      finalNorm: base64(weights.finalNorm),
      lmHead: base64(weights.lmHead),
    },
    pinned,
    reference: {
      logits: reference.logits.map(base64),
      keys: reference.keys.map(base64),
      values: reference.values.map(base64),
    },
  };
});

writeFileSync(out, JSON.stringify({ input: TRANSFORMERS_INPUT, cases }));
console.log(`wrote ${cases.length} cases to ${out}`);
