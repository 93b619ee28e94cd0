/**
 * Text extraction for the split stage: turns an uploaded document's bytes into plain text plus
 * the character range of each page within it. Pure code (no AWS): PDF through pdf-parse
 * (pdf.js), HTML through htmlparser2, Markdown through marked's lexer, plain text through
 * TextDecoder with encoding detection. Every failure is an `ExtractionError` whose message is
 * fit to show the user as the job's failure reason.
 */
import { decodeHTML } from "entities";
import { Parser as HtmlParser } from "htmlparser2";
import { Lexer, type Token, type Tokens } from "marked";
import { PDFParse } from "pdf-parse";
import { ExtractionError } from "./errors.ts";

/** The character range [start, end) of one page within `ExtractedDocument.text`. */
export interface PageRange {
  /** 1-based page number. */
  page: number;
  start: number;
  end: number;
}

export interface ExtractedDocument {
  text: string;
  /** One entry per page, in order (one page for formats without pages). Ranges never overlap. */
  pages: PageRange[];
}

export const PDF = "application/pdf";
export const PLAIN_TEXT = "text/plain";
export const MARKDOWN = "text/markdown";
export const HTML = "text/html";
export type SupportedContentType = typeof PDF | typeof PLAIN_TEXT | typeof MARKDOWN | typeof HTML;
export const SUPPORTED_CONTENT_TYPES: readonly SupportedContentType[] = [PDF, PLAIN_TEXT, MARKDOWN, HTML];

const ALIASES: Record<string, SupportedContentType> = {
  "application/pdf": PDF,
  "application/x-pdf": PDF,
  "text/plain": PLAIN_TEXT,
  "text/markdown": MARKDOWN,
  "text/x-markdown": MARKDOWN,
  "text/html": HTML,
  "application/xhtml+xml": HTML,
};

/** The supported type a Content-Type header names (parameters and case ignored), if any. */
export function normalizeContentType(contentType: string): SupportedContentType | undefined {
  const essence = contentType.split(";")[0]?.trim().toLowerCase() ?? "";
  return ALIASES[essence];
}

export const isSupportedContentType = (contentType: string): boolean => normalizeContentType(contentType) !== undefined;

/** The `charset` parameter of a Content-Type header, if any. */
export function charsetOf(contentType: string): string | undefined {
  return /;\s*charset\s*=\s*"?([^";\s]+)"?/i.exec(contentType)?.[1]?.toLowerCase();
}

/** Extracts the text of a document; `contentType` may carry a charset parameter. */
export async function extractText(bytes: Uint8Array, contentType: string): Promise<ExtractedDocument> {
  const type = normalizeContentType(contentType);
  if (!type) {
    throw new ExtractionError(
      "UNSUPPORTED_TYPE",
      `Unsupported content type "${contentType}": DataDistiller reads PDF, plain text, Markdown and HTML documents.`,
    );
  }
  if (bytes.length === 0) throw new ExtractionError("NO_TEXT", "The uploaded file is empty.");
  assertDeclaredType(bytes, contentType);
  if (type === PDF) return extractPdf(bytes);

  const declaredCharset = charsetOf(contentType) ?? (type === HTML ? sniffHtmlCharset(bytes) : undefined);
  const source = decodeText(bytes, declaredCharset).text;
  const text = cleanText(type === HTML ? htmlToText(source) : type === MARKDOWN ? markdownToText(source) : source);
  if (text.length === 0) {
    throw new ExtractionError("NO_TEXT", "The document contains no text.");
  }
  return { text, pages: [{ page: 1, start: 0, end: text.length }] };
}

// ---------------------------------------------------------------------------------------------
// PDF
// ---------------------------------------------------------------------------------------------

/** Between two pages in the extracted text (so no sentence runs across a page break). */
const PAGE_SEPARATOR = "\n\n";

