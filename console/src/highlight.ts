/**
 * The API's highlights are the chunk text HTML-escaped with the matched words in <mark>…</mark>.
 * They are parsed back into plain text parts here and rendered with text nodes, so a document's
 * text can never become markup.
 */
import { h } from "./dom.ts";

export interface Part {
  text: string;
  mark: boolean;
}

const ENTITIES: Readonly<Record<string, string>> = {
  "&amp;": "&",
  "&lt;": "<",
  "&gt;": ">",
  "&quot;": '"',
  "&#39;": "'",
};
const unescapeHtml = (text: string) =>
  text.replace(/&(?:amp|lt|gt|quot|#39);/g, (entity) => ENTITIES[entity] ?? entity);

export function parseHighlights(highlights: string): Part[] {
  const parts: Part[] = [];
  // Escaped text cannot contain a literal "<", so the tags are the only markup there is.
  highlights.split(/(<mark>[^<]*<\/mark>)/).forEach((piece) => {
    if (!piece) return;
    const marked = /^<mark>([^<]*)<\/mark>$/.exec(piece);
    parts.push(
      marked ? { text: unescapeHtml(marked[1] ?? ""), mark: true } : { text: unescapeHtml(piece), mark: false },
    );
  });
  return parts;
}

/** A window of about `max` characters around the first match, cut at word boundaries. */
export function snippet(parts: Part[], max = 360): { parts: Part[]; clipped: boolean } {
  const total = parts.reduce((sum, part) => sum + part.text.length, 0);
  if (total <= max) return { parts, clipped: false };
  let firstMark = 0;
  for (const part of parts) {
    if (part.mark) break;
    firstMark += part.text.length;
  }
  if (firstMark >= total) firstMark = 0;
  let start = Math.max(0, Math.min(firstMark - 80, total - max));
  let end = Math.min(total, start + max);
  const full = parts.map((part) => part.text).join("");
  if (start > 0) start = nextBoundary(full, start);
  if (end < total) end = previousBoundary(full, end);
  const out: Part[] = [];
  let at = 0;
  for (const part of parts) {
    const from = Math.max(start, at);
    const to = Math.min(end, at + part.text.length);
    if (from < to) out.push({ text: part.text.slice(from - at, to - at), mark: part.mark });
    at += part.text.length;
  }
  if (start > 0) out.unshift({ text: "… ", mark: false });
  if (end < total) out.push({ text: " …", mark: false });
  return { parts: out, clipped: true };
}

const nextBoundary = (text: string, at: number) => {
  const space = text.indexOf(" ", at);
  return space === -1 || space - at > 30 ? at : space + 1;
};
const previousBoundary = (text: string, at: number) => {
  const space = text.lastIndexOf(" ", at);
  return space === -1 || at - space > 30 ? at : space;
};

export function renderParts(parts: Part[]): Node[] {
  return parts.map((part) =>
    part.mark ? h("mark", { testid: "highlight" }, part.text) : document.createTextNode(part.text),
  );
}
