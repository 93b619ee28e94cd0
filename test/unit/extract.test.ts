import { describe, expect, it } from "vitest";
import { DomainError, ExtractionError, type ExtractionErrorCode } from "../../shared/domain/errors.ts";
import {
  assertDeclaredType,
  decodeText,
  detectContentType,
  type ExtractedDocument,
  extractText,
  matchesDeclaredType,
} from "../../shared/domain/extract.ts";
import {
  makeCorruptPdf,
  makeEncryptedPdf,
  makeHtml,
  makeImageOnlyPdf,
  makeLatin1Text,
  makeMarkdown,
  makePdf,
  makeUtf8Text,
  makeUtf16Text,
  PNG_1x1,
  SAMPLE_TEXT,
} from "../fixtures/make-fixtures.ts";

const pageText = (doc: ExtractedDocument, page: number) => {
  const range = doc.pages.find((p) => p.page === page);
  if (!range) throw new Error(`no page ${page}`);
  return doc.text.slice(range.start, range.end);
};

async function extractionError(promise: Promise<unknown>): Promise<ExtractionError> {
  const error = await promise.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(error).toBeInstanceOf(ExtractionError);
  return error as ExtractionError;
}

async function expectFailure(promise: Promise<unknown>, code: ExtractionErrorCode, message: RegExp) {
  const error = await extractionError(promise);
  expect(error).toBeInstanceOf(DomainError);
  expect(error.code).toBe(code);
  expect(error.retryable).toBe(false);
  expect(error.message).toMatch(message);
  return error;
}

describe("extractText: PDF", () => {
  it("keeps each page's text and its page number, in order", async () => {
    const bytes = makePdf([
      "Alpha page opens the report. It has two sentences.",
      "Beta page talks about embeddings and vectors.",
      "Gamma page closes the report with a summary of the findings.",
    ]);
    const doc = await extractText(bytes, "application/pdf");
    expect(doc.pages.map((p) => p.page)).toEqual([1, 2, 3]);
    expect(pageText(doc, 1)).toBe("Alpha page opens the report. It has two sentences.");
    expect(pageText(doc, 2)).toBe("Beta page talks about embeddings and vectors.");
    expect(pageText(doc, 3)).toBe("Gamma page closes the report with a summary of the findings.");
    // Ranges are ordered, disjoint and separated, so no sentence runs across a page break.
    for (let i = 1; i < doc.pages.length; i++) {
      expect(doc.pages[i]?.start).toBeGreaterThan(doc.pages[i - 1]?.end ?? Number.POSITIVE_INFINITY);
    }
  });

  it("keeps page numbers right around a page without text", async () => {
    const doc = await extractText(makePdf(["First page.", "", "Third page."]), "application/pdf");
    expect(doc.pages.map((p) => p.page)).toEqual([1, 2, 3]);
    expect(pageText(doc, 2)).toBe("");
    expect(pageText(doc, 3)).toBe("Third page.");
  });

  it("keeps wrapped lines, non-ASCII characters, and joins words hyphenated across lines", async () => {
    const long =
      "This sentence is long enough to be wrapped onto a second line by the PDF writer, which breaks at eighty characters.";
    const doc = await extractText(
      makePdf([`${long}\nCafé “quotes” cost 5 € in the infor-\nmation age.`]),
      "application/pdf",
    );
    const text = pageText(doc, 1);
    expect(text.replace(/\s+/g, " ")).toContain(long);
    expect(text).toContain("Café “quotes” cost 5 € in the information age.");
  });

  it("leaves the caller's bytes intact", async () => {
    const bytes = makePdf(["Bytes stay usable."]);
    const copy = bytes.slice();
    await extractText(bytes, "application/pdf");
    expect(bytes).toEqual(copy);
    expect((await extractText(bytes, "application/pdf")).text).toBe("Bytes stay usable.");
  });

  it("handles many pages", async () => {
    const pages = Array.from({ length: 40 }, (_, i) => `This is page number ${i + 1} of the long report.`);
    const doc = await extractText(makePdf(pages), "application/pdf");
    expect(doc.pages).toHaveLength(40);
    expect(pageText(doc, 37)).toBe("This is page number 37 of the long report.");
  });

  it("fails a password-protected PDF with ENCRYPTED_PDF", async () => {
    await expectFailure(extractText(makeEncryptedPdf(), "application/pdf"), "ENCRYPTED_PDF", /password-protected/);
  });

  it("reads an encrypted PDF that has only an owner password (opens without one)", async () => {
    const bytes = makePdf(["Owner password only: anyone may read this."], { encrypt: { userPassword: "" } });
    const doc = await extractText(bytes, "application/pdf");
    expect(doc.text).toBe("Owner password only: anyone may read this.");
  });

  it("fails an image-only (scanned) PDF with NO_TEXT and says why", async () => {
    const error = await expectFailure(
      extractText(makeImageOnlyPdf(3), "application/pdf"),
      "NO_TEXT",
      /no extractable text on any of its 3 pages/,
    );
    expect(error.message).toMatch(/scanned or image-only/);
    expect(error.message).toMatch(/OCR/);
  });

  it.each(["garbage", "truncated"] as const)("fails a %s PDF with CORRUPT_DOCUMENT", async (kind) => {
    await expectFailure(
      extractText(makeCorruptPdf(kind), "application/pdf"),
      "CORRUPT_DOCUMENT",
      /^The PDF could not be read: the file is damaged, truncated or not a valid PDF \(.+\)\.$/,
    );
  });

  it("fails a file that is not a PDF with TYPE_MISMATCH naming what it is", async () => {
    await expectFailure(
      extractText(makeCorruptPdf("not-a-pdf"), "application/pdf"),
      "TYPE_MISMATCH",
      /uploaded as "application\/pdf" but its content is a PNG image/,
    );
  });
});

