// Cutting a parsed document into passages: the units that are retrieved, cited, and prefilled as
// one block each (block attention). A passage stays under one heading and on one page, holds about
// `targetTokens` tokens, and ends at the strongest boundary available: paragraph, then sentence,
// then line, then word; a run with no whitespace at all is cut between words as Unicode segments
// them (CJK) or, failing that, between characters (graphemes).
import { TITLE_PATH_SEPARATOR } from './parsers/sections.ts';
import type { DocumentSection, ParsedDocument } from './parsers/types.ts';

export interface Passage {
  /** 0-based position of the passage in its document. */
  ordinal: number;
  /** Document title, plus the section's heading path when there is one. */
  title: string;
  /** Exactly `doc.text.slice(charStart, charEnd)`; never starts or ends with whitespace. */
  text: string;
  charStart: number;
  charEnd: number;
  /** 1-based page, for PDFs. */
  page?: number;
  /** countTokens(text): the passage text alone, without the block's title line. */
  tokenCount: number;
}

/** Counts tokens in a text the way the engine's tokenizer will see it (no special tokens). */
export type CountTokens = (text: string) => number;

export const DEFAULT_TARGET_TOKENS = 256;

/**
 * A passage is closed at a stronger boundary only if that keeps it at least this full; otherwise
 * at a weaker one (down to line ends). Stops a short opening paragraph from becoming a passage of
 * its own when the next paragraph could be cut at a sentence instead.
 */
const MIN_FILL = 0.5;

/** Boundary strength, strongest (smallest) first; SectionEnd is the end of the section. */
const Boundary = { SectionEnd: -1, Paragraph: 0, Sentence: 1, Line: 2, Word: 3, Character: 4 } as const;
type Boundary = (typeof Boundary)[keyof typeof Boundary];

interface Atom {
  /** Offsets into doc.text; the atom never starts or ends with whitespace. */
  start: number;
  end: number;
  /** Strength of the boundary just before this atom. */
  before: Boundary;
  tokens: number;
}

/** The passage block format of the method brief: one block per passage, title line first. */
export function blockText(title: string, text: string): string {
  return `- Title: ${title}\n${text}\n`;
}

export function cutPassages(doc: ParsedDocument, countTokens: CountTokens, targetTokens = DEFAULT_TARGET_TOKENS): Passage[] {
  if (!(targetTokens >= 1)) throw new RangeError(`targetTokens must be at least 1, got ${targetTokens}`);
  const cutter = new SectionCutter(doc.text, countTokens, targetTokens, doc.textKind === 'lines');
  const passages: Passage[] = [];
  for (const section of doc.sections) {
    const title = section.title ? `${doc.title}${TITLE_PATH_SEPARATOR}${section.title}` : doc.title;
    for (const range of cutter.cut(section)) {
      const passage: Passage = { ordinal: passages.length, title, ...range };
      if (section.page !== undefined) passage.page = section.page;
      passages.push(passage);
    }
  }
  return passages;
}

/** Longer than target x this many characters cannot fit (real tokens are far shorter), so is split uncounted. */
const MAX_CHARS_PER_TOKEN = 32;

/** Code units either side of a cut searched for a grapheme boundary (longer clusters are degenerate). */
const GRAPHEME_CONTEXT = 64;

type PassageRange = Pick<Passage, 'text' | 'charStart' | 'charEnd' | 'tokenCount'>;

/** Cuts one section at a time; passages never cross a section (heading or page). */
class SectionCutter {
  private readonly sentences = new Intl.Segmenter(undefined, { granularity: 'sentence' });
  private readonly words = new Intl.Segmenter(undefined, { granularity: 'word' });
  private readonly graphemes = new Intl.Segmenter(undefined, { granularity: 'grapheme' });

  constructor(
    private readonly text: string,
    private readonly countTokens: CountTokens,
    private readonly target: number,
    private readonly lineOriented: boolean,
  ) {}