async function extractPdf(bytes: Uint8Array): Promise<ExtractedDocument> {
  // pdf.js may transfer (detach) the buffer it is given: hand it a copy, the caller keeps its bytes.
  // In Node pdf.js runs its "worker" in-process (no worker thread or worker file fetch).
  const parser = new PDFParse({
    data: bytes.slice(),
    verbosity: 0,
    isEvalSupported: false,
    disableFontFace: true,
    useSystemFonts: false,
  });
  let pageTexts: { num: number; text: string }[];
  try {
    pageTexts = (await parser.getText()).pages;
  } catch (error) {
    throw pdfError(error);
  } finally {
    await parser.destroy().catch(() => undefined);
  }

  let text = "";
  const pages: PageRange[] = [];
  for (const { num, text: raw } of pageTexts) {
    const pageText = cleanText(dehyphenate(raw));
    if (pageText.length > 0 && text.length > 0) text += PAGE_SEPARATOR;
    const start = text.length;
    text += pageText;
    pages.push({ page: num, start, end: text.length });
  }
  if (text.length === 0) {
    const count = pageTexts.length;
    throw new ExtractionError(
      "NO_TEXT",
      `The PDF has no extractable text on any of its ${count} page${count === 1 ? "" : "s"}: it looks like a scanned ` +
        "or image-only document. Text recognition (OCR) is not supported; upload a PDF with a text layer.",
    );
  }
  return { text, pages };
}

function pdfError(error: unknown): ExtractionError {
  const name = error instanceof Error ? error.name : "";
  const detail = error instanceof Error ? error.message : String(error);
  if (name === "PasswordException") {
    return new ExtractionError(
      "ENCRYPTED_PDF",
      "The PDF is password-protected, so its text cannot be read. Remove the password and upload it again.",
      { cause: error },
    );
  }
  return new ExtractionError(
    "CORRUPT_DOCUMENT",
    `The PDF could not be read: the file is damaged, truncated or not a valid PDF (${detail.replace(/\.$/, "")}).`,
    { cause: error },
  );
}

/** Joins words hyphenated across a line break ("infor-\nmation" → "information"). */
const dehyphenate = (text: string): string => text.replace(/(\p{L})-\n(\p{Ll})/gu, "$1$2");

// ---------------------------------------------------------------------------------------------
// Text decoding and clean-up
// ---------------------------------------------------------------------------------------------

/**
 * Decodes text bytes. A byte-order mark decides (UTF-8, UTF-16 LE/BE); then a declared UTF-16
 * charset; then valid UTF-8 is UTF-8 (invalid UTF-8 is almost never valid by accident); then
 * BOM-less UTF-16 recognised by its zero bytes; then the declared charset; then windows-1252
 * (what "latin1"/"iso-8859-1" mean in practice).
 */
export function decodeText(bytes: Uint8Array, declaredCharset?: string): { text: string; encoding: string } {
  const decode = (encoding: string, data: Uint8Array, fatal = false) => ({
    text:
      encoding === "windows-1252"
        ? decodeWindows1252(data)
        : new TextDecoder(encoding, { fatal, ignoreBOM: true }).decode(data),
    encoding,
  });
  if (bytes[0] === 0xef && bytes[1] === 0xbb && bytes[2] === 0xbf) return decode("utf-8", bytes.subarray(3));
  if (bytes[0] === 0xff && bytes[1] === 0xfe) return decode("utf-16le", bytes.subarray(2));
  if (bytes[0] === 0xfe && bytes[1] === 0xff) return decode("utf-16be", bytes.subarray(2));

  const declared = declaredCharset && supportedEncoding(declaredCharset);
  if (declared === "utf-16le" || declared === "utf-16be") return decode(declared, bytes);
  try {
    return decode("utf-8", bytes, true);
  } catch {
    // not UTF-8: keep looking
  }
  const utf16 = bomlessUtf16(bytes);
  if (utf16) return decode(utf16, bytes);
  if (declared && declared !== "utf-8") return decode(declared, bytes);
  return decode("windows-1252", bytes);
}

/** windows-1252 characters of the bytes 0x80–0x9F (the five unassigned bytes map to themselves). */
const CP1252_C1 =
  "\u20ac\u0081\u201a\u0192\u201e\u2026\u2020\u2021\u02c6\u2030\u0160\u2039\u0152\u008d\u017d\u008f" +
  "\u0090\u2018\u2019\u201c\u201d\u2022\u2013\u2014\u02dc\u2122\u0161\u203a\u0153\u009d\u017e\u0178";

/**
 * windows-1252, which is what "latin1" and "iso-8859-1" mean per the WHATWG Encoding Standard.
 * Node's own decoder maps 0x80–0x9F to C1 controls since 20.18.3/22.13 (nodejs/node#60888), so
 * those bytes are mapped here.
 */
export function decodeWindows1252(bytes: Uint8Array): string {
  return new TextDecoder("windows-1252")
    .decode(bytes)
    .replace(/[\u0080-\u009f]/g, (c) => CP1252_C1[c.charCodeAt(0) - 0x80] ?? c);
}

