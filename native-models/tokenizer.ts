// The model's tokenizer (tokenizer.json through @huggingface/tokenizers) and streaming detokenization.
import { Tokenizer } from '@huggingface/tokenizers';
import type { ModelFolder } from './model-folder.ts';

export class TextTokenizer {
  private readonly tokenizer: Tokenizer;
  /** The BOS id when encoding with special tokens prepends one (Llama), else undefined (Qwen2). */
  readonly bosTokenId: number | undefined;
  readonly specialTokens: Map<number, string>;

  constructor(model: Pick<ModelFolder, 'tokenizerJson' | 'tokenizerConfig'>) {
    this.tokenizer = new Tokenizer(model.tokenizerJson, model.tokenizerConfig);
    this.specialTokens = new Map(
      [...this.tokenizer.get_added_tokens_decoder()].filter(([, t]) => t.special).map(([id, t]) => [id, t.content]),
    );
    // Learn whether a BOS is added by comparing encodings of the same text with and without special tokens.
    const withSpecial = this.tokenizer.encode('a').ids;
    const without = this.tokenizer.encode('a', { add_special_tokens: false }).ids;
    this.bosTokenId = withSpecial.length > without.length && this.specialTokens.has(withSpecial[0]) ? withSpecial[0] : undefined;
  }

  /** Token ids of a text; `bos` prepends the tokenizer's BOS when it uses one. No other special tokens are added. */
  encode(text: string, options: { bos?: boolean } = {}): number[] {
    const ids = this.tokenizer.encode(text, { add_special_tokens: false }).ids;
    return options.bos && this.bosTokenId !== undefined ? [this.bosTokenId, ...ids] : ids;
  }

  decode(ids: readonly number[], options: { skipSpecial?: boolean } = {}): string {
    return this.tokenizer.decode([...ids], { skip_special_tokens: options.skipSpecial ?? true });
  }

  tokenId(token: string): number | undefined {
    return this.tokenizer.token_to_id(token);
  }

  /** Text pieces for ids appended one by one, never splitting a multi-byte character. */
  streamDecoder(): { push(id: number): string; flush(): string } {
    const ids: number[] = [];
    let emitted = '';
    const diff = (final: boolean) => {
      const text = this.decode(ids);
      // An incomplete UTF-8 sequence decodes to U+FFFD: hold it back until its remaining bytes arrive.
      if (!final && text.endsWith('\uFFFD')) return '';
      const piece = text.startsWith(emitted) ? text.slice(emitted.length) : '';
      emitted = text;
      return piece;
    };
    return {
      push: (id) => {
        ids.push(id);
        return diff(false);
      },
      flush: () => diff(true),
    };
  }
}
