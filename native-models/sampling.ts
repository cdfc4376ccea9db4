// Choosing the next token from logits: greedy, or seeded temperature / top-k / top-p sampling.
import { seededRandom } from './seeded-random.ts';

export interface SamplingOptions {
  /** 0 (the default) picks the most likely token. */
  temperature?: number;
  /** Keep only the k most likely tokens; 0 keeps all. */
  topK?: number;
  /** Keep the smallest set of tokens whose probability reaches p; 1 keeps all. */
  topP?: number;
  /** Same seed, same logits: same choices. */
  seed?: number;
}

export type Sampler = (logits: Float32Array) => number;

export function argmax(logits: Float32Array): number {
  let best = 0;
  for (let i = 1; i < logits.length; i++) if (logits[i] > logits[best]) best = i;
  return best;
}

/** The k largest logits as [id, value] pairs, largest first. */
export function topLogits(logits: Float32Array, k: number): [number, number][] {
  const ids = Array.from(logits.keys()).sort((a, b) => logits[b] - logits[a] || a - b);
  return ids.slice(0, k).map((id) => [id, logits[id]]);
}

export function createSampler(options: SamplingOptions = {}): Sampler {
  const temperature = options.temperature ?? 0;
  if (temperature < 0 || !Number.isFinite(temperature)) throw new RangeError('temperature must be >= 0');
  if (temperature === 0) return argmax;
  const topK = options.topK ?? 0;
  const topP = options.topP ?? 1;
  if (topP <= 0 || topP > 1) throw new RangeError('topP must be in (0, 1]');
  const random = seededRandom(options.seed ?? Date.now());
  return (logits) => {
    let ids = Array.from(logits.keys()).sort((a, b) => logits[b] - logits[a] || a - b);
    if (topK > 0) ids = ids.slice(0, topK);
    const max = logits[ids[0]];
    let weights = ids.map((id) => Math.exp((logits[id] - max) / temperature));
    let sum = weights.reduce((a, b) => a + b, 0);
    if (topP < 1) {
      let mass = 0;
      let keep = 0;
      while (keep < ids.length && mass < topP * sum) mass += weights[keep++];
      ids = ids.slice(0, keep);
      weights = weights.slice(0, keep);
      sum = mass;
    }
    let r = random() * sum;
    for (let i = 0; i < ids.length; i++) {
      r -= weights[i];
      if (r < 0) return ids[i];
    }
    return ids[ids.length - 1];
  };
}
