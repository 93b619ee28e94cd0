/** Job tracking: the states a document's ingestion goes through and the view clients read. */

export const JOB_STATES = [
  "PENDING_UPLOAD",
  "UPLOADED",
  "SPLITTING",
  "EMBEDDING",
  "INDEXING",
  "COMPLETED",
  "FAILED",
] as const;
export type JobState = (typeof JOB_STATES)[number];

/** The pipeline's forward order; FAILED can follow any state but COMPLETED. */
const ORDER: JobState[] = ["PENDING_UPLOAD", "UPLOADED", "SPLITTING", "EMBEDDING", "INDEXING", "COMPLETED"];

/** States a job may be in for a move to `to` to be legal (moves only go forward). */
export function statesBefore(to: JobState): JobState[] {
  if (to === "FAILED") return ORDER.slice(0, -1);
  return ORDER.slice(0, ORDER.indexOf(to));
}

export const isTerminal = (state: JobState) => state === "COMPLETED" || state === "FAILED";

export interface Job {
  jobId: string;
  tenant: string;
  documentId: string;
  collection: string;
  filename: string;
  contentType: string;
  /** Size the client declared; the uploaded object's real size once it landed. */
  size: number;
  metadata: Record<string, string | number | boolean>;
  /** Object key of the upload, under the tenant's prefix. */
  objectKey: string;
  state: JobState;
  chunksTotal: number;
  chunksEmbedded: number;
  chunksIndexed: number;
  /** When the job entered each state (ISO 8601). */
  stages: Partial<Record<JobState, string>>;
  error?: string;
  /** The last error a stage hit; becomes the failure reason if its retries run out. */
  lastError?: string;
  /** When the job's presigned upload stops being accepted (ISO 8601). */
  uploadExpiresAt?: string;
  /** ETag of the uploaded object the job accepted: later stages read that version only. */
  uploadEtag?: string;
  /** Times its dead-lettered batches were redriven automatically (transient faults). */
  autoRedrives?: number;
  createdAt: string;
  updatedAt: string;
}

/** What `GET /jobs/{id}` answers. */
export interface JobView {
  jobId: string;
  documentId: string;
  collection: string;
  filename: string;
  state: JobState;
  counts: { chunksTotal: number; chunksEmbedded: number; chunksIndexed: number };
  percentages: { embedded: number; indexed: number };
  stages: Partial<Record<JobState, string>>;
  /** True when a running job has not moved for longer than the stall threshold. */
  stalled: boolean;
  error?: string;
  createdAt: string;
  updatedAt: string;
}

const percent = (part: number, whole: number) => (whole > 0 ? Math.round((1000 * part) / whole) / 10 : 0);

export function jobView(job: Job, now: Date, stallAfterMinutes: number): JobView {
  const stalled = !isTerminal(job.state) && now.getTime() - Date.parse(job.updatedAt) > stallAfterMinutes * 60_000;
  const error =
    job.error ??
    (stalled
      ? `no progress since ${job.updatedAt} (state ${job.state}${job.lastError ? `; last error: ${job.lastError}` : ""})`
      : undefined);
  return {
    jobId: job.jobId,
    documentId: job.documentId,
    collection: job.collection,
    filename: job.filename,
    state: job.state,
    counts: { chunksTotal: job.chunksTotal, chunksEmbedded: job.chunksEmbedded, chunksIndexed: job.chunksIndexed },
    percentages: {
      embedded: percent(job.chunksEmbedded, job.chunksTotal),
      indexed: percent(job.chunksIndexed, job.chunksTotal),
    },
    stages: job.stages,
    stalled,
    ...(error ? { error } : {}),
    createdAt: job.createdAt,
    updatedAt: job.updatedAt,
  };
}
