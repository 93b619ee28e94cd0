import { existsSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { modelsRoot } from "../../layers/models.ts";
import { chunkDocument, type TokenCounter } from "../../shared/domain/chunking.ts";
import { type ExtractedDocument, extractText } from "../../shared/domain/extract.ts";
import type { Chunk } from "../../shared/domain/types.ts";
import { EMBEDDER_NAME, modelFiles } from "../../shared/ml/model-files.ts";
import { EMBEDDER_MAX_TOKENS, TextTokenizer } from "../../shared/ml/tokenizer.ts";
import { makePdf, makeProsePages } from "../fixtures/make-fixtures.ts";

/** One token per whitespace-separated word. */
const words: TokenCounter = { count: (text) => text.match(/\S+/g)?.length ?? 0 };

/** Like a BERT tokenizer: two special tokens on every text, even an empty one. */
const withSpecials: TokenCounter = { count: (text) => words.count(text) + 2 };

/** Joins pages the way extraction does and records their ranges. */
function paged(pages: string[]): ExtractedDocument {
  let text = "";
  const ranges: ExtractedDocument["pages"] = [];
  pages.forEach((page, i) => {
    if (text.length > 0) text += "\n\n";
    ranges.push({ page: i + 1, start: text.length, end: text.length + page.length });
    text += page;
  });
  return { text, pages: ranges };
}

/** The properties every chunking must have. */
function expectWellFormed(
  documentId: string,
  doc: ExtractedDocument,
  chunks: Chunk[],
  counter: TokenCounter,
  max: number,
) {
  chunks.forEach((chunk, i) => {
    expect(chunk.ordinal).toBe(i);
    expect(chunk.chunkId).toBe(`${documentId}:${i}`);
    expect(chunk.documentId).toBe(documentId);
    expect(doc.text.slice(chunk.start, chunk.end)).toBe(chunk.text);
    expect(chunk.text.trim()).toBe(chunk.text);
    expect(chunk.text.length).toBeGreaterThan(0);
    expect(counter.count(chunk.text)).toBeLessThanOrEqual(max);
    const page = doc.pages.find((p) => p.page === chunk.page);
    expect(page).toBeDefined();
    expect(chunk.start).toBeGreaterThanOrEqual(page?.start ?? Number.NaN);
    expect(chunk.end).toBeLessThanOrEqual(page?.end ?? Number.NaN);
  });
  // Every word of the document is in some chunk.
  const covered = new Uint8Array(doc.text.length);
  for (const chunk of chunks) covered.fill(1, chunk.start, chunk.end);
  for (const match of doc.text.matchAll(/\S+/g)) expect(covered[match.index], `"${match[0]}" is in no chunk`).toBe(1);
}

const sentence = (n: number, length = 10) =>
  `Sentence ${n} ${Array.from({ length: length - 3 }, (_, i) => `w${n}x${i}`).join(" ")} end.`;

describe("chunkDocument", () => {
  it("packs whole sentences up to the token limit, with exact offsets and stable ids", () => {
    const doc = paged([Array.from({ length: 30 }, (_, i) => sentence(i)).join(" ")]);
    const chunks = chunkDocument("doc-1", doc, words, { maxTokens: 50, overlapTokens: 0 });
    expectWellFormed("doc-1", doc, chunks, words, 50);
    // 10-token sentences, 50-token chunks, no overlap: 5 sentences each.
    expect(chunks).toHaveLength(6);
    for (const chunk of chunks) {
      expect(words.count(chunk.text)).toBe(50);
      expect(chunk.text).toMatch(/^Sentence \d+ .* end\.$/);
    }
    expect(chunkDocument("doc-1", doc, words, { maxTokens: 50, overlapTokens: 0 })).toEqual(chunks);
  });

  it("starts each chunk with the last sentences of the previous one, at most overlapTokens of them", () => {
    const doc = paged([Array.from({ length: 40 }, (_, i) => sentence(i, 8 + (i % 5))).join(" ")]);
    const chunks = chunkDocument("d", doc, words, { maxTokens: 60, overlapTokens: 20 });
    expectWellFormed("d", doc, chunks, words, 60);
    expect(chunks.length).toBeGreaterThan(3);
    for (let i = 1; i < chunks.length; i++) {
      const previous = chunks[i - 1] as Chunk;
      const chunk = chunks[i] as Chunk;
      expect(chunk.start).toBeGreaterThan(previous.start);
      expect(chunk.end).toBeGreaterThan(previous.end);
      // The overlap exists, is whole sentences, and stays within the budget.
      expect(chunk.start).toBeLessThan(previous.end);
      const overlap = doc.text.slice(chunk.start, previous.end);
      expect(overlap).toMatch(/^Sentence \d+ .* end\.$/);
      expect(words.count(overlap)).toBeLessThanOrEqual(20);
      expect(words.count(overlap)).toBeGreaterThan(0);
    }
  });

  it("uses the defaults of 200 tokens and a 40-token overlap", () => {
    const doc = paged([Array.from({ length: 100 }, (_, i) => sentence(i)).join(" ")]);
    const chunks = chunkDocument("d", doc, words);
    expectWellFormed("d", doc, chunks, words, 200);
    expect(words.count(chunks[0]?.text ?? "")).toBe(200);
    const second = chunks[1] as Chunk;
    expect(words.count(doc.text.slice(second.start, chunks[0]?.end))).toBe(40);
  });

  it("never crosses a page boundary and carries each chunk's page", async () => {
    const pages = makeProsePages(5, 9);
    const doc = await extractText(makePdf(pages), "application/pdf");
    const chunks = chunkDocument("pdf", doc, words, { maxTokens: 50, overlapTokens: 15 });
    expectWellFormed("pdf", doc, chunks, words, 50);
    expect([...new Set(chunks.map((c) => c.page))]).toEqual([1, 2, 3, 4, 5]);
    for (const chunk of chunks) {
      const flat = chunk.text.replace(/\s+/g, " ");
      expect(flat).toContain(`(page ${chunk.page},`);
      expect(flat).not.toMatch(new RegExp(`\\(page (?!${chunk.page},)`));
    }
    // The first chunk of each page starts at the page's first sentence: no overlap carried over.
    for (const range of doc.pages) expect(chunks.find((c) => c.page === range.page)?.start).toBe(range.start);
  });

  it("does not end a sentence at a lone line break (wrapped lines)", () => {
    const doc = paged(["Intro words here. The first sentence is wrapped\nacross two lines."]);
    // Were the line break a sentence end, the units would be 3 + 5 + 3 tokens and the first chunk
    // would take "Intro words here. The first sentence is wrapped".
    const chunks = chunkDocument("d", doc, words, { maxTokens: 8, overlapTokens: 0 });
    expectWellFormed("d", doc, chunks, words, 8);
    expect(chunks.map((c) => c.text)).toEqual([
      "Intro words here.",
      "The first sentence is wrapped\nacross two lines.",
    ]);
  });

  it("cuts a sentence longer than the limit at word boundaries", () => {
    const long = Array.from({ length: 530 }, (_, i) => `word${i}`).join(" ");
    const doc = paged([`Short intro. ${long} Short outro.`]);
    const chunks = chunkDocument("d", doc, words, { maxTokens: 100, overlapTokens: 10 });
    expectWellFormed("d", doc, chunks, words, 100);
    for (const chunk of chunks) {
      expect(doc.text[chunk.start - 1] ?? " ").toMatch(/\s/);
      expect(doc.text[chunk.end] ?? " ").toMatch(/\s/);
    }
    expect(chunks.length).toBeGreaterThanOrEqual(6);
    expect(chunks.at(-1)?.text).toMatch(/Short outro\.$/);
  });

  it("cuts an over-long sentence at line breaks before words", () => {
    const table = Array.from({ length: 12 }, (_, i) => `row ${i} alpha beta gamma`).join("\n");
    const doc = paged([table]);
    const chunks = chunkDocument("d", doc, words, { maxTokens: 17, overlapTokens: 0 });
    expectWellFormed("d", doc, chunks, words, 17);
    for (const chunk of chunks) expect(chunk.text).toMatch(/^row \d+ alpha beta gamma(\nrow \d+ alpha beta gamma)*$/);
  });

  it("cuts a single giant token-heavy word between characters", () => {
    const perChar: TokenCounter = { count: (text) => Math.ceil(text.replace(/\s/g, "").length / 4) };
    const blob = "QUJD".repeat(500); // 2,000 characters, 500 tokens, no whitespace
    const doc = paged([`Before. ${blob} After.`]);
    const chunks = chunkDocument("d", doc, perChar, { maxTokens: 64, overlapTokens: 8 });
    expectWellFormed("d", doc, chunks, perChar, 64);
    expect(chunks.map((c) => c.text).join("")).toContain(blob.slice(0, 200));
  });

  it("charges a counter's special tokens once per chunk", () => {
    const doc = paged([Array.from({ length: 30 }, (_, i) => sentence(i)).join(" ")]);
    const chunks = chunkDocument("d", doc, withSpecials, { maxTokens: 52, overlapTokens: 0 });
    expectWellFormed("d", doc, chunks, withSpecials, 52);
    expect(chunks).toHaveLength(6);
    for (const chunk of chunks) expect(withSpecials.count(chunk.text)).toBe(52);
  });

  it("produces nothing for empty or whitespace-only pages", () => {
    const doc = paged(["   \n\n\t ", "Only page two has text.", ""]);
    const chunks = chunkDocument("d", doc, words);
    expect(chunks.map((c) => [c.page, c.text])).toEqual([[2, "Only page two has text."]]);
    expect(chunkDocument("d", { text: "", pages: [] }, words)).toEqual([]);
    expect(chunkDocument("d", { text: " \n ", pages: [{ page: 1, start: 0, end: 3 }] }, words)).toEqual([]);
  });

  it("treats a document without page ranges as one page", () => {
    const chunks = chunkDocument("d", { text: "One. Two.", pages: [] }, words);
    expect(chunks).toEqual([
      { chunkId: "d:0", documentId: "d", ordinal: 0, page: 1, start: 0, end: 9, text: "One. Two." },
    ]);
  });

  it("keeps characters outside the BMP intact", () => {
    const doc = paged(["Emoji 😀 stay whole 🎉. Ünïcödé too. 日本語の文も大丈夫です。"]);
    const chunks = chunkDocument("d", doc, words, { maxTokens: 4, overlapTokens: 0 });
    expectWellFormed("d", doc, chunks, words, 4);
    for (const chunk of chunks) expect(chunk.text).not.toMatch(/^[\udc00-\udfff]|[\ud800-\udbff]$/);
  });

  it("rejects impossible options", () => {
    const doc = paged(["Text."]);
    expect(() => chunkDocument("d", doc, words, { maxTokens: 0 })).toThrow(RangeError);
    expect(() => chunkDocument("d", doc, words, { maxTokens: 10, overlapTokens: 10 })).toThrow(RangeError);
    expect(() => chunkDocument("d", doc, words, { maxTokens: 10, overlapTokens: -1 })).toThrow(RangeError);
    expect(() => chunkDocument("d", doc, withSpecials, { maxTokens: 2, overlapTokens: 0 })).toThrow(/special tokens/);
  });

  it("tokenizes each sentence once and chunks a 300-page document in well under a second", () => {
    const doc = paged(makeProsePages(300, 25));
    let calls = 0;
    let characters = 0;
    const counting: TokenCounter = {
      count(text) {
        calls++;
        characters += text.length;
        return words.count(text);
      },
    };
    const started = performance.now();
    const chunks = chunkDocument("big", doc, counting);
    const elapsed = performance.now() - started;
    expect(chunks.length).toBeGreaterThan(300);
    expect(new Set(chunks.map((c) => c.page)).size).toBe(300);
    expect(calls).toBe(300 * 25 + 1); // one per sentence, plus count("") for special tokens
    expect(characters).toBeLessThanOrEqual(doc.text.length);
    expect(elapsed).toBeLessThan(1000);
    console.log(
      `chunked ${doc.text.length} characters / 300 pages into ${chunks.length} chunks in ${elapsed.toFixed(1)} ms`,
    );
  });
});

// The embedder's real WordPiece tokenizer (fetched by `npm run models`; skipped when absent).
const embedderTokenizer = modelFiles(modelsRoot(), EMBEDDER_NAME).tokenizer;

describe.skipIf(!existsSync(embedderTokenizer))("chunkDocument with the embedder's tokenizer", () => {
  it("keeps every chunk within the limit as the model counts it", async () => {
    const tokenizer = TextTokenizer.fromFile(embedderTokenizer, EMBEDDER_MAX_TOKENS);
    const counter: TokenCounter = { count: (text) => tokenizer.countTokens(text) };
    const prose = makeProsePages(3, 20).map(
      (page, i) =>
        `${page} Unusual words: pseudopseudohypoparathyroidism, naïveté, Zürich's façade, 3.14159 % and C++/TypeScript (§${i}). ` +
        `A very long run-on list follows ${Array.from({ length: 260 }, (_, k) => `item-${k}`).join(" ")} without any stop`,
    );
    const doc = await extractText(makePdf(prose), "application/pdf");
    const chunks = chunkDocument("real", doc, counter, { maxTokens: 128, overlapTokens: 24 });
    expectWellFormed("real", doc, chunks, counter, 128);
    expect(new Set(chunks.map((c) => c.page))).toEqual(new Set([1, 2, 3]));
    // The sum of sentence counts is what the model sees: chunks are filled close to the limit.
    const sizes = chunks.map((c) => counter.count(c.text));
    expect(Math.max(...sizes)).toBeGreaterThan(110);
    // The encoding the embedder feeds the model is not truncated.
    for (const chunk of chunks) expect(tokenizer.encode(chunk.text).ids.length).toBe(counter.count(chunk.text) + 2);
  });

  it("splits a huge single line the tokenizer reads as one unknown word into bounded chunks", () => {
    const tokenizer = TextTokenizer.fromFile(embedderTokenizer, EMBEDDER_MAX_TOKENS);
    const counter: TokenCounter = { count: (text) => tokenizer.countTokens(text) };
    // WordPiece turns any word over 100 characters into a single [UNK]: tokens alone bound nothing.
    expect(counter.count("x".repeat(5_000))).toBe(1);
    const text = `${"x".repeat(2_000_000)} tail`;
    const chunks = chunkDocument("huge", { text, pages: [] }, counter);
    expect(chunks.length).toBeGreaterThan(800);
    for (const chunk of chunks) {
      expect(chunk.text.length).toBeLessThanOrEqual(200 * 12);
      expect(text.slice(chunk.start, chunk.end)).toBe(chunk.text);
    }
    expect(chunks.at(-1)?.text.endsWith("tail")).toBe(true);
  });
});

describe("chunkDocument character limit", () => {
  it("bounds every chunk by characters as well as tokens, whatever the line structure", () => {
    const oneWord: TokenCounter = { count: (text) => (text.trim() ? 1 : 0) }; // every span "one token"
    for (const text of ["a".repeat(50_000), `${"long line ".repeat(5_000)}`, "é".repeat(9_999)]) {
      const chunks = chunkDocument("d", { text, pages: [] }, oneWord, { maxTokens: 100, maxChars: 1_000 });
      expect(chunks.length).toBeGreaterThan(1);
      for (const chunk of chunks) {
        expect(chunk.text.length).toBeLessThanOrEqual(1_000);
        expect(text.slice(chunk.start, chunk.end)).toBe(chunk.text);
      }
    }
  });
});
