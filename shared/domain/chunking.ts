/**
 * Splits an extracted document into chunks for embedding: token-aware (measured with the
 * embedder's own tokenizer), sentence-respecting, overlapping, and never across a page break.
 *
 * Every sentence is tokenized once; a chunk's size is the sum of its sentences' sizes. That sum
 * is exact for tokenizers that pre-split on whitespace (WordPiece, as used by the embedding
 * models here) and a close estimate for others. Special tokens a counter adds to every text
 * (e.g. [CLS]/[SEP]) are measured once, with `count("")`, and charged once per chunk.
 */
import type { ExtractedDocument, PageRange } from "./extract.ts";
import type { Chunk } from "./types.ts";

export interface TokenCounter {
  /** Number of tokens the model sees for `text`. */
  count(text: string): number;
}

export interface ChunkOptions {
  /** Most tokens in one chunk, special tokens included (default 200). */
  maxTokens?: number;
  /** Most tokens a chunk repeats from the end of the previous one, in whole sentences (default 40). */
  overlapTokens?: number;
  /**
   * Most characters in one chunk (default 12 per token of `maxTokens`). Tokens alone do not bound
   * a chunk's size: a WordPiece tokenizer reads any over-long "word" (a line of base64, a run of
   * one character) as one unknown token, so a 20 MB line without spaces would be one chunk.
   */
  maxChars?: number;
}

export const DEFAULT_MAX_TOKENS = 200;
export const DEFAULT_OVERLAP_TOKENS = 40;
export const DEFAULT_CHARS_PER_TOKEN = 12;

/** A trimmed, non-empty span of `doc.text` and its token count (without special tokens). */
interface Unit {
  start: number;
  end: number;
  tokens: number;
}

let sentenceSegmenter: Intl.Segmenter | undefined;
const sentences = () => {
  sentenceSegmenter ??= new Intl.Segmenter("en", { granularity: "sentence" });
  return sentenceSegmenter;
};

/**
 * Chunks a document. Chunk ids are `${documentId}:${ordinal}`, so the same document always yields
 * the same ids; `doc.text.slice(chunk.start, chunk.end) === chunk.text` for every chunk; no chunk is
 * empty or whitespace-only, none spans two pages, and none exceeds `maxTokens` or `maxChars` unless a single
 * character does.
 */
export function chunkDocument(
  documentId: string,
  doc: ExtractedDocument,
  tokens: TokenCounter,
  options: ChunkOptions = {},
): Chunk[] {
  const maxTokens = options.maxTokens ?? DEFAULT_MAX_TOKENS;
  const overlapTokens = options.overlapTokens ?? DEFAULT_OVERLAP_TOKENS;
  if (!Number.isInteger(maxTokens) || maxTokens < 1) throw new RangeError(`maxTokens must be a positive integer`);
  if (!Number.isInteger(overlapTokens) || overlapTokens < 0 || overlapTokens >= maxTokens) {
    throw new RangeError(`overlapTokens must be an integer in [0, maxTokens)`);
  }
  const maxChars = options.maxChars ?? maxTokens * DEFAULT_CHARS_PER_TOKEN;
  if (!Number.isInteger(maxChars) || maxChars < 2) throw new RangeError(`maxChars must be an integer of at least 2`);
  const overhead = Math.max(0, tokens.count(""));
  const budget = maxTokens - overhead;
  if (budget < 1) throw new RangeError(`maxTokens (${maxTokens}) leaves no room beside ${overhead} special tokens`);

  const chunks: Chunk[] = [];
  for (const range of pageRanges(doc)) {
    const limits = { budget, maxChars };
    const units = splitUnits(doc.text, range, limits, (text) => Math.max(0, tokens.count(text) - overhead));
    for (const [start, end] of pack(units, limits, overlapTokens)) {
      const ordinal = chunks.length;
      chunks.push({
        chunkId: `${documentId}:${ordinal}`,
        documentId,
        ordinal,
        page: range.page,
        start,
        end,
        text: doc.text.slice(start, end),
      });
    }
  }
  return chunks;
}

/** The document's page ranges clamped to its text, or the whole text as page 1. */
function pageRanges(doc: ExtractedDocument): PageRange[] {
  if (doc.pages.length === 0) return [{ page: 1, start: 0, end: doc.text.length }];
  return doc.pages.map(({ page, start, end }) => {
    const s = Math.min(Math.max(0, start), doc.text.length);
    return { page, start: s, end: Math.min(Math.max(s, end), doc.text.length) };
  });
}