  cut(section: DocumentSection): PassageRange[] {
    const atoms = this.atomsOf(section.charStart, section.charStart + section.text.length);
    const out: PassageRange[] = [];
    let first = 0;
    while (first < atoms.length) {
      let end = this.chooseEnd(atoms, first, atoms.length);
      let text = this.text.slice(atoms[first].start, atoms[end - 1].end);
      let tokens = this.countTokens(text);
      // Atom counts are summed to choose; the joined text can tokenize a little longer. Shrink.
      while (tokens > this.target && end - first > 1) {
        end = this.chooseEnd(atoms, first, end - 1);
        text = this.text.slice(atoms[first].start, atoms[end - 1].end);
        tokens = this.countTokens(text);
      }
      out.push({ text, charStart: atoms[first].start, charEnd: atoms[end - 1].end, tokenCount: tokens });
      first = end;
    }
    return out;
  }

  /** End (exclusive atom index, <= limit) of the passage starting at `first`. */
  private chooseEnd(atoms: Atom[], first: number, limit: number): number {
    // Candidate ends: after each atom while the running total fits (the first atom always fits:
    // atoms are split until they do).
    const ends: { end: number; strength: number; fill: number }[] = [];
    let sum = 0;
    for (let i = first; i < limit; i++) {
      if (i > first && sum + atoms[i].tokens > this.target) break;
      sum += atoms[i].tokens;
      const strength = i + 1 < atoms.length ? atoms[i + 1].before : Boundary.SectionEnd;
      ends.push({ end: i + 1, strength, fill: sum });
    }
    const furthest = (weakest: number) => ends.findLast((e) => e.strength <= weakest);
    for (let strength: number = Boundary.SectionEnd; strength <= Boundary.Line; strength++) {
      const end = furthest(strength);
      if (end && end.fill >= MIN_FILL * this.target) return end.end;
    }
    // Cutting inside a sentence or line to fill a passage is worse than a short passage: words
    // and characters are cut points only where no natural boundary fits at all.
    return (furthest(Boundary.Line) ?? ends[ends.length - 1]).end;
  }

  /** The section split at every paragraph, sentence (prose) and line boundary; long pieces split further. */
  private atomsOf(start: number, end: number): Atom[] {
    const atoms: Atom[] = [];
    for (const paragraph of this.split(start, end, /\n(?:[ \t\f\v\r]*\n)+/g)) {
      const pieces = this.lineOriented ? this.lines(paragraph.start, paragraph.end) : this.sentencePieces(paragraph.start, paragraph.end);
      pieces.forEach((piece, k) => this.pushFitting(atoms, piece.start, piece.end, k === 0 ? Boundary.Paragraph : piece.before));
    }
    return atoms;
  }

  /** Adds [start, end) as one atom if it fits the target, else as several smaller ones. */
  private pushFitting(atoms: Atom[], start: number, end: number, before: Boundary): void {
    // Far too long to fit: split without counting (tokenizers can be slow on huge inputs). If the
    // guess is wrong, the pieces are simply packed back together.
    const surelyTooLong = end - start > this.target * MAX_CHARS_PER_TOKEN;
    const tokens = surelyTooLong ? Infinity : this.countTokens(this.text.slice(start, end));
    if (tokens <= this.target) {
      atoms.push({ start, end, before, tokens });
      return;
    }
    const words = this.split(start, end, /\s+/g);
    if (words.length > 1) {
      words.forEach((w, k) => this.pushFitting(atoms, w.start, w.end, k === 0 ? before : Boundary.Word));
      return;
    }
    this.hardSplit(atoms, start, end, before);
  }

  /** A run without whitespace: longest prefixes that fit, cut between words (CJK), else between graphemes. */
  private hardSplit(atoms: Atom[], start: number, end: number, before: Boundary): void {
    let position = start;
    while (position < end) {
      const cut = this.fittingCut(position, end);
      const tokens = this.countTokens(this.text.slice(position, cut));
      atoms.push({ start: position, end: cut, before: position === start ? before : Boundary.Character, tokens });
      position = cut;
    }
  }

  /** Where the piece starting at `position` ends. Works in a window that just overflows the target, so a huge run stays linear. */
  private fittingCut(position: number, end: number): number {
    let windowEnd = Math.min(end, position + this.target * 4);
    while (windowEnd < end && this.countTokens(this.text.slice(position, windowEnd)) <= this.target) {
      windowEnd = Math.min(end, position + 2 * (windowEnd - position));
    }
    // Either the window reaches `end`, or it does not fit and the cut lies strictly inside it (a
    // segment boundary the window itself creates at its end is never chosen).
    const wordCuts = this.segmentEnds(this.words, position, windowEnd);
    const cut = this.longestFittingPrefix(position, wordCuts);
    if (cut !== undefined) return cut;
    return this.graphemeCut(position, wordCuts[0]);
  }

