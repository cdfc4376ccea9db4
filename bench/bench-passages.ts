// The benchmarks' passages: K passages of about `blockTokens` tokens each (block text, title line
// included) made of seeded words, so every run and every bench gives the model the same prompt.
import type { Engine } from '../native-models/engine.ts';
import { seededRandom } from '../native-models/seeded-random.ts';
import { passageBlockText } from '../electron/answering/prompt-blocks.ts';
import type { RetrievedPassage } from '../electron/answering/retrieve.ts';

export function benchPassages(engine: Engine, k: number, blockTokens: number): RetrievedPassage[] {
  const random = seededRandom(5);
  const words = 'harbour storm keeper light ship sea evening wrote colour night wave rock tide sail north wind rain cliff lamp oil'.split(' ');
  return Array.from({ length: k }, (_, i) => {
    const title = `Document ${i + 1}`;
    let text = '';
    while (engine.tokenizer.encode(passageBlockText({ title, text })).length < blockTokens) {
      text += `${text ? ' ' : ''}${words[Math.floor(random() * words.length)]}`;
    }
    return { passageId: i + 1, documentId: i + 1, path: `/bench/doc${i + 1}.txt`, title, text, page: null, charStart: 0, charEnd: text.length, score: 1 };
  });
}

/** The question the benchmarks ask over those passages. */
export const BENCH_QUESTION = 'Which of these documents describes the harbour and what did the keeper write about the storm?';
