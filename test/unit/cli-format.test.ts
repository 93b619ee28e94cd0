/** The CLI's pure helpers: content types, file expansion, target selection and output formatting. */
import { mkdir, mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { JobStatus, SearchResponse } from "../../cli/api-client.ts";
import { formatJob, formatJobList } from "../../cli/commands/jobs.ts";
import { formatSearch } from "../../cli/commands/search.ts";
import { isLoopback, resolveEndpoint, resolveToken } from "../../cli/context.ts";
import { contentTypeOf, expandFiles } from "../../cli/files.ts";
import { formatAge, formatBytes, parseHighlights, snippet, table } from "../../cli/format.ts";
import { storageErrorMessage } from "../../cli/upload.ts";
import { highlight } from "../../shared/domain/highlight.ts";

const bold = (text: string) => `**${text}**`;

describe("content types and files", () => {
  let dir: string;
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), "cli-files-"));
    await mkdir(join(dir, "docs"));
    await writeFile(join(dir, "docs", "a.pdf"), "%PDF-1.4");
    await writeFile(join(dir, "docs", "b.MD"), "# b");
    await writeFile(join(dir, "notes.txt"), "notes");
    await writeFile(join(dir, "empty.html"), "");
    await writeFile(join(dir, "slides.pptx"), "x");
  });
  afterAll(() => rm(dir, { recursive: true, force: true }));

  it("maps extensions to the API's content types, case-insensitively", () => {
    expect(contentTypeOf("report.PDF")).toBe("application/pdf");
    expect(contentTypeOf("a.txt")).toBe("text/plain");
    expect(contentTypeOf("a.markdown")).toBe("text/markdown");
    expect(contentTypeOf("a.md")).toBe("text/markdown");
    expect(contentTypeOf("a.htm")).toBe("text/html");
    expect(contentTypeOf("a.docx")).toBeUndefined();
    expect(contentTypeOf("Makefile")).toBeUndefined();
  });

  it("expands globs and paths once each, in order", async () => {
    const files = await expandFiles(["docs/*", "notes.txt", "docs/a.pdf"], dir);
    expect(files).toEqual([
      { path: "docs/a.pdf", filename: "a.pdf", contentType: "application/pdf", size: 8 },
      { path: "docs/b.MD", filename: "b.MD", contentType: "text/markdown", size: 3 },
      { path: "notes.txt", filename: "notes.txt", contentType: "text/plain", size: 5 },
    ]);
  });

  it("reports every problem before anything is uploaded, one line each", async () => {
    const error = await expandFiles(["slides.pptx", "missing.pdf", "empty.html", "docs", "*.csv"], dir).catch(
      (e: Error) => e,
    );
    expect((error as Error).message.split("\n")).toEqual([
      expect.stringMatching(/^slides\.pptx: unsupported file type "\.pptx" \(supported: \.pdf, /),
      "missing.pdf: no such file",
      "empty.html: file is empty",
      'docs: is a directory (use a glob such as "docs/**/*.pdf")',
      "*.csv: no file matches",
    ]);
  });
});

describe("target", () => {
  it("endpoint: flag, then environment, then the local platform", () => {
    expect(resolveEndpoint("https://api.example.com", { DATADISTILLER_ENDPOINT: "http://x" })).toBe(
      "https://api.example.com",
    );
    expect(resolveEndpoint(undefined, { DATADISTILLER_ENDPOINT: "http://x:1" })).toBe("http://x:1");
    expect(resolveEndpoint(undefined, {})).toBe("http://127.0.0.1:3000");
    expect(resolveEndpoint(undefined, { API_PORT: "3100" })).toBe("http://127.0.0.1:3100");
    expect(() => resolveEndpoint("nonsense", {})).toThrow(/invalid endpoint "nonsense"/);
    expect(() => resolveEndpoint("ftp://host", {})).toThrow(/only http and https/);
  });

  it("a token is minted only for a loopback endpoint", async () => {
    expect(isLoopback("http://127.0.0.1:3000")).toBe(true);
    expect(isLoopback("http://localhost:3000")).toBe(true);
    expect(isLoopback("http://[::1]:3000")).toBe(true);
    expect(isLoopback("https://api.example.com")).toBe(false);
    expect(await resolveToken("flag", "https://api.example.com", "t", { DATADISTILLER_TOKEN: "env" })).toBe("flag");
    expect(await resolveToken(undefined, "https://api.example.com", "t", { DATADISTILLER_TOKEN: "env" })).toBe("env");
    await expect(resolveToken(undefined, "https://api.example.com", "t", {})).rejects.toThrow(
      "no token for https://api.example.com: pass --token or set DATADISTILLER_TOKEN",
    );
  });
});

