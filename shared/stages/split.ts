import type { JobStore } from "../adapters/job-store.ts";
import type { ObjectStore } from "../adapters/object-store.ts";
import { ExtractionError, isDomainError } from "../domain/errors.ts";
import { isTerminal } from "../domain/jobs.ts";
import type { ChunkGroup, DocumentUploaded } from "../domain/messages.ts";
import type { Chunk } from "../domain/types.ts";

export interface SplitDeps {
  jobs: Pick<JobStore, "advance" | "get" | "fail">;
  objects: Pick<ObjectStore, "read">;
  /** Extracted text → chunks (extraction + token-aware chunking). */
  split: (documentId: string, bytes: Uint8Array, contentType: string) => Promise<Chunk[]>;
  chunksPerGroup: number;
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
 */
export async function splitDocument(message: DocumentUploaded, deps: SplitDeps): Promise<SplitOutcome> {
  const { jobId } = message;
  // The usual case moves the job on in one write; only a replay needs to look at where it is.
  if (!(await deps.jobs.advance(jobId, "SPLITTING"))) {
    const job = await deps.jobs.get(jobId);
    if (!job) return { kind: "skipped", reason: `job ${jobId} does not exist` };
    if (isTerminal(job.state)) return { kind: "skipped", reason: `job ${jobId} is ${job.state}` };
  }

  let chunks: Chunk[];
  try {
    const bytes = await deps.objects.read(message.bucket, message.key);
    chunks = await deps.split(message.document.documentId, bytes, message.document.contentType);
    if (chunks.length === 0) throw new ExtractionError("NO_TEXT", "the document holds no text to index");
  } catch (error) {
    if (!isDomainError(error) || error.retryable) throw error;
    await deps.jobs.fail(jobId, error.message);
    return { kind: "failed", reason: error.message };
  }

  await deps.jobs.advance(jobId, "EMBEDDING", { chunksTotal: chunks.length });
  const groups: ChunkGroup[] = [];
  for (let start = 0; start < chunks.length; start += deps.chunksPerGroup) {
    groups.push({
      jobId,
      tenant: message.tenant,
      groupId: `${jobId}:${groups.length}`,
      document: message.document,
      chunks: chunks.slice(start, start + deps.chunksPerGroup),
    });
  }
  return { kind: "split", chunks: chunks.length, groups };
}
