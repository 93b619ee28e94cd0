/** Pure text formatting for the CLI's human output (tables, sizes, times, search snippets). */

/** Renders text (no escape codes here: colors are applied by the caller). */
export type Style = (text: string) => string;

export function formatBytes(bytes: number): string {
  if (bytes < 1024) return `${bytes} B`;
  const units = ["kB", "MB", "GB", "TB"];
  let value = bytes / 1024;
  let unit = 0;
  while (value >= 1024 && unit < units.length - 1) {
    value /= 1024;
    unit++;
  }
  return `${value.toFixed(value < 10 ? 1 : 0)} ${units[unit]}`;
}

/** "42s ago", "5m ago", "3h ago", "2d ago" from an ISO time. */
export function formatAge(iso: string, now = Date.now()): string {
  const seconds = Math.max(0, Math.round((now - Date.parse(iso)) / 1000));
  if (Number.isNaN(seconds)) return iso;
  if (seconds < 60) return `${seconds}s ago`;
  if (seconds < 3600) return `${Math.floor(seconds / 60)}m ago`;
  if (seconds < 86_400) return `${Math.floor(seconds / 3600)}h ago`;
  return `${Math.floor(seconds / 86_400)}d ago`;
}

export function formatDuration(ms: number): string {
  if (ms < 1000) return `${Math.round(ms)} ms`;
  if (ms < 60_000) return `${(ms / 1000).toFixed(1)} s`;
  return `${Math.floor(ms / 60_000)}m${String(Math.round((ms % 60_000) / 1000)).padStart(2, "0")}s`;
}

/** A score with enough digits to tell fused RRF scores (~0.03) apart; "–" when absent. */
export function formatScore(score: number | undefined): string {
  if (score === undefined) return "–";
  return Math.abs(score) >= 10 ? score.toFixed(2) : score.toFixed(4);
}

/** A plain table: columns padded to their widest cell (the last column is not padded). */
export function table(header: string[], rows: string[][], style: { header?: Style } = {}): string {
  const widths = header.map((title, column) =>
    Math.max(title.length, ...rows.map((row) => (row[column] ?? "").length)),
  );
  const line = (cells: string[]) =>
    cells
      .map((cell, column) => (column === cells.length - 1 ? cell : cell.padEnd(widths[column] ?? 0)))
      .join("  ")
      .trimEnd();
  const head = line(header);
  return [style.header ? style.header(head) : head, ...rows.map(line)].join("\n");
}

const ENTITIES: Readonly<Record<string, string>> = { amp: "&", lt: "<", gt: ">", quot: '"', "#39": "'" };

/** Reads the API's `highlights` (HTML-escaped text, matches in <mark>…</mark>) back into text and spans. */
export function parseHighlights(highlights: string): { text: string; spans: Array<[number, number]> } {
  const decode = (html: string) => html.replace(/&(amp|lt|gt|quot|#39);/g, (_, name: string) => ENTITIES[name] ?? "");
  let text = "";
  const spans: Array<[number, number]> = [];
  const parts = highlights.split(/<mark>|<\/mark>/);
  parts.forEach((part, index) => {
    const decoded = decode(part);
    // Odd parts sit between <mark> and </mark>.
    if (index % 2 === 1) spans.push([text.length, text.length + decoded.length]);
    text += decoded;
  });
  return { text, spans };
}

/**
 * A window of about `width` characters around the first highlighted word, whitespace collapsed,
 * with each highlighted word passed through `mark` and "…" where text was cut.
 */
export function snippet(highlights: string, mark: Style, width = 240): string {
  const { text, spans } = parseHighlights(highlights);
  const first = spans[0]?.[0] ?? 0;
  let start = Math.max(0, first - Math.floor(width / 4));
  let end = Math.min(text.length, start + width);
  start = Math.max(0, Math.min(start, end - width));
  // Cut at word boundaries.
  if (start > 0) {
    const space = text.indexOf(" ", start);
    if (space !== -1 && space < first) start = space + 1;
  }
  if (end < text.length) {
    const space = text.lastIndexOf(" ", end);
    if (space > start) end = space;
  }
  let out = "";
  let at = start;
  for (const [spanStart, spanEnd] of spans) {
    if (spanEnd <= start || spanStart >= end) continue;
    const from = Math.max(spanStart, start);
    const to = Math.min(spanEnd, end);
    out += collapse(text.slice(at, from)) + mark(collapse(text.slice(from, to)));
    at = to;
  }
  out += collapse(text.slice(at, end));
  return `${start > 0 ? "…" : ""}${out.trim()}${end < text.length ? "…" : ""}`;
}

const collapse = (text: string) => text.replace(/\s+/g, " ");