describe("extractText: plain text", () => {
  const plain = async (bytes: Uint8Array, contentType = "text/plain") => (await extractText(bytes, contentType)).text;

  it("reads UTF-8 with and without a BOM", async () => {
    expect(await plain(makeUtf8Text(SAMPLE_TEXT))).toBe(SAMPLE_TEXT);
    const withBom = await plain(makeUtf8Text(SAMPLE_TEXT, true));
    expect(withBom).toBe(SAMPLE_TEXT);
    expect(withBom.charCodeAt(0)).not.toBe(0xfeff);
  });

  it.each(["le", "be"] as const)("reads UTF-16 %s with a BOM", async (endian) => {
    expect(await plain(makeUtf16Text(SAMPLE_TEXT, endian))).toBe(SAMPLE_TEXT);
  });

  it("falls back to windows-1252 for invalid UTF-8 (latin1 files, smart quotes and € included)", async () => {
    const bytes = makeLatin1Text(SAMPLE_TEXT);
    expect(() => new TextDecoder("utf-8", { fatal: true }).decode(bytes)).toThrow();
    expect(await plain(bytes)).toBe(SAMPLE_TEXT);
  });

  it("honours a declared charset the bytes do not contradict", async () => {
    const greek = "Καλημέρα κόσμε";
    const bytes = Uint8Array.from([0xca, 0xe1, 0xeb, 0xe7, 0xec, 0xdd, 0xf1, 0xe1, 0x20, 0xea, 0xfc, 0xf3, 0xec, 0xe5]);
    expect(await plain(bytes, "text/plain; charset=ISO-8859-7")).toBe(greek);
    // Valid UTF-8 wins over a wrong declaration.
    expect(await plain(makeUtf8Text("naïve"), "text/plain; charset=iso-8859-1")).toBe("naïve");
  });

  it("normalizes line ends and strips control characters and surrounding blank lines", async () => {
    const bytes = makeUtf8Text("\r\n\r\nfirst line\r\nsecond\u0001 line   \r\n\r\n\r\n\r\nthird\u0007\n\n");
    expect(await plain(bytes)).toBe("first line\nsecond line\n\nthird");
  });

  it("gives one page covering the whole text", async () => {
    const doc = await extractText(makeUtf8Text("Just one page."), "text/plain");
    expect(doc.pages).toEqual([{ page: 1, start: 0, end: doc.text.length }]);
  });

  it("fails empty and whitespace-only files with NO_TEXT", async () => {
    await expectFailure(extractText(new Uint8Array(), "text/plain"), "NO_TEXT", /empty/);
    await expectFailure(extractText(makeUtf8Text(" \n\t\n "), "text/plain"), "NO_TEXT", /no text/);
  });

  it("fails binary content declared as text with TYPE_MISMATCH", async () => {
    await expectFailure(extractText(PNG_1x1, "text/plain"), "TYPE_MISMATCH", /PNG image/);
    await expectFailure(extractText(makeUtf8Text("nul\u0000byte"), "text/plain"), "TYPE_MISMATCH", /binary data/);
  });

  it("fails unsupported types with UNSUPPORTED_TYPE", async () => {
    await expectFailure(
      extractText(makeUtf8Text("x"), "application/vnd.openxmlformats-officedocument.wordprocessingml.document"),
      "UNSUPPORTED_TYPE",
      /reads PDF, plain text, Markdown and HTML/,
    );
  });
});