/** The canonical name of an encoding TextDecoder supports, if it does. */
function supportedEncoding(label: string): string | undefined {
  try {
    return new TextDecoder(label).encoding;
  } catch {
    return undefined;
  }
}

function bomlessUtf16(bytes: Uint8Array): "utf-16le" | "utf-16be" | undefined {
  const pairs = Math.min(bytes.length >> 1, 4096);
  if (pairs < 2) return undefined;
  let evenZeros = 0;
  let oddZeros = 0;
  for (let i = 0; i < pairs; i++) {
    if (bytes[2 * i] === 0) evenZeros++;
    if (bytes[2 * i + 1] === 0) oddZeros++;
  }
  if (oddZeros > pairs * 0.3 && evenZeros < pairs * 0.05) return "utf-16le";
  if (evenZeros > pairs * 0.3 && oddZeros < pairs * 0.05) return "utf-16be";
  return undefined;
}

function sniffHtmlCharset(bytes: Uint8Array): string | undefined {
  const head = new TextDecoder("windows-1252").decode(bytes.subarray(0, 2048));
  return /<meta[^>]+charset\s*=\s*["']?\s*([\w.:-]+)/i.exec(head)?.[1]?.toLowerCase();
}

/**
 * Normalizes extracted text: NFC, "\n" line ends, no control or invisible formatting characters
 * (soft hyphen, zero-width space, BOM), no trailing blanks on a line, at most one blank line in a
 * row, nothing leading or trailing.
 */
export function cleanText(text: string): string {
  return (
    text
      .normalize("NFC")
      .replace(/\r\n?/g, "\n")
      .replace(/\f/g, "\n\n")
      // biome-ignore lint/suspicious/noControlCharactersInRegex: removing control characters is the point
      .replace(/[\u0000-\u0008\u000b\u000e-\u001f\u007f\u00ad\u200b\u2060\ufeff]/g, "")
      .replace(/[ \t\u00a0]+$/gm, "")
      .replace(/\n{3,}/g, "\n\n")
      .trim()
  );
}

// ---------------------------------------------------------------------------------------------
// HTML
// ---------------------------------------------------------------------------------------------

/** Elements whose content is never rendered as text. */
const HIDDEN_ELEMENTS = new Set([
  "head",
  "title",
  "script",
  "style",
  "noscript",
  "template",
  "svg",
  "math",
  "iframe",
  "object",
  "canvas",
  "audio",
  "video",
  "map",
  "datalist",
]);
/** Block elements that start a paragraph (a blank line before and after). */
const PARAGRAPH_ELEMENTS = new Set([
  "p",
  "h1",
  "h2",
  "h3",
  "h4",
  "h5",
  "h6",
  "blockquote",
  "pre",
  "table",
  "ul",
  "ol",
  "dl",
  "figure",
  "section",
  "article",
  "header",
  "footer",
  "main",
  "nav",
  "aside",
  "form",
  "fieldset",
  "details",
  "hr",
  "address",
  "body",
]);
/** Block elements that start a line. */
const LINE_ELEMENTS = new Set([
  "div",
  "li",
  "tr",
  "dt",
  "dd",
  "figcaption",
  "caption",
  "summary",
  "legend",
  "option",
  "center",
  "tbody",
  "thead",
  "tfoot",
]);
const CELL_ELEMENTS = new Set(["td", "th"]);
const PREFORMATTED_ELEMENTS = new Set(["pre", "textarea", "listing", "plaintext"]);

function isHiddenByAttributes(attributes: Record<string, string>): boolean {
  if ("hidden" in attributes) return true;
  const style = attributes.style?.toLowerCase().replace(/\s+/g, "") ?? "";
  return style.includes("display:none") || style.includes("visibility:hidden");
}

/**
 * The text a reader sees in an HTML document, roughly as `innerText` renders it: hidden and
 * non-text elements dropped, entities decoded, whitespace collapsed outside preformatted
 * elements, block elements on their own lines, table cells separated by tabs.
 */
export function htmlToText(html: string): string {
  const out: string[] = [];
  let pendingBreak = 0; // newlines owed before the next text: 1 = line, 2 = paragraph
  let pendingSpace = false;
  let pendingCell = false;
  let atLineStart = true;
  let hiddenDepth = 0;
  let preDepth = 0;
  const open: { name: string; hides: boolean }[] = [];

  const requestBreak = (n: number) => {
    if (out.length > 0) pendingBreak = Math.max(pendingBreak, n);
    pendingSpace = false;
    pendingCell = false;
  };
  const write = (text: string) => {
    if (pendingBreak > 0) {
      out.push("\n".repeat(pendingBreak));
      atLineStart = true;
    } else if (pendingCell && !atLineStart) {
      out.push("\t");
    } else if (pendingSpace && !atLineStart) {
      out.push(" ");
    }
    pendingBreak = 0;
    pendingSpace = false;
    pendingCell = false;
    out.push(text);
    atLineStart = text.endsWith("\n");
  };

  const parser = new HtmlParser(
    {
      onopentag(name, attributes) {
        const hides = HIDDEN_ELEMENTS.has(name) || isHiddenByAttributes(attributes);
        open.push({ name, hides });
        if (hides) hiddenDepth++;
        if (hiddenDepth > 0) return;
        if (PREFORMATTED_ELEMENTS.has(name)) preDepth++;
        if (name === "br") {
          write("\n");
        } else if (PARAGRAPH_ELEMENTS.has(name)) {
          requestBreak(2);
        } else if (LINE_ELEMENTS.has(name)) {
          requestBreak(1);
        } else if (CELL_ELEMENTS.has(name)) {
          pendingCell = true;
        }
      },
      onclosetag(name) {
        // htmlparser2 closes every element it opened (implied closes included), innermost first.
        const index = open.findLastIndex((element) => element.name === name);
        if (index < 0) return;
        for (const element of open.splice(index)) {
          if (element.hides) {
            hiddenDepth--;
            continue;
          }
          if (hiddenDepth > 0) continue;
          if (PREFORMATTED_ELEMENTS.has(element.name)) preDepth--;
          if (PARAGRAPH_ELEMENTS.has(element.name)) requestBreak(2);
          else if (LINE_ELEMENTS.has(element.name)) requestBreak(1);
        }
      },
      ontext(data) {
        if (hiddenDepth > 0 || data.length === 0) return;
        if (preDepth > 0) {
          write(data);
          return;
        }
        const collapsed = data.replace(/[ \t\n\r\f]+/g, " ");
        if (collapsed === " ") {
          if (!atLineStart) pendingSpace = true;
          return;
        }
        const leading = collapsed.startsWith(" ");
        const trailing = collapsed.endsWith(" ");
        const body = collapsed.slice(leading ? 1 : 0, trailing ? -1 : undefined);
        if (leading && !atLineStart) pendingSpace = true;
        write(body);
        if (trailing) pendingSpace = true;
      },
    },
    { decodeEntities: true, lowerCaseTags: true, lowerCaseAttributeNames: true },
  );
  parser.write(html);
  parser.end();
  return out.join("");
}

// ---------------------------------------------------------------------------------------------
// Markdown
// ---------------------------------------------------------------------------------------------

const FRONT_MATTER =
  /^(?:---[ \t]*\r?\n[\s\S]*?\r?\n(?:---|\.\.\.)|\+\+\+[ \t]*\r?\n[\s\S]*?\r?\n\+\+\+)[ \t]*(?:\r?\n|$)/;

/**
 * Readable text of a Markdown document: markup removed, headings/paragraphs/list items/table
 * rows on their own lines, links reduced to their text, images dropped, code kept verbatim,
 * embedded HTML reduced to its visible text, YAML/TOML front matter dropped.
 */
export function markdownToText(markdown: string): string {
  const body = markdown.replace(/^\ufeff/, "").replace(FRONT_MATTER, "");
  // marked parses nested blocks by recursion: a blockquote or list nested thousands deep would
  // exhaust the stack. Such a document is read as plain text with its block markers removed.
  if (markdownNesting(body) > MAX_MARKDOWN_NESTING) return markdownAsPlainText(body);
  try {
    return renderBlocks(Lexer.lex(body, { gfm: true })).join("\n\n");
  } catch (error) {
    // Deep inline nesting (brackets, emphasis) recurses too; the stack error is the only signal.
    if (error instanceof RangeError) return markdownAsPlainText(body);
    throw error;
  }
}

/** Deeper block nesting than this is read as plain text (real documents nest a handful of levels). */
export const MAX_MARKDOWN_NESTING = 64;

/** The deepest block nesting of any line: its leading blockquote markers plus list indentation levels. */
export function markdownNesting(markdown: string): number {
  let deepest = 0;
  for (const match of markdown.matchAll(/^[ \t>*+\-\d.)]+/gm)) {
    const prefix = match[0];
    let quotes = 0;
    for (const char of prefix) if (char === ">") quotes++;
    const indent = (/^[ \t]*/.exec(prefix)?.[0].replace(/\t/g, "    ").length ?? 0) >> 1;
    deepest = Math.max(deepest, quotes + indent);
  }
  return deepest;
}

