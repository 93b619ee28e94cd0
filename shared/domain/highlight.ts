/**
 * Query-term highlighting with the BM25 analysis (`analyze` in bm25.ts): a word is marked when one of
 * its index terms equals one of the query's, so matching follows exactly what BM25 matched (stems:
 * "running" marks "runs"; stop words never match; case and diacritics are folded).
 */
import { analyze, prepareText } from "./bm25.ts";

export interface Highlight {
  /** The text HTML-escaped, with each matched word wrapped in <mark>…</mark>. */
  text: string;
  /** Offsets [start, end) of the matched words in the original (unescaped) text, in order. */
  spans: Array<[number, number]>;
}

const ESCAPES: Readonly<Record<string, string>> = {
  "&": "&amp;",
  "<": "&lt;",
  ">": "&gt;",
  '"': "&quot;",
  "'": "&#39;",
};

export function escapeHtml(text: string): string {
  return text.replace(/[&<>"']/g, (c) => ESCAPES[c] as string);
}

/** Highlights the words of `text` that match `query` (query text, or terms from `prepareText`). */
export function highlight(text: string, query: string | readonly string[]): Highlight {
  const terms = new Set(typeof query === "string" ? prepareText(query) : query);
  const spans: Array<[number, number]> = [];
  if (terms.size > 0) {
    for (const token of analyze(text)) {
      if (!terms.has(token.term)) continue;
      const last = spans[spans.length - 1];
      // A word can yield two terms ("isn't" → is, not): mark it once.
      if (last !== undefined && last[0] === token.start) continue;
      spans.push([token.start, token.end]);
    }
  }
  let out = "";
  let at = 0;
  for (const [start, end] of spans) {
    out += `${escapeHtml(text.slice(at, start))}<mark>${escapeHtml(text.slice(start, end))}</mark>`;
    at = end;
  }
  out += escapeHtml(text.slice(at));
  return { text: out, spans };
}