describe("formatting", () => {
  it("sizes, ages and tables", () => {
    expect(formatBytes(512)).toBe("512 B");
    expect(formatBytes(1536)).toBe("1.5 kB");
    expect(formatBytes(50 * 1024 * 1024)).toBe("50 MB");
    const now = Date.parse("2026-01-01T12:00:00Z");
    expect(formatAge("2026-01-01T11:59:30Z", now)).toBe("30s ago");
    expect(formatAge("2026-01-01T09:00:00Z", now)).toBe("3h ago");
    expect(table(["A", "LONG"], [["xyz", "1"]])).toBe("A    LONG\nxyz  1");
  });

  it("reads the API's highlights back, entities decoded", () => {
    const text = 'Fish & "chips" <b>: fish again';
    const { text: html, spans } = highlight(text, "fish");
    expect(spans).toHaveLength(2);
    expect(parseHighlights(html)).toEqual({ text, spans });
  });

  it("snippets: a window around the first match, whitespace collapsed, cuts marked", () => {
    expect(snippet("The <mark>aurora</mark>\n\nshines", bold)).toBe("The **aurora** shines");
    const long = `${"lorem ipsum ".repeat(40)}<mark>aurora</mark> ${"dolor sit ".repeat(40)}`;
    const cut = snippet(long, bold, 80);
    expect(cut).toMatch(/^…(lorem|ipsum) .* \*\*aurora\*\* dolor .*…$/);
    expect(cut.length).toBeLessThanOrEqual(84);
    // No match: the start of the text.
    expect(snippet("plain text", bold)).toBe("plain text");
  });

  it("search results: rank, document, page, snippet, per-stage scores, timings", () => {
    const notReranked: SearchResponse["rerank"] = {
      reranked: false,
      reason: "no-model",
      message: "no cross-encoder on the server",
      method: "interpolate",
      weight: 0.5,
      topN: 20,
      deadlineMs: 2000,
      candidates: 0,
    };
    const response: SearchResponse = {
      results: [
        {
          documentId: "doc-1",
          chunkId: "c1",
          collection: "default",
          filename: "notes.txt",
          page: 2,
          start: 0,
          end: 20,
          text: "the aurora borealis",
          highlights: "the <mark>aurora</mark> borealis",
          score: 0.0325,
          scores: { bm25: 1.23456, fused: 0.0325 },
        },
      ],
      timings: { embed: 4.2, retrieve: 1.5, total: 7.25 },
      segments: 1,
      index: "1",
      model: "all-minilm-l6-v2-q",
      rerank: notReranked,
    };
    expect(formatSearch(response, true).split("\n")).toEqual([
      "1. notes.txt (doc-1)  page 2  score 0.0325",
      "   the **aurora** borealis",
      "   bm25 1.2346 · dense – · fused 0.0325 · rerank –",
      "",
      "1 result in 7.3 ms (embed 4.2, retrieve 1.5); not reranked (no cross-encoder on the server)",
    ]);
    expect(
      formatSearch(
        {
          results: [],
          timings: { total: 1 },
          segments: 0,
          index: "1",
          model: "all-minilm-l6-v2-q",
          rerank: notReranked,
        },
        false,
      ),
    ).toBe("no results\n\n0 results in 1.0 ms ()");
  });

  it("jobs: a table, and one job in detail with its failure reason", () => {
    const job: JobStatus = {
      jobId: "j1",
      documentId: "doc-1",
      collection: "default",
      filename: "bad.pdf",
      state: "FAILED",
      counts: { chunksTotal: 0, chunksEmbedded: 0, chunksIndexed: 0 },
      percentages: { embedded: 0, indexed: 0 },
      stages: {
        SPLITTING: "2026-01-01T12:00:01.500Z",
        PENDING_UPLOAD: "2026-01-01T12:00:00.000Z",
        FAILED: "2026-01-01T12:00:02.000Z",
      },
      stalled: false,
      error: "the PDF is encrypted",
      createdAt: "2026-01-01T12:00:00.000Z",
      updatedAt: "2026-01-01T12:00:02.000Z",
    };
    expect(formatJobList([job], Date.parse("2026-01-01T12:01:02Z"))).toBe(
      "JOB  STATE   FILE     EMBEDDED  INDEXED  UPDATED\nj1   FAILED  bad.pdf  0/0       0/0      1m ago",
    );
    const detail = formatJob(job).split("\n");
    expect(detail).toContain("state             FAILED");
    expect(detail.slice(-4)).toEqual([
      "  PENDING_UPLOAD  2026-01-01T12:00:00.000Z  +0 ms",
      "  SPLITTING       2026-01-01T12:00:01.500Z  +1.5 s",
      "  FAILED          2026-01-01T12:00:02.000Z  +2.0 s",
      "reason            the PDF is encrypted",
    ]);
  });

  it("storage errors: S3's code and message", () => {
    const xml = "<?xml?><Error><Code>SignatureDoesNotMatch</Code><Message>bad signature</Message></Error>";
    expect(storageErrorMessage(403, xml)).toBe(
      "upload refused by storage: HTTP 403 SignatureDoesNotMatch: bad signature",
    );
  });
});
