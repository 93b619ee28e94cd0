import { ExtractionError, isDomainError } from "./errors.ts";
import type { JobStore } from "./job-store.ts";
import { isTerminal } from "./jobs.ts";
import type { ChunkGroup, DocumentUploaded } from "./messages.ts";
import type { ObjectStore } from "./object-store.ts";
import type { Chunk } from "./types.ts";

export interface SplitDeps {
  jobs: JobStore;
  objects: ObjectStore;
  /** Extracted text → chunks (extraction + token-aware chunking). */
  split: (documentId: string, bytes: Uint8Array, contentType: string) => Promise<Chunk[]>;
  publish: (groups: ChunkGroup[]) => Promise<void>;
  chunksPerGroup: number;
}

export type SplitOutcome =
  | { kind: "split"; chunks: number; groups: number }
  | { kind: "failed"; reason: string }
  | { kind: "skipped"; reason: string };

/**
 * The fan-out: one uploaded document becomes groups of chunks on chunks.to-embed. The job's
 * chunk total is recorded before any group is published, so completion can never be declared
 * early. A replay (redelivery, or a duplicate publish by on-upload) splits again and republishes
 * the same group ids, which the later stages count once. A document that cannot be read fails
 * its job with the reason instead of retrying.
 */
export async function splitDocument(message: DocumentUploaded, deps: SplitDeps): Promise<SplitOutcome> {
  const job = await deps.jobs.get(message.jobId);
  if (!job) return { kind: "skipped", reason: `job ${message.jobId} does not exist` };
  if (isTerminal(job.state)) return { kind: "skipped", reason: `job ${job.jobId} is ${job.state}` };
  await deps.jobs.advance(job.jobId, "SPLITTING");

  let chunks: Chunk[];
  try {
    const bytes = await deps.objects.read(message.bucket, message.key);
    chunks = await deps.split(message.document.documentId, bytes, message.document.contentType);
    if (chunks.length === 0) throw new ExtractionError("NO_TEXT", "the document holds no text to index");
  } catch (error) {
    if (!isDomainError(error) || error.retryable) throw error;
    await deps.jobs.fail(job.jobId, error.message);
    return { kind: "failed", reason: error.message };
  }

  await deps.jobs.advance(job.jobId, "EMBEDDING", { chunksTotal: chunks.length });
  const groups: ChunkGroup[] = [];
  for (let start = 0; start < chunks.length; start += deps.chunksPerGroup) {
    groups.push({
      jobId: job.jobId,
      tenant: message.tenant,
      groupId: `${job.jobId}:${groups.length}`,
      document: message.document,
      chunks: chunks.slice(start, start + deps.chunksPerGroup),
    });
  }
  await deps.publish(groups);
  return { kind: "split", chunks: chunks.length, groups: groups.length };
}