  /**
   * The furthest grapheme boundary in (position, limit] whose prefix fits. Binary search on
   * offsets, then a snap back to a grapheme boundary found in a small neighbourhood: segmenting
   * every grapheme of a long run is far too slow (microseconds each).
   */
  private graphemeCut(position: number, limit: number): number {
    let low = position + 1;
    let high = limit;
    let fitting = position;
    while (low <= high) {
      const middle = (low + high) >> 1;
      if (this.countTokens(this.text.slice(position, middle)) <= this.target) {
        fitting = middle;
        low = middle + 1;
      } else {
        high = middle - 1;
      }
    }
    const from = Math.max(position, fitting - GRAPHEME_CONTEXT);
    const boundaries = this.segmentEnds(this.graphemes, from, Math.min(limit, fitting + GRAPHEME_CONTEXT));
    const snapped = boundaries.findLast((b) => b <= fitting && b > position);
    // A single grapheme over the target cannot be split further: it goes alone.
    return snapped ?? boundaries.find((b) => b > position) ?? limit;
  }

  /** Binary search for the furthest cut whose prefix from `position` fits (token counts grow with length). */
  private longestFittingPrefix(position: number, cuts: number[]): number | undefined {
    let low = 0;
    let high = cuts.length - 1;
    let best: number | undefined;
    while (low <= high) {
      const middle = (low + high) >> 1;
      if (this.countTokens(this.text.slice(position, cuts[middle])) <= this.target) {
        best = cuts[middle];
        low = middle + 1;
      } else {
        high = middle - 1;
      }
    }
    return best;
  }

  private segmentEnds(segmenter: Intl.Segmenter, start: number, end: number): number[] {
    const ends: number[] = [];
    for (const s of segmenter.segment(this.text.slice(start, end))) ends.push(start + s.index + s.segment.length);
    return ends;
  }

  /** Sentences (Unicode rules; they also break at every newline), each labelled by what ends the one before. */
  private sentencePieces(start: number, end: number): { start: number; end: number; before: Boundary }[] {
    const pieces: { start: number; end: number; before: Boundary }[] = [];
    for (const s of this.sentences.segment(this.text.slice(start, end))) {
      const range = trimmed(this.text, start + s.index, start + s.index + s.segment.length);
      if (!range) continue;
      const previous = pieces[pieces.length - 1];
      const before = !previous
        ? Boundary.Paragraph
        : SENTENCE_END.test(this.text.slice(previous.start, previous.end))
          ? Boundary.Sentence
          : this.text.slice(previous.end, range.start).includes('\n')
            ? Boundary.Line
            : Boundary.Sentence;
      pieces.push({ ...range, before });
    }
    return pieces;
  }

  private lines(start: number, end: number): { start: number; end: number; before: Boundary }[] {
    return this.split(start, end, /\r?\n/g).map((r, k) => ({ ...r, before: k === 0 ? Boundary.Paragraph : Boundary.Line }));
  }

  /** Non-blank pieces of [start, end) between matches of `separator`, trimmed. */
  private split(start: number, end: number, separator: RegExp): { start: number; end: number }[] {
    const pieces: { start: number; end: number }[] = [];
    const slice = this.text.slice(start, end);
    let from = 0;
    for (const match of slice.matchAll(separator)) {
      const range = trimmed(this.text, start + from, start + match.index);
      if (range) pieces.push(range);
      from = match.index + match[0].length;
    }
    const last = trimmed(this.text, start + from, end);
    if (last) pieces.push(last);
    return pieces;
  }
}

/** Ends with sentence punctuation, possibly followed by closing quotes or brackets. */
const SENTENCE_END = /[.!?…。！？‼⁇][)"'\]»’”」』）]*$/u;

function trimmed(text: string, start: number, end: number): { start: number; end: number } | undefined {
  while (start < end && /\s/.test(text[start])) start++;
  while (end > start && /\s/.test(text[end - 1])) end--;
  return start < end ? { start, end } : undefined;
}