describe("extractText: HTML", () => {
  it("keeps only visible text, with entities decoded and blocks on their own lines", async () => {
    const { text } = await extractText(makeHtml(), "text/html; charset=utf-8");
    for (const hidden of [
      "SCRIPT_TEXT",
      "STYLE_TEXT",
      "NOSCRIPT_TEXT",
      "TEMPLATE_TEXT",
      "HIDDEN_TEXT",
      "Head title",
      "color",
    ]) {
      expect(text).not.toContain(hidden);
    }
    expect(text).not.toMatch(/[<>]p|&amp;|&nbsp;/);
    expect(text.split("\n\n")).toEqual([
      "Quarterly report",
      "Revenue grew by 12\u00a0% in Q3 & costs fell <5%.",
      "Contact: the ops team\nPhone: none",
      "First item\nSecond item",
      "Cell A\tCell B",
      "code   keeps\n  its spacing",
      "Café €5 — done.",
    ]);
  });

  it("decodes a legacy charset named in a meta tag", async () => {
    const html =
      '<html><head><meta charset="windows-1252"></head><body><p>Gr\u00fc\u00dfe \u201cfrom\u201d M\u00fcnchen</p></body></html>';
    const bytes = makeLatin1Text(html);
    expect((await extractText(bytes, "text/html")).text).toBe("Grüße “from” München");
  });

  it("collapses whitespace like a browser and separates inline elements correctly", async () => {
    const html = "<div>one\n   <b>two</b><i>three</i>\n</div><div> four <span> five</span></div>";
    expect((await extractText(makeHtml(html), "text/html")).text).toBe("one twothree\nfour five");
  });
});

describe("extractText: Markdown", () => {
  it("strips markup to readable text", async () => {
    const { text } = await extractText(makeMarkdown(), "text/markdown");
    expect(text.split("\n\n")).toEqual([
      "Getting started",
      "This is bold, emphasised and inline code text with a link to the docs.",
      "Install",
      "Run the installer.\nRestart & enjoy.",
      "Quoted advice stays readable.",
      "const answer = 42; // code fences are kept as text",
      "Name\tValue\nalpha\t1",
      "Inline HTML block",
      "Final paragraph with a footnote-like ref[^1] and an autolink https://example.org.",
    ]);
    expect(text).not.toMatch(/diagram|example\.com|Front matter/);
  });

  it("reads a blockquote nested 5,000 deep as text instead of exhausting the stack", async () => {
    const markdown = `${"> ".repeat(5_000)}deep thought\n\nA normal paragraph.`;
    const { text } = await extractText(new TextEncoder().encode(markdown), "text/markdown");
    expect(text).toContain("deep thought");
    expect(text).toContain("A normal paragraph.");
    expect(text).not.toContain(">");
  });

  it("survives inline nesting thousands deep", async () => {
    const markdown = `${"[".repeat(20_000)}x${"]".repeat(20_000)} and ${"*".repeat(10_000)}y${"*".repeat(10_000)}`;
    const { text } = await extractText(new TextEncoder().encode(markdown), "text/markdown");
    expect(text).toContain("x");
  });

  it("accepts text/x-markdown", async () => {
    expect((await extractText(makeMarkdown("## Title\n\nBody *text*."), "text/x-markdown")).text).toBe(
      "Title\n\nBody text.",
    );
  });
});

