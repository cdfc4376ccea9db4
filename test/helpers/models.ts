// Generated model folders for tests: written once per spec into a temp dir, removed by the caller.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { generateModel } from '../tools/generate-model.ts';
import type { TinyModelSpec } from '../tools/tiny-model-spec.ts';

export async function makeModelDir(spec: TinyModelSpec, prefix = 'quire-model-'): Promise<string> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), prefix));
  await generateModel(dir, spec);
  return dir;
}

export function removeDir(dir: string | undefined): void {
  if (dir) fs.rmSync(dir, { recursive: true, force: true });
}

/** Prose with enough variety that the generated BPE tokenizer yields many distinct ids. */
export const SAMPLE_TEXTS = [
  'The lighthouse keeper wrote every evening about storms, ships and the colour of the sea.',
  'Photosynthesis turns light, water and carbon dioxide into sugar and oxygen inside the leaf.',
  'In 1969 the first people walked on the Moon; millions watched the grainy pictures at home.',
  'A binary search halves the interval each step, so a million sorted keys need twenty probes.',
];

/** A small library for answering tests: file name -> its passages. */
export const ANSWER_DOCS: Record<string, string[]> = {
  'sea.md': [
    'The lighthouse keeper wrote every evening about storms, ships and the colour of the sea.',
    'Fishing boats returned before the storm; the harbour lights burned all night.',
  ],
  'plants.md': ['Photosynthesis turns light, water and carbon dioxide into sugar and oxygen inside the leaf.'],
  'moon.md': ['In 1969 the first people walked on the Moon; millions watched the grainy pictures at home.'],
};
