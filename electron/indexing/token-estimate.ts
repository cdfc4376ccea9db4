// The one token estimate used where no model's tokenizer is loaded (the CLI's index without --model,
// the app before a model is chosen): passages are cut to a token target, and a CJK passage estimated
// at a quarter token a character would come out about 4x too long once a real tokenizer reads it.

/**
 * Token count without a model's tokenizer: about 4 characters per token for Latin script and
 * whitespace, 2 for other alphabets (Greek, Cyrillic, Arabic...), 1 per character for CJK and
 * other scripts past U+2E80. Grows with the text, as cutPassages requires.
 */
export function estimateTokens(text: string): number {
  let units = 0; // quarter tokens
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c < 0x0370) units += 1;
    else if (c < 0x2e80) units += 2;
    else if (c >= 0xdc00 && c < 0xe000) continue; // low surrogate: counted with its high half
    else units += 4;
  }
  return Math.ceil(units / 4);
}
