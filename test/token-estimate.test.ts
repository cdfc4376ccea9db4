// The token estimate used without a model (the CLI's index without --model, the app before a model is
// chosen). CJK text is about one token a character with real tokenizers (Qwen2.5, Llama 3), English
// about four characters a token; the app's former length/4 made CJK passages ~4x too long.
import { describe, expect, it } from 'vitest';
import { estimateTokens } from '../electron/indexing/token-estimate.ts';

const ENGLISH =
  'The lighthouse keeper wrote every evening about storms, ships and the colour of the sea. ' +
  'Fishing boats returned before the storm; the harbour lights burned all night.';
const CJK = '灯塔看守人每天晚上都会写下关于风暴、船只和大海颜色的文字。渔船在暴风雨来临之前返回，港口的灯光彻夜通明。';

describe('estimateTokens', () => {
  it('counts English at about four characters a token', () => {
    const n = estimateTokens(ENGLISH);
    expect(n).toBe(Math.ceil(ENGLISH.length / 4));
    expect(n).toBeGreaterThan(ENGLISH.split(/\s+/).length * 0.9); // at least about a token a word
  });

  it('counts CJK at one token a character, four times the length/4 guess', () => {
    expect(estimateTokens(CJK)).toBe(CJK.length);
    expect(estimateTokens(CJK)).toBeGreaterThanOrEqual(4 * Math.floor(CJK.length / 4));
  });

  it('counts other alphabets at two characters a token and astral characters once', () => {
    expect(estimateTokens('')).toBe(0);
    expect(estimateTokens('мир!')).toBe(2); // 3 Cyrillic at 1/2 + '!' at 1/4
    expect(estimateTokens('🙂🙂')).toBe(2); // surrogate pairs, one token each
  });

  it('never shrinks as the text grows (cutPassages relies on it)', () => {
    const text = `Hello мир ${CJK.slice(0, 5)} 🙂 done`;
    let previous = 0;
    for (let i = 1; i <= text.length; i++) {
      const n = estimateTokens(text.slice(0, i));
      expect(n).toBeGreaterThanOrEqual(previous);
      previous = n;
    }
  });
});
