import { describe, expect, it } from "vitest";
import type { JobStatus } from "../../cli/api-client.ts";
import { formatTrace, jobTrace } from "../../cli/commands/jobs.ts";

const job: JobStatus = {
  jobId: "job-1",
  documentId: "doc-1",
  collection: "default",
  filename: "report.pdf",
  state: "COMPLETED",
  counts: { chunksTotal: 40, chunksEmbedded: 40, chunksIndexed: 40 },
  percentages: { embedded: 100, indexed: 100 },
  stages: {
    // Out of order on purpose: the trace follows time.
    COMPLETED: "2026-01-01T00:00:09.000Z",
    PENDING_UPLOAD: "2026-01-01T00:00:00.000Z",
    UPLOADED: "2026-01-01T00:00:02.000Z",
    SPLITTING: "2026-01-01T00:00:02.500Z",
    EMBEDDING: "2026-01-01T00:00:03.000Z",
    INDEXING: "2026-01-01T00:00:08.000Z",
  },
  stalled: false,
  createdAt: "2026-01-01T00:00:00.000Z",
  updatedAt: "2026-01-01T00:00:09.000Z",
};

describe("jobs <id> --trace", () => {
  it("follows the job through the stages: who moved it, when, and how long it stayed", () => {
    const trace = jobTrace(job);
    expect(trace.map((step) => [step.state, step.by, step.sinceCreatedMs, step.durationMs])).toEqual([
      ["PENDING_UPLOAD", "upload-url", 0, 2000],
      ["UPLOADED", "on-upload", 2000, 500],
      ["SPLITTING", "split", 2500, 500],
      ["EMBEDDING", "split", 3000, 5000],
      ["INDEXING", "index", 8000, 1000],
      ["COMPLETED", "index", 9000, undefined],
    ]);
    const text = formatTrace(job);
    expect(text).toContain("time to searchable  7.0 s");
    expect(text).toContain('filter @message like "job-1"');
  });

  it("ends a failed job at FAILED, with its reason", () => {
    const failed: JobStatus = {
      ...job,
      state: "FAILED",
      error: "the document holds no text to index",
      stages: {
        PENDING_UPLOAD: job.createdAt,
        UPLOADED: "2026-01-01T00:00:01.000Z",
        FAILED: "2026-01-01T00:00:04.000Z",
      },
    };
    const trace = jobTrace(failed);
    expect(trace.at(-1)).toEqual({ state: "FAILED", at: "2026-01-01T00:00:04.000Z", sinceCreatedMs: 4000 });
    expect(trace[1]?.durationMs).toBe(3000);
    expect(formatTrace(failed)).toMatch(/reason .*no text to index/);
    expect(formatTrace(failed)).not.toContain("time to searchable");
  });
});
