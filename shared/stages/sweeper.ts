import type { JobStore } from "../adapters/job-store.ts";
import type { ObjectStore } from "../adapters/object-store.ts";
import type { UploadOutcome } from "./on-upload.ts";

/**
 * The operations sweeper's upload duty: nothing waits forever for an upload. A job is looked at
 * when its due date comes (FIRST_UPLOAD_CHECK_MS after it was created, then once its URL has
 * expired plus a grace period): if its object is there but the job still waits (the upload event
 * was lost, or on-upload gave up during an outage), the upload is checked now; if the URL expired
 * and nothing came, the job fails with a reason the user can act on.
 */

/** After the URL expired, a PUT that started in time may still be streaming: wait this long more. */
export const UPLOAD_GRACE_MS = 5 * 60_000;

export interface UploadSweepDeps {
  jobs: Pick<JobStore, "dueUploads" | "getMany" | "fail" | "rescheduleUploadCheck" | "dropUploadChecks">;
  objects: Pick<ObjectStore, "exists">;
  bucket: string;
  /** on-upload's check of an object against its job (publishes documents.uploaded when accepted). */
  check: (bucket: string, key: string) => Promise<UploadOutcome>;
  graceMs?: number;
}

export interface UploadSweep {
  /** Uploads that had landed without being taken up, checked now. */
  recovered: string[];
  /** Jobs failed because their upload never arrived. */
  expired: string[];
  /** Jobs still within their upload window, looked at again later. */
  waiting: string[];
}

/**
 * Only jobs still waiting for their upload are due (an upload that arrives takes its job out of
 * the upload-check index): the due jobs are read in one round trip per 100. A pass that stops
 * half-way leaves its checks to the next one.
 */
export async function sweepUploads(now: Date, deps: UploadSweepDeps): Promise<UploadSweep> {
  const sweep: UploadSweep = { recovered: [], expired: [], waiting: [] };
  const grace = deps.graceMs ?? UPLOAD_GRACE_MS;
  const due = await deps.jobs.dueUploads(now);
  const jobs = await deps.jobs.getMany(due.map((check) => check.jobId));
  // A job may be due twice (its check on the job and an item of its own from before): looked at once.
  for (const jobId of new Set(due.map((check) => check.jobId))) {
    const job = jobs.get(jobId);
    // Moved on meanwhile (the index is eventually consistent), or gone.
    if (job?.state !== "PENDING_UPLOAD") continue;
    const expiresAt = Date.parse(job.uploadExpiresAt ?? job.createdAt);
    const giveUpAt = expiresAt + grace;
    if (await deps.objects.exists(deps.bucket, job.objectKey)) {
      const outcome = await deps.check(deps.bucket, job.objectKey);
      // Accepted or rejected, the job moved on; a check that took nothing up looks again later.
      if (outcome.kind === "ignored") {
        await deps.jobs.rescheduleUploadCheck(job.jobId, new Date(Math.max(giveUpAt, now.getTime() + grace)));
      }
      sweep.recovered.push(job.jobId);
      continue;
    }
    if (now.getTime() >= giveUpAt) {
      await deps.jobs.fail(
        job.jobId,
        `upload never arrived: the upload URL expired at ${new Date(expiresAt).toISOString()} without a file being uploaded; request a new upload`,
      );
      sweep.expired.push(job.jobId);
    } else {
      await deps.jobs.rescheduleUploadCheck(job.jobId, new Date(giveUpAt));
      sweep.waiting.push(job.jobId);
    }
  }
  // Checks that were items of their own are dropped once looked at (a waiting one now rides on its job).
  await deps.jobs.dropUploadChecks(due);
  return sweep;
}