/** Markdown as plain text without parsing: each line loses its blockquote and list markers. */
function markdownAsPlainText(markdown: string): string {
  return markdown
    .split(/\r?\n/)
    .map((line) => line.replace(/^(?:[ \t]*>)+[ \t]?/, "").replace(/^[ \t]*(?:[*+-]|\d{1,9}[.)])[ \t]+/, ""))
    .join("\n");
}

function renderBlocks(tokens: Token[]): string[] {
  const blocks: string[] = [];
  for (const token of tokens) {
    const text = renderBlock(token);
    if (text.trim() !== "") blocks.push(text);
  }
  return blocks;
}

function renderBlock(token: Token): string {
  switch (token.type) {
    case "space":
    case "hr":
    case "def":
      return "";
    case "code":
      return (token as Tokens.Code).text;
    case "blockquote":
      return renderBlocks((token as Tokens.Blockquote).tokens).join("\n\n");
    case "list":
      return (token as Tokens.List).items.map((item) => renderBlocks(item.tokens).join("\n")).join("\n");
    case "table": {
      const table = token as Tokens.Table;
      return [table.header, ...table.rows]
        .map((row) => row.map((cell) => renderInline(cell.tokens).trim()).join("\t"))
        .join("\n");
    }
    case "html":
      return htmlToText((token as Tokens.HTML).text);
    default:
      return renderInline([token]);
  }
}

