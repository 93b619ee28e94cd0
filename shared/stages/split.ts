import type { JobStore } from "../adapters/job-store.ts";
import { ObjectChanged, type ObjectStore } from "../adapters/object-store.ts";
import { ExtractionError, isDomainError } from "../domain/errors.ts";
import { isTerminal, type Job } from "../domain/jobs.ts";
import type { ChunkGroup, DocumentUploaded } from "../domain/messages.ts";
import type { Chunk } from "../domain/types.ts";

export interface SplitDeps {
  jobs: Pick<JobStore, "advance" | "get" | "getMany" | "fail">;
  objects: Pick<ObjectStore, "read">;
  /** Extracted text → chunks (extraction + token-aware chunking). */
  split: (documentId: string, bytes: Uint8Array, contentType: string) => Promise<Chunk[]>;
  chunksPerGroup: number;
}

/**
 * Most bytes of chunks in one group (one chunks.to-embed message): with their vectors added by
 * embed, a group stays well under the topic's 1 MiB message limit whatever `chunksPerGroup` is.
 */
export const MAX_GROUP_CHUNK_BYTES = 256 * 1024;

/**
 * Splits a batch of uploaded documents (each job once, however often it was delivered) and then
 * publishes all their groups; a job's chunk total is recorded before any of its groups is
 * published, so completion can never be declared early. The batch's jobs are read in one round
 * trip, so that each document costs one job write (its move to EMBEDDING) in the usual case.
 */
export async function splitDocuments(
  messages: DocumentUploaded[],
  deps: SplitDeps & { publish: (groups: ChunkGroup[]) => Promise<void> },
): Promise<{ outcomes: (SplitOutcome & { jobId: string })[] }> {
  const distinct = [...new Map(messages.map((message) => [message.jobId, message])).values()];
  const jobs = await deps.jobs.getMany(distinct.map((message) => message.jobId));
  const outcomes: (SplitOutcome & { jobId: string })[] = [];
  for (const message of distinct) {
    outcomes.push({ jobId: message.jobId, ...(await splitDocument(message, deps, jobs.get(message.jobId) ?? null)) });
  }
  await deps.publish(outcomes.flatMap((outcome) => (outcome.kind === "split" ? outcome.groups : [])));
  return { outcomes };
}

export type SplitOutcome =
  | { kind: "split"; chunks: number; groups: ChunkGroup[] }
  | { kind: "failed"; reason: string }
  | { kind: "skipped"; reason: string };

/**
 * The fan-out: one uploaded document becomes groups of chunks for chunks.to-embed. The job's
 * chunk total is recorded here, so the caller publishes the groups only after this returns and
 * completion can never be declared early. A replay (redelivery, or a duplicate publish by
 * on-upload) splits again and yields the same group ids, which the later stages count once. A
 * document that cannot be read fails its job with the reason instead of retrying.
 *
 * The job goes from UPLOADED to EMBEDDING in one write once the chunks are known; that write also
 * records when splitting began (stages.SPLITTING), so the job's trace still shows the split's
 * duration without a write of its own. `seen` is the job as read before (undefined: read it here;
 * null: it did not exist).
 */
export async function splitDocument(
  message: DocumentUploaded,
  deps: SplitDeps,
  seen?: Job | null,
): Promise<SplitOutcome> {
  const { jobId } = message;
  const job = seen === undefined ? await deps.jobs.get(jobId) : seen;
  const skip = skipReason(jobId, job ?? undefined);
  if (skip) return { kind: "skipped", reason: skip };
  const splitStarted = new Date().toISOString();

  let chunks: Chunk[];
  try {
    const bytes = await deps.objects.read(message.bucket, message.key, undefined, message.etag);
    chunks = await deps.split(message.document.documentId, bytes, message.document.contentType);
    if (chunks.length === 0) throw new ExtractionError("NO_TEXT", "the document holds no text to index");
  } catch (error) {
    if (error instanceof ObjectChanged) {
      const reason = "the uploaded file was replaced after it was accepted: upload it again with a new upload URL";
      await deps.jobs.fail(jobId, reason);
      return { kind: "failed", reason };
    }
    if (!isDomainError(error) || error.retryable) throw error;
    await deps.jobs.fail(jobId, error.message);
    return { kind: "failed", reason: error.message };
  }

  const moved = await deps.jobs.advance(
    jobId,
    "EMBEDDING",
    { chunksTotal: chunks.length },
    { SPLITTING: splitStarted },
  );
  if (!moved) {
    // Already EMBEDDING or later (a replay: its groups are published again, and counted once),
    // or finished or gone since it was read.
    const skipNow = skipReason(jobId, await deps.jobs.get(jobId));
    if (skipNow) return { kind: "skipped", reason: skipNow };
  }
  const groups = groupChunks(chunks, deps.chunksPerGroup, MAX_GROUP_CHUNK_BYTES).map((part, i) => ({
    jobId,
    tenant: message.tenant,
    groupId: `${jobId}:${i}`,
    document: message.document,
    chunks: part,
  }));
  return { kind: "split", chunks: chunks.length, groups };
}

/** Why a document is not split: its job is gone or has already finished. */
function skipReason(jobId: string, job: Job | undefined): string | undefined {
  if (!job) return `job ${jobId} does not exist`;
  if (isTerminal(job.state)) return `job ${jobId} is ${job.state}`;
  return undefined;
}

/** Consecutive chunks in groups of at most `perGroup` chunks and `maxBytes` bytes (a chunk alone may exceed it). */
export function groupChunks(chunks: Chunk[], perGroup: number, maxBytes: number): Chunk[][] {
  const groups: Chunk[][] = [];
  let group: Chunk[] = [];
  let bytes = 0;
  for (const chunk of chunks) {
    const size = Buffer.byteLength(JSON.stringify(chunk));
    if (group.length > 0 && (group.length >= perGroup || bytes + size > maxBytes)) {
      groups.push(group);
      group = [];
      bytes = 0;
    }
    group.push(chunk);
    bytes += size;
  }
  if (group.length > 0) groups.push(group);
  return groups;
}
