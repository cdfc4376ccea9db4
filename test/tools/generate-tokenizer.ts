// Writes a GPT-2 style byte-level BPE tokenizer (tokenizer.json + tokenizer_config.json) for a tiny
// model. Its merges are learned by a small deterministic BPE trainer over an embedded English text,
// so ordinary prose tokenizes into a realistic number of tokens and the files are identical on
// every run.
import { mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import type { TinyModelSpec } from './tiny-model-spec.ts';

/** Fixed ids, in this order, before the 256 byte tokens. */
export const SPECIAL_TOKENS = ['<|endoftext|>', '<s>', '<|im_end|>', '<|im_start|>'] as const;
export const PAD_TOKEN_ID = 0;
export const BOS_TOKEN_ID = 1;
export const EOS_TOKEN_ID = 2;
const BYTE_TOKENS_START = SPECIAL_TOKENS.length;
const MERGES_START = BYTE_TOKENS_START + 256;

/**
 * ChatML (`<|im_start|>role\n...<|im_end|>\n`); a tokenizer with a BOS token gets it at the start of
 * the rendered text, as Llama 3's template does, so the text is tokenized without special tokens.
 */
export const CHATML_TEMPLATE = [
  '{%- if bos_token %}{{ bos_token }}{% endif %}',
  '{%- for message in messages %}',
  "{{ '<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>' + '\\n' }}",
  '{%- endfor %}',
  "{%- if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{%- endif %}",
].join('');

// GPT-2's pre-tokenization pattern, the one the ByteLevel pre-tokenizer applies with use_regex true.
const PRE_TOKENIZE = /'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+/gu;

const TRAINING_TEXT = `The old library stood at the corner of the market square, and every morning the librarian
opened its heavy doors before the first bells rang. People came for many reasons. Some wanted a
quiet place to read the newspaper, some wanted to find the answer to a question that had troubled
them for days, and some simply wanted to sit near the warm windows while the rain fell outside.

Over the years the collection had grown far beyond the shelves that were built for it. Books were
stacked on tables, on chairs and on the floor of the reading room. Maps of rivers and mountains
were rolled into tubes and kept in a cabinet near the stairs. Letters written by travellers, notes
from old meetings, recipes for bread and soup, and reports about the weather of forgotten winters
were kept in boxes with handwritten labels. Nobody could remember where everything was, and the
librarian often said that the hardest part of the work was not keeping the books but finding them.

One autumn a student offered to help. She proposed to write a short summary of every document and
to keep a list of the important words in each one. When a visitor asked a question, she would look
at the list, choose the few documents that seemed most relevant, and read only those before giving
an answer. The librarian was doubtful at first. A summary can miss the detail that matters, he
said, and a list of words does not understand what a question means. But the student was patient.
She tested her method on questions whose answers they already knew, and she counted how often the
right document was among the first ten that her list suggested.

The results were better than either of them expected. For simple questions about dates, names and
places, the right document was almost always found. For questions that needed two or three pieces
of information, the method worked less well, because the documents that held each piece did not
share the same words. So the student changed the way she read. Instead of reading the chosen
documents one after another, she placed them side by side on a long table and read them together
with the question in mind, remembering what each one said before she wrote her answer.

Reading the same documents again and again took a lot of time. Many visitors asked about the same
topics: the history of the bridge, the price of grain in the year of the great flood, the names of
the ships that had left the harbour in spring. The student noticed that she was reading the same
pages every week, and that most of her effort went into reading rather than thinking. She began to
keep notes on each document that she could reuse. A note did not depend on the question; it only
described what the document contained, in the order in which it was written. When a new question
arrived, she laid out the notes of the chosen documents, read the question carefully, and wrote the
answer while looking at all of them at once. Her answers came much faster, and they were almost as
good as before.

There were problems, of course. A note written for one document knew nothing about the documents
that would lie next to it on the table. Sometimes two documents disagreed, and only by reading them
together could one see which was right. The student learned to check the first lines of each
document again whenever she placed it beside others, because the beginning of a text often depends
on what came before it. She also learned that the order of the documents mattered less than she had
feared, as long as she knew where each one started and ended.

In the evenings the librarian and the student talked about what they had learned. He admitted that
the notes had changed the library. Visitors no longer waited for hours. Questions that used to take
a week were answered in an afternoon. The shelves were still crowded and the floor was still covered
with boxes, but the knowledge inside them was easier to reach. The student, for her part, said that
the most useful lesson was a simple one: keep the work that does not change, and spend your effort
only on what is new. Then she went back to the long table, where a farmer was waiting with a
question about the rain, the river and the price of seed for the coming year.
`;

/** GPT-2's reversible map from bytes to printable characters (so no token contains a space or control byte). */
function byteToUnicode(): string[] {
  const printable = (b: number) => (b >= 0x21 && b <= 0x7e) || (b >= 0xa1 && b <= 0xac) || (b >= 0xae && b <= 0xff);
  const chars: string[] = [];
  let next = 256;
  for (let b = 0; b < 256; b++) chars.push(String.fromCodePoint(printable(b) ? b : next++));
  return chars;
}

/**
 * Learns merges until they have produced `newTokens` distinct tokens. Each step merges the most
 * frequent adjacent pair over the words of the text (ties: the lexicographically smallest pair), like
 * the Hugging Face BPE trainer; it stops early when every word is a single symbol. Two merges can
 * produce the same token ("ab"+"c" and "a"+"bc"), hence tokens are counted, not merges.
 */
function trainMerges(text: string, newTokens: number): [string, string][] {
  const byteChars = byteToUnicode();
  const encoder = new TextEncoder();
  const frequency = new Map<string, number>();
  for (const word of text.match(PRE_TOKENIZE) ?? []) {
    const symbols = Array.from(encoder.encode(word), (b) => byteChars[b]).join('\u0000');
    frequency.set(symbols, (frequency.get(symbols) ?? 0) + 1);
  }
  const words = [...frequency].map(([symbols, freq]) => ({ symbols: symbols.split('\u0000'), freq }));
  const merges: [string, string][] = [];
  const produced = new Set<string>();
  while (produced.size < newTokens) {
    // byte-level symbols never contain a space, so "left right" identifies a pair
    const pairCounts = new Map<string, number>();
    for (const { symbols, freq } of words) {
      for (let i = 0; i + 1 < symbols.length; i++) {
        const key = `${symbols[i]} ${symbols[i + 1]}`;
        pairCounts.set(key, (pairCounts.get(key) ?? 0) + freq);
      }
    }
    let best: string | undefined;
    let bestCount = 0;
    for (const [key, n] of pairCounts) {
      if (n > bestCount || (n === bestCount && best !== undefined && key < best)) {
        best = key;
        bestCount = n;
      }
    }
    if (best === undefined) break;
    const [left, right] = best.split(' ') as [string, string];
    merges.push([left, right]);
    produced.add(left + right);
    for (const word of words) {
      const merged: string[] = [];
      for (let i = 0; i < word.symbols.length; i++) {
        if (i + 1 < word.symbols.length && word.symbols[i] === left && word.symbols[i + 1] === right) {
          merged.push(left + right);
          i++;
        } else {
          merged.push(word.symbols[i]);
        }
      }
      word.symbols = merged;
    }
  }
  return merges;
}

function addedToken(id: number, content: string) {
  return { id, content, single_word: false, lstrip: false, rstrip: false, normalized: false, special: true };
}

/** tokenizer.json and tokenizer_config.json for a spec, as JSON-ready objects. */
export function buildTokenizerFiles(spec: TinyModelSpec): { tokenizer: object; tokenizerConfig: object } {
  if (spec.vocabSize < MERGES_START) {
    throw new RangeError(`vocabSize ${spec.vocabSize} is below the ${MERGES_START} special and byte tokens`);
  }
  const vocab: Record<string, number> = {};
  SPECIAL_TOKENS.forEach((t, id) => (vocab[t] = id));
  byteToUnicode().forEach((c, b) => (vocab[c] = BYTE_TOKENS_START + b));
  const merges = trainMerges(TRAINING_TEXT, spec.vocabSize - MERGES_START);
  let nextId = MERGES_START;
  for (const [l, r] of merges) vocab[l + r] ??= nextId++;
  // The text runs out of merges before a large vocabulary is full: the remaining ids still decode
  // (to a visible placeholder), because a random model may sample any id below vocabSize.
  for (; nextId < spec.vocabSize; nextId++) vocab[`<|reserved_${nextId}|>`] = nextId;

  const added = SPECIAL_TOKENS.map((t, id) => addedToken(id, t));
  const bos = SPECIAL_TOKENS[BOS_TOKEN_ID];
  const postProcessor = spec.addBos
    ? {
        type: 'TemplateProcessing',
        single: [{ SpecialToken: { id: bos, type_id: 0 } }, { Sequence: { id: 'A', type_id: 0 } }],
        pair: [
          { SpecialToken: { id: bos, type_id: 0 } },
          { Sequence: { id: 'A', type_id: 0 } },
          { SpecialToken: { id: bos, type_id: 1 } },
          { Sequence: { id: 'B', type_id: 1 } },
        ],
        special_tokens: { [bos]: { id: bos, ids: [BOS_TOKEN_ID], tokens: [bos] } },
      }
    : null;
  const tokenizer = {
    version: '1.0',
    truncation: null,
    padding: null,
    added_tokens: added,
    normalizer: null,
    pre_tokenizer: { type: 'ByteLevel', add_prefix_space: false, trim_offsets: true, use_regex: true },
    post_processor: postProcessor,
    decoder: { type: 'ByteLevel', add_prefix_space: true, trim_offsets: true, use_regex: true },
    model: {
      type: 'BPE',
      dropout: null,
      unk_token: null,
      continuing_subword_prefix: '',
      end_of_word_suffix: '',
      fuse_unk: false,
      byte_fallback: false,
      ignore_merges: false,
      vocab,
      merges,
    },
  };
  const tokenizerConfig = {
    tokenizer_class: 'PreTrainedTokenizerFast',
    add_bos_token: spec.addBos,
    add_eos_token: false,
    added_tokens_decoder: Object.fromEntries(added.map(({ id, ...rest }) => [String(id), rest])),
    bos_token: spec.addBos ? bos : null,
    eos_token: SPECIAL_TOKENS[EOS_TOKEN_ID],
    pad_token: SPECIAL_TOKENS[PAD_TOKEN_ID],
    unk_token: null,
    chat_template: CHATML_TEMPLATE,
    clean_up_tokenization_spaces: false,
    model_max_length: spec.maxPositionEmbeddings,
  };
  return { tokenizer, tokenizerConfig };
}

/** Writes tokenizer.json and tokenizer_config.json into `dir`. */
export async function generateTokenizer(dir: string, spec: TinyModelSpec): Promise<void> {
  const { tokenizer, tokenizerConfig } = buildTokenizerFiles(spec);
  await mkdir(dir, { recursive: true });
  await writeFile(path.join(dir, 'tokenizer.json'), JSON.stringify(tokenizer, null, 2));
  await writeFile(path.join(dir, 'tokenizer_config.json'), JSON.stringify(tokenizerConfig, null, 2));
}