/**
 * A page's sentences as units of at most `budget` tokens. A lone line break does not end a
 * sentence (PDF lines and hard-wrapped text break mid-sentence), a blank line does. A longer
 * sentence is cut at line breaks, then at word boundaries, then (a "word" of hundreds of tokens,
 * such as a base64 blob) between characters.
 */
function splitUnits(text: string, range: PageRange, limits: Limits, count: (text: string) => number): Unit[] {
  const pageText = text.slice(range.start, range.end);
  // Same length, so segment offsets are offsets into pageText.
  const segmentable = pageText.replace(/(?<!\n)\n(?!\n)/g, " ");
  const units: Unit[] = [];
  for (const { index, segment } of sentences().segment(segmentable)) {
    const span = trimSpan(text, range.start + index, range.start + index + segment.length);
    if (span) addSpan(text, span[0], span[1], 0, limits, count, units);
  }
  return units;
}

/** A chunk's bounds: tokens (without special tokens) and characters. */
interface Limits {
  budget: number;
  maxChars: number;
}

/** Separators tried in turn to cut a span that is over budget. */
const CUTS = [/\n+/g, /\s+/g];

function addSpan(
  text: string,
  start: number,
  end: number,
  level: number,
  limits: Limits,
  count: (text: string) => number,
  units: Unit[],
): void {
  // Spans over the character limit are cut without being tokenized: a huge span is tokenized
  // once, in pieces, instead of once per level of cutting.
  const tokens = end - start <= limits.maxChars ? count(text.slice(start, end)) : Number.POSITIVE_INFINITY;
  if (tokens <= limits.budget || end - start <= 1) {
    units.push({ start, end, tokens: Math.min(tokens, limits.budget) });
    return;
  }
  const cut = CUTS[level];
  if (!cut) {
    // No separator left: halve (never between the two halves of a surrogate pair).
    let mid = start + Math.floor((end - start) / 2);
    if (isLowSurrogate(text.charCodeAt(mid)) && mid + 1 < end) mid++;
    addSpan(text, start, mid, level, limits, count, units);
    addSpan(text, mid, end, level, limits, count, units);
    return;
  }
  const add = (from: number, to: number) => {
    const span = trimSpan(text, from, to);
    if (span) addSpan(text, span[0], span[1], level + 1, limits, count, units);
  };
  let from = start;
  for (const match of text.slice(start, end).matchAll(cut)) {
    add(from, start + match.index);
    from = start + match.index + match[0].length;
  }
  add(from, end);
}

const isLowSurrogate = (code: number) => code >= 0xdc00 && code <= 0xdfff;

/** [start, end) without leading and trailing whitespace, or undefined when nothing is left. */
function trimSpan(text: string, start: number, end: number): [number, number] | undefined {
  const segment = text.slice(start, end);
  const trimmedStart = segment.trimStart();
  if (trimmedStart.length === 0) return undefined;
  const s = start + (segment.length - trimmedStart.length);
  return [s, s + trimmedStart.trimEnd().length];
}

/**
 * Greedy packing: a chunk takes units while they fit the budget (tokens and characters); the next
 * chunk starts with the last units of the previous one totalling at most `overlap` tokens (fewer
 * if they would leave no room for a new unit), and always with at least one unit the previous
 * chunk did not have.
 */
function* pack(units: Unit[], { budget, maxChars }: Limits, overlap: number): Generator<[number, number]> {
  const tokensOf = (i: number) => (units[i] as Unit).tokens;
  const fits = (first: number, last: number) => (units[last] as Unit).end - (units[first] as Unit).start <= maxChars;
  let i = 0;
  while (i < units.length) {
    let total = 0;
    let j = i;
    while (j < units.length && total + tokensOf(j) <= budget && fits(i, j)) total += tokensOf(j++);
    if (j === i) j = i + 1; // a unit that cannot be cut further goes alone
    yield [(units[i] as Unit).start, (units[j - 1] as Unit).end];
    if (j >= units.length) return;
    let k = j;
    let carried = 0;
    while (k - 1 > i && carried + tokensOf(k - 1) <= overlap) carried += tokensOf(--k);
    while (k < j && (carried + tokensOf(j) > budget || !fits(k, j))) carried -= tokensOf(k++);
    i = k;
  }
}
