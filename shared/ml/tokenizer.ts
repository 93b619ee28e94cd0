import { readFileSync } from "node:fs";
import { Tokenizer } from "@huggingface/tokenizers";
import type { TokenCounter } from "../domain/chunking.ts";

/** all-MiniLM-L6-v2 was trained on sequences of up to 256 word pieces. */
export const EMBEDDER_MAX_TOKENS = 256;
/** BERT's position limit; the ms-marco cross-encoders use all of it. */
export const RERANKER_MAX_TOKENS = 512;

/** Model inputs for one sequence (or one sequence pair), special tokens included. */
export interface Encoded {
  ids: number[];
  attentionMask: number[];
  typeIds: number[];
}

/** A word piece and the characters of the original text it came from ([start, end)). */
export interface TokenSpan {
  token: string;
  start: number;
  end: number;
}

// The parts of tokenizer.json this module reads itself; the rest is the library's business.
interface TokenizerJson {
  padding?: { pad_id?: number } | null;
  model?: { unk_token?: string; continuing_subword_prefix?: string };
}

/**
 * A HuggingFace tokenizer (tokenizer.json, via @huggingface/tokenizers) with what the models and
 * the chunker need on top: truncation to a maximum length (the library has none), pair encoding
 * with token type ids, token counts and character offsets.
 */
export class TextTokenizer {
  private readonly tokenizer: Tokenizer;
  private readonly json: TokenizerJson;
  /** Special tokens the template adds around one sequence and around a pair ([CLS]/[SEP]: 2 and 3). */
  private readonly singleSpecials: number;
  private readonly pairSpecials: number;

  constructor(
    tokenizerJson: object,
    readonly maxLength: number,
  ) {
    this.json = tokenizerJson as TokenizerJson;
    this.tokenizer = new Tokenizer(tokenizerJson, {});
    this.singleSpecials = this.applyTemplate([], null).tokens.length;
    this.pairSpecials = this.applyTemplate([], []).tokens.length;
  }

  static fromFile(path: string, maxLength: number): TextTokenizer {
    return new TextTokenizer(JSON.parse(readFileSync(path, "utf8")), maxLength);
  }

  /**
   * Id used to pad batches: the tokenizer's padding id, else its [PAD] or <pad> token (XLM-R's is 1, and
   * RoBERTa-style models derive position ids from it, so it must be the real one), else 0.
   */
  get padId(): number {
    return this.json.padding?.pad_id ?? this.tokenizer.token_to_id("[PAD]") ?? this.tokenizer.token_to_id("<pad>") ?? 0;
  }

  /** The largest token id the tokenizer can produce (its vocabulary and added tokens). */
  get maxTokenId(): number {
    let max = (this.tokenizer.model?.vocab.length ?? 1) - 1;
    for (const id of this.tokenizer.get_added_tokens_decoder().keys()) max = Math.max(max, id);
    return max;
  }

  /** Special tokens the template adds around a pair (BERT: [CLS] a [SEP] b [SEP] = 3; XLM-R: 4). */
  get pairSpecialTokens(): number {
    return this.pairSpecials;
  }

  /** True when tokenizer.json has a post-processor, i.e. it knows how to frame a sequence pair. */
  get hasPairTemplate(): boolean {
    return this.tokenizer.post_processor !== null;
  }

  /** The token string of an id (for inspection and tests). */
  idToToken(id: number): string | undefined {
    return this.tokenizer.id_to_token(id);
  }

  /** Word pieces of `text`, without special tokens and without truncation. */
  tokenize(text: string): string[] {
    return this.tokenizer.tokenize(text);
  }

  /** Number of word pieces in `text` (no special tokens, no truncation): what the chunker budgets. */
  countTokens(text: string): number {
    return this.tokenize(text).length;
  }

  /** `[CLS] text [SEP]`, truncated to maxLength. */
  encode(text: string): Encoded {
    const tokens = this.tokenize(text).slice(0, Math.max(0, this.maxLength - this.singleSpecials));
    return this.toIds(this.applyTemplate(tokens, null));
  }