function renderInline(tokens: Token[] | undefined): string {
  let out = "";
  for (const token of tokens ?? []) {
    switch (token.type) {
      case "text": {
        const text = token as Tokens.Text;
        out += text.tokens ? renderInline(text.tokens) : decodeHTML(text.text);
        break;
      }
      case "escape":
      case "codespan":
        out += (token as Tokens.Escape | Tokens.Codespan).text;
        break;
      case "br":
        out += "\n";
        break;
      case "image":
      case "html": // an inline tag; the text between tags comes as text tokens
      case "checkbox":
        break;
      default:
        if ("tokens" in token && Array.isArray(token.tokens)) out += renderInline(token.tokens);
        else if ("text" in token && typeof token.text === "string") out += decodeHTML(token.text);
    }
  }
  return out;
}

// ---------------------------------------------------------------------------------------------
// Content sniffing
// ---------------------------------------------------------------------------------------------

interface Signature {
  type: string;
  description: string;
  matches(bytes: Uint8Array): boolean;
}

const startsWith = (bytes: Uint8Array, prefix: readonly number[], offset = 0): boolean =>
  bytes.length >= offset + prefix.length && prefix.every((b, i) => bytes[offset + i] === b);
const ascii = (text: string): number[] => Array.from(text, (c) => c.charCodeAt(0));

const BINARY_SIGNATURES: Signature[] = [
  {
    type: "image/png",
    description: "a PNG image",
    matches: (b) => startsWith(b, [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]),
  },
  { type: "image/jpeg", description: "a JPEG image", matches: (b) => startsWith(b, [0xff, 0xd8, 0xff]) },
  {
    type: "image/gif",
    description: "a GIF image",
    matches: (b) => startsWith(b, ascii("GIF87a")) || startsWith(b, ascii("GIF89a")),
  },
  {
    type: "image/webp",
    description: "a WebP image",
    matches: (b) => startsWith(b, ascii("RIFF")) && startsWith(b, ascii("WEBP"), 8),
  },
  {
    type: "image/tiff",
    description: "a TIFF image",
    matches: (b) => startsWith(b, [0x49, 0x49, 0x2a, 0x00]) || startsWith(b, [0x4d, 0x4d, 0x00, 0x2a]),
  },
  {
    type: "application/zip",
    description: "a ZIP archive (Word, Excel, PowerPoint and EPUB files are ZIP archives)",
    matches: (b) => startsWith(b, [0x50, 0x4b, 0x03, 0x04]) || startsWith(b, [0x50, 0x4b, 0x05, 0x06]),
  },
  {
    type: "application/x-ole-storage",
    description: "a legacy Microsoft Office file (.doc/.xls/.ppt)",
    matches: (b) => startsWith(b, [0xd0, 0xcf, 0x11, 0xe0, 0xa1, 0xb1, 0x1a, 0xe1]),
  },
  { type: "application/gzip", description: "a gzip archive", matches: (b) => startsWith(b, [0x1f, 0x8b, 0x08]) },
  {
    type: "application/x-7z-compressed",
    description: "a 7-Zip archive",
    matches: (b) => startsWith(b, [0x37, 0x7a, 0xbc, 0xaf, 0x27, 0x1c]),
  },
  { type: "application/vnd.rar", description: "a RAR archive", matches: (b) => startsWith(b, ascii("Rar!\x1a\x07")) },
  {
    type: "application/x-elf",
    description: "an ELF executable",
    matches: (b) => startsWith(b, [0x7f, 0x45, 0x4c, 0x46]),
  },
];

