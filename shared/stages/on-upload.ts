import type { JobStore } from "../adapters/job-store.ts";
import type { ObjectStore } from "../adapters/object-store.ts";
import type { Job } from "../domain/jobs.ts";
import type { DocumentUploaded } from "../domain/messages.ts";
import { parseUploadKey } from "./upload.ts";

/** How many leading bytes are read to check an upload's type against what the client declared. */
const SNIFF_BYTES = 4096;

export interface UploadCheckDeps {
  jobs: JobStore;
  objects: ObjectStore;
  maxUploadBytes: number;
  /** True when the leading bytes fit the declared content type (magic bytes). */
  matchesDeclaredType: (leadingBytes: Uint8Array, contentType: string) => boolean;
  /** Publishes documents.uploaded. */
  publish: (message: DocumentUploaded) => Promise<void>;
}

export type UploadOutcome =
  | { kind: "accepted"; message: DocumentUploaded }
  | { kind: "rejected"; jobId: string; reason: string }
  | { kind: "ignored"; reason: string };

/**
 * Checks an object that landed in the upload bucket against its job: size within the maximum,
 * leading bytes matching the declared type. An accepted upload is published to documents.uploaded
 * and then its job moves to UPLOADED (in that order, so a crash in between republishes rather than
 * loses it; the split stage tolerates the duplicate). A rejected one fails the job with a reason.
 * Events for a job no longer waiting for its upload (a replay, or a second PUT/POST to a used
 * URL) are ignored; the accepted object's ETag is recorded, and split reads that version only.
 */
export async function checkUpload(bucket: string, key: string, deps: UploadCheckDeps): Promise<UploadOutcome> {
  const parsed = parseUploadKey(key);
  if (!parsed) return { kind: "ignored", reason: `key ${key} is not an upload key` };
  const job = await deps.jobs.get(parsed.jobId);
  if (!job || job.tenant !== parsed.tenant || job.objectKey !== key) {
    return { kind: "ignored", reason: `no job matches ${key}` };
  }
  if (job.state !== "PENDING_UPLOAD") return { kind: "ignored", reason: `job ${job.jobId} is already ${job.state}` };

  const start = await deps.objects.readStart(bucket, key, SNIFF_BYTES);
  if (!start) return { kind: "ignored", reason: `${key} no longer exists` };
  const { size } = start;
  const problem = uploadProblem(job, start, deps);
  if (problem) {
    await deps.jobs.fail(job.jobId, problem);
    return { kind: "rejected", jobId: job.jobId, reason: problem };
  }
  const message: DocumentUploaded = {
    jobId: job.jobId,
    tenant: job.tenant,
    document: {
      documentId: job.documentId,
      collection: job.collection,
      contentType: job.contentType,
      filename: job.filename,
      metadata: job.metadata,
    },
    bucket,
    key,
    size,
    ...(start.etag ? { etag: start.etag } : {}),
  };
  await deps.publish(message);
  await deps.jobs.advance(job.jobId, "UPLOADED", { size, ...(start.etag ? { uploadEtag: start.etag } : {}) });
  return { kind: "accepted", message };
}

function uploadProblem(
  job: Job,
  start: { size: number; leading: Uint8Array },
  deps: Pick<UploadCheckDeps, "maxUploadBytes" | "matchesDeclaredType">,
) {
  if (start.size === 0) return "the uploaded file is empty";
  if (start.size > deps.maxUploadBytes) {
    return `the uploaded file is ${start.size} bytes, over the maximum of ${deps.maxUploadBytes} bytes`;
  }
  if (!deps.matchesDeclaredType(start.leading, job.contentType)) {
    return `the uploaded file's content does not match its declared type ${job.contentType}`;
  }
  return undefined;
}