  /**
   * `[CLS] first [SEP] second [SEP]` with token type ids 0 for the first part and 1 for the
   * second, truncated to maxLength longest-first (as HuggingFace does): the query of a
   * (query, passage) pair keeps its tokens unless it is the longer one.
   */
  encodePair(first: string, second: string): Encoded {
    const a = this.tokenize(first);
    const b = this.tokenize(second);
    const budget = Math.max(0, this.maxLength - this.pairSpecials);
    let keepA = a.length;
    let keepB = b.length;
    while (keepA + keepB > budget) {
      if (keepA > keepB) keepA--;
      else keepB--;
    }
    return this.toIds(this.applyTemplate(a.slice(0, keepA), b.slice(0, keepB)));
  }

  /**
   * Word pieces of `text` with the character range each came from. @huggingface/tokenizers
   * returns no offsets, so they are recovered by aligning the pieces with the normalized text
   * (normalized one character at a time, keeping a map back to the original positions). Exact
   * for BERT-style (WordPiece) tokenizers; an unknown word ([UNK]) spans its whole word.
   */
  tokenSpans(text: string): TokenSpan[] {
    const normalize = (s: string) => (this.tokenizer.normalizer ? this.tokenizer.normalizer.normalize(s) : s);
    // normalized UTF-16 unit k came from original characters [from[k], to[k])
    let normalized = "";
    const from: number[] = [];
    const to: number[] = [];
    for (let i = 0; i < text.length; ) {
      const char = String.fromCodePoint(text.codePointAt(i) ?? 0);
      const piece = normalize(char);
      for (let k = 0; k < piece.length; k++) {
        from.push(i);
        to.push(i + char.length);
      }
      normalized += piece;
      i += char.length;
    }

    const prefix = this.json.model?.continuing_subword_prefix ?? "##";
    const unknown = this.json.model?.unk_token ?? "[UNK]";
    const spans: TokenSpan[] = [];
    let cursor = 0;
    const skipSpaces = () => {
      while (cursor < normalized.length && /\s/.test(normalized[cursor] ?? "")) cursor++;
    };
    const span = (token: string, start: number, end: number) => {
      const startChar = from[start] ?? text.length;
      const endChar = end > start ? (to[end - 1] ?? text.length) : startChar;
      spans.push({ token, start: startChar, end: endChar });
    };

    for (const token of this.tokenize(text)) {
      const isContinuation = token.startsWith(prefix) && token.length > prefix.length;
      if (!isContinuation) skipSpaces();
      if (token === unknown) {
        // The whole word was unknown: it runs to the next space.
        const start = cursor;
        while (cursor < normalized.length && !/\s/.test(normalized[cursor] ?? "")) cursor++;
        span(token, start, cursor);
        continue;
      }
      const piece = isContinuation ? token.slice(prefix.length) : token;
      let start = normalized.startsWith(piece, cursor) ? cursor : normalized.indexOf(piece, cursor);
      if (start < 0) start = cursor; // should not happen; keep the spans ordered
      const end = Math.min(normalized.length, start + piece.length);
      span(token, start, end);
      cursor = end;
    }
    return spans;
  }

  private applyTemplate(tokens: string[], pair: string[] | null): { tokens: string[]; typeIds: number[] } {
    const processor = this.tokenizer.post_processor;
    if (!processor)
      return { tokens: [...tokens, ...(pair ?? [])], typeIds: [...tokens.map(() => 0), ...(pair ?? []).map(() => 1)] };
    const output = processor.post_process(tokens, pair, true);
    return { tokens: output.tokens, typeIds: output.token_type_ids ?? output.tokens.map(() => 0) };
  }

  private toIds({ tokens, typeIds }: { tokens: string[]; typeIds: number[] }): Encoded {
    // As the library maps tokens itself: a WordPiece model has an unk_token, a Unigram model an unk_id.
    const unknownId =
      this.tokenizer.model?.unk_token_id ?? this.tokenizer.token_to_id(this.json.model?.unk_token ?? "[UNK]") ?? 0;
    return {
      ids: tokens.map((token) => this.tokenizer.token_to_id(token) ?? unknownId),
      attentionMask: tokens.map(() => 1),
      typeIds,
    };
  }
}

/**
 * Token counts in the embedder's word pieces. The chunk budget (200) stays below the model's
 * 256-token window with room for its [CLS]/[SEP].
 */
export const embedderTokenCounter = (tokenizer: TextTokenizer): TokenCounter => ({
  count: (text) => tokenizer.countTokens(text),
});