const PDF_MAGIC = ascii("%PDF-");
const isPdf = (bytes: Uint8Array) => startsWith(bytes, PDF_MAGIC);

/** Bytes sampled when deciding whether a file is text. */
const TEXT_SAMPLE = 64 * 1024;

/**
 * Whether the bytes look like text: UTF-16 with a BOM, or no known binary signature, no NUL byte
 * and (almost: at most 2%, or 4) no C0 control characters other than tab, line feed, form feed,
 * carriage return and escape, in the first 64 KiB.
 */
export function looksLikeText(bytes: Uint8Array): boolean {
  if (startsWith(bytes, [0xff, 0xfe]) || startsWith(bytes, [0xfe, 0xff])) return true;
  if (BINARY_SIGNATURES.some((signature) => signature.matches(bytes))) return false;
  const sample = bytes.subarray(0, TEXT_SAMPLE);
  let controls = 0;
  for (const byte of sample) {
    if (byte === 0) return false;
    if (byte < 0x20 && byte !== 0x09 && byte !== 0x0a && byte !== 0x0c && byte !== 0x0d && byte !== 0x1b) controls++;
  }
  return controls <= Math.max(4, sample.length * 0.02);
}

/**
 * What the bytes are, judged by their magic bytes: `application/pdf`, a known binary type
 * (`image/png`, `application/zip`, ...), `text/html` or `text/plain` for text (Markdown cannot be
 * told from plain text), `application/octet-stream` for other binary data, undefined when empty.
 */
export function detectContentType(bytes: Uint8Array): string | undefined {
  if (bytes.length === 0) return undefined;
  if (isPdf(bytes)) return PDF;
  const signature = BINARY_SIGNATURES.find((s) => s.matches(bytes));
  if (signature) return signature.type;
  if (!looksLikeText(bytes)) return "application/octet-stream";
  const head = decodeText(bytes.subarray(0, 1024)).text.trimStart().slice(0, 64).toLowerCase();
  return head.startsWith("<!doctype html") || head.startsWith("<html") ? HTML : PLAIN_TEXT;
}

/**
 * Whether the bytes can be what the declared (supported) type says: a PDF starts with `%PDF-`;
 * text types must not be binary. An unsupported declared type never matches. An empty file
 * matches the text types (extraction then reports it empty) but not PDF.
 */
export function matchesDeclaredType(bytes: Uint8Array, declaredType: string): boolean {
  const type = normalizeContentType(declaredType);
  if (!type) return false;
  if (type === PDF) return isPdf(bytes);
  return !isPdf(bytes) && looksLikeText(bytes);
}

/** A reader's description of what the bytes are, for error messages. */
export function describeContent(bytes: Uint8Array): string {
  if (bytes.length === 0) return "an empty file";
  if (isPdf(bytes)) return "a PDF document";
  const signature = BINARY_SIGNATURES.find((s) => s.matches(bytes));
  if (signature) return signature.description;
  return looksLikeText(bytes) ? "a text file" : "binary data";
}

/**
 * Throws `UNSUPPORTED_TYPE` for a type the split stage cannot read and `TYPE_MISMATCH` when the
 * bytes contradict the declared type; meant for the moment an upload lands.
 */
export function assertDeclaredType(bytes: Uint8Array, declaredType: string): void {
  if (!isSupportedContentType(declaredType)) {
    throw new ExtractionError(
      "UNSUPPORTED_TYPE",
      `Unsupported content type "${declaredType}": DataDistiller reads PDF, plain text, Markdown and HTML documents.`,
    );
  }
  if (!matchesDeclaredType(bytes, declaredType)) {
    throw new ExtractionError(
      "TYPE_MISMATCH",
      `The file was uploaded as "${declaredType.split(";")[0]?.trim()}" but its content is ${describeContent(bytes)}.`,
    );
  }
}