describe("decodeText", () => {
  it("names the encoding it used", () => {
    expect(decodeText(makeUtf16Text("hi", "be")).encoding).toBe("utf-16be");
    expect(decodeText(makeLatin1Text("café")).encoding).toBe("windows-1252");
    expect(decodeText(makeUtf8Text("café")).encoding).toBe("utf-8");
  });
});

describe("detectContentType / matchesDeclaredType", () => {
  const bytes = (...values: number[]) => Uint8Array.from(values);
  const ascii = (text: string) => new TextEncoder().encode(text);
  const ZIP = bytes(0x50, 0x4b, 0x03, 0x04, 0x14, 0x00, 0x06, 0x00);
  const GIF = ascii("GIF89a\x01\x00\x01\x00");
  const JPEG = bytes(0xff, 0xd8, 0xff, 0xe0, 0x00, 0x10, 0x4a, 0x46);
  const ELF = bytes(0x7f, 0x45, 0x4c, 0x46, 0x02, 0x01, 0x01, 0x00);

  it("detects types by their magic bytes", () => {
    expect(detectContentType(makePdf(["x"]))).toBe("application/pdf");
    expect(detectContentType(PNG_1x1)).toBe("image/png");
    expect(detectContentType(ZIP)).toBe("application/zip");
    expect(detectContentType(GIF)).toBe("image/gif");
    expect(detectContentType(JPEG)).toBe("image/jpeg");
    expect(detectContentType(ELF)).toBe("application/x-elf");
    expect(detectContentType(makeHtml())).toBe("text/html");
    expect(detectContentType(makeMarkdown())).toBe("text/plain");
    expect(detectContentType(makeUtf16Text())).toBe("text/plain");
    expect(detectContentType(makeLatin1Text())).toBe("text/plain");
    expect(detectContentType(bytes(0x41, 0x00, 0x42, 0x43))).toBe("application/octet-stream");
    expect(detectContentType(new Uint8Array())).toBeUndefined();
  });

  it("accepts a PDF only when it starts with %PDF-", () => {
    expect(matchesDeclaredType(makePdf(["x"]), "application/pdf")).toBe(true);
    expect(matchesDeclaredType(makeCorruptPdf("garbage"), "application/pdf")).toBe(true); // the header is right
    expect(matchesDeclaredType(PNG_1x1, "application/pdf")).toBe(false);
    expect(matchesDeclaredType(ascii(" %PDF-1.4"), "application/pdf")).toBe(false);
    expect(matchesDeclaredType(new Uint8Array(), "application/pdf")).toBe(false);
  });

  it("accepts text types only for text", () => {
    for (const type of ["text/plain", "text/markdown", "text/html; charset=utf-8", "TEXT/PLAIN"]) {
      expect(matchesDeclaredType(makeUtf8Text(), type)).toBe(true);
      expect(matchesDeclaredType(makeUtf16Text(), type)).toBe(true);
      expect(matchesDeclaredType(makeLatin1Text(), type)).toBe(true);
      for (const binary of [PNG_1x1, ZIP, GIF, JPEG, ELF, makePdf(["x"]), bytes(0x41, 0x42, 0x00, 0x43)]) {
        expect(matchesDeclaredType(binary, type)).toBe(false);
      }
    }
    // A leading sample cut mid-character is still text.
    expect(matchesDeclaredType(makeUtf8Text("é".repeat(100)).subarray(0, 51), "text/plain")).toBe(true);
  });

  it("never matches an unsupported declared type", () => {
    expect(matchesDeclaredType(PNG_1x1, "image/png")).toBe(false);
    expect(matchesDeclaredType(makeUtf8Text(), "application/json")).toBe(false);
  });

  it("assertDeclaredType explains a refusal", () => {
    expect(() => assertDeclaredType(ZIP, "text/plain")).toThrow(
      /uploaded as "text\/plain" but its content is a ZIP archive/,
    );
    expect(() => assertDeclaredType(PNG_1x1, "image/png")).toThrow(/Unsupported content type "image\/png"/);
    expect(() => assertDeclaredType(makePdf(["x"]), "application/pdf")).not.toThrow();
  });
});
