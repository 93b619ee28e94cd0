import { describe, expect, it } from "vitest";
import type { UploadCheck } from "../../shared/adapters/job-store.ts";
import type { UploadOutcome } from "../../shared/stages/on-upload.ts";
import { sweepUploads, UPLOAD_GRACE_MS } from "../../shared/stages/sweeper.ts";
import { InMemoryJobs, job } from "./fakes/stores.ts";

const NOW = new Date("2026-06-01T12:00:00.000Z");
const minutes = (n: number) => new Date(NOW.getTime() + n * 60_000).toISOString();

/** The sweeper's view of the jobs table: the in-memory jobs plus the due checks and what was done to them. */
function sweeperJobs(jobs: InMemoryJobs, due: UploadCheck[]) {
  const rescheduled: { jobId: string; to: string }[] = [];
  const dropped: UploadCheck[] = [];
  return {
    rescheduled,
    dropped,
    port: {
      dueUploads: async () => due,
      getMany: (ids: Iterable<string>) => jobs.getMany(ids),
      fail: (jobId: string, reason: string) => jobs.fail(jobId, reason),
      rescheduleUploadCheck: async (jobId: string, to: Date) => {
        rescheduled.push({ jobId, to: to.toISOString() });
      },
      dropUploadChecks: async (checks: UploadCheck[]) => {
        dropped.push(...checks);
      },
    },
  };
}

describe("the sweeper's upload duty", () => {
  it("takes up a landed upload whose event was lost, fails one whose URL expired, and looks again at one still in time", async () => {
    const jobs = new InMemoryJobs(
      job("landed", "PENDING_UPLOAD", { uploadExpiresAt: minutes(10) }),
      job("expired", "PENDING_UPLOAD", { uploadExpiresAt: minutes(-10) }),
      job("in-time", "PENDING_UPLOAD", { uploadExpiresAt: minutes(3) }),
      job("moved-on", "EMBEDDING"),
    );
    const due = ["landed", "expired", "in-time", "moved-on", "gone"].map((jobId) => ({ jobId, checkAt: minutes(-1) }));
    const legacy = { jobId: "in-time", checkAt: minutes(-2), ownItem: true };
    const store = sweeperJobs(jobs, [...due, legacy]);
    const checked: string[] = [];
    const heads: string[] = [];
    const sweep = await sweepUploads(NOW, {
      jobs: store.port,
      objects: {
        exists: async (_bucket, key) => {
          heads.push(key);
          return key === jobs.jobs.get("landed")?.objectKey;
        },
      },
      bucket: "uploads",
      check: async (_bucket, key): Promise<UploadOutcome> => {
        checked.push(key);
        await jobs.advance("landed", "UPLOADED");
        return { kind: "rejected", jobId: "landed", reason: "not text" };
      },
    });

    expect(sweep).toEqual({ recovered: ["landed"], expired: ["expired"], waiting: ["in-time"] });
    expect(checked).toEqual([jobs.jobs.get("landed")?.objectKey]);
    // Jobs that moved on or are gone cost no S3 request.
    expect(heads).toHaveLength(3);
    expect(jobs.jobs.get("expired")).toMatchObject({ state: "FAILED" });
    expect(jobs.jobs.get("expired")?.error).toMatch(
      /upload never arrived: the upload URL expired at .*request a new upload/,
    );
    // Still in time: looked at again once its URL expired plus the grace period.
    expect(store.rescheduled).toEqual([
      { jobId: "in-time", to: new Date(Date.parse(minutes(3)) + UPLOAD_GRACE_MS).toISOString() },
    ]);
    // Every due check is handed back, so the ones that were items of their own are dropped.
    expect(store.dropped).toEqual([...due, legacy]);
  });

  it("a landed upload the check did not take up is looked at again later, not every minute", async () => {
    const jobs = new InMemoryJobs(job("stuck", "PENDING_UPLOAD", { uploadExpiresAt: minutes(-60) }));
    const store = sweeperJobs(jobs, [{ jobId: "stuck", checkAt: minutes(-1) }]);
    const sweep = await sweepUploads(NOW, {
      jobs: store.port,
      objects: { exists: async () => true },
      bucket: "uploads",
      check: async () => ({ kind: "ignored", reason: "the object vanished" }),
    });
    expect(sweep.recovered).toEqual(["stuck"]);
    expect(jobs.jobs.get("stuck")?.state).toBe("PENDING_UPLOAD");
    expect(store.rescheduled).toEqual([
      { jobId: "stuck", to: new Date(NOW.getTime() + UPLOAD_GRACE_MS).toISOString() },
    ]);
  });
});
