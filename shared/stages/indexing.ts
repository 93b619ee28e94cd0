import { createHash } from "node:crypto";
import type { JobStore } from "../adapters/job-store.ts";
import type { ManifestStore } from "../adapters/manifest-store.ts";
import { type CompactionPolicy, nextMerge } from "../domain/compaction-policy.ts";
import { isTerminal, type Job } from "../domain/jobs.ts";
import { decodeVector, type EmbeddedGroup } from "../domain/messages.ts";
import { encodeBatchSegment, SEGMENT_FORMAT_VERSION } from "../domain/segment.ts";
import { type DocumentInfo, documentKey, type EmbeddedChunk } from "../domain/types.ts";
import type { SegmentBlobs } from "./ports.ts";
import { batchCount, distinctGroups, liveGroups } from "./progress.ts";

export interface IndexDeps {
  jobs: Pick<JobStore, "getMany" | "uncounted" | "countIndexed" | "completeIfDone">;
  manifests: Pick<
    ManifestStore,
    "get" | "addSegment" | "addTombstone" | "replaceSegments" | "promoteRevision" | "revealRevision"
  >;
  blobs: SegmentBlobs;
  /**
   * Compaction runs apart from ingestion: after a batch, a collection the policy finds worth compacting is
   * handed to `request` (an asynchronous invocation of the compaction function).
   * A failed request is logged, never fails the batch.
   */
  compaction?: {
    policy: CompactionPolicy;
    request(tenant: string, collection: string): Promise<void>;
    onError?(error: unknown): void;
  };
}

/** index/<tenant>/<collection>/segments/<id>.seg */
export const segmentKey = (tenant: string, collection: string, segmentId: string) =>
  `index/${tenant}/${collection}/segments/${segmentId}.seg`;

/**
 * Turns a batch of embedded groups into one immutable segment per collection, lists it in the
 * collection's manifest, then counts each group as indexed exactly once and completes jobs whose
 * every chunk is indexed (the batch's bookkeeping is a couple of reads and one transaction).
 * Groups already counted (a redelivered batch) are skipped; a segment id derives from its groups,
 * so a replay of the same batch writes the same object and the manifest lists it once. Compaction is
 * requested, not run, here (after the bookkeeping: the revisions this batch completed are shown by then,
 * so their segments can be merged): a batch's time and memory do not depend on the collection's size.
 */
export async function indexGroups(groups: EmbeddedGroup[], deps: IndexDeps): Promise<IndexResult> {
  const { live, running, found } = await liveGroups(distinctGroups(groups), deps.jobs);
  const fresh = await deps.jobs.uncounted(
    "indexed",
    live.map((group) => ({ ...batchCount(group), group })),
  );
  const collections = new Map<string, EmbeddedGroup[]>();
  for (const { group } of fresh) {
    const key = `${group.tenant}\n${group.document.collection}`;
    collections.set(key, [...(collections.get(key) ?? []), group]);
  }
  const segments: IndexResult["segments"] = [];
  for (const batch of collections.values()) {
    for (const part of oneRevisionPerDocument(batch)) {
      const written = await writeSegment(part, deps);
      if (written) segments.push(written);
    }
  }
  const { counted, finished } = await deps.jobs.countIndexed(fresh, running);
  // A job is searchable before it is COMPLETED, so a client that sees COMPLETED finds it. Jobs
  // read with every chunk counted but not completed are those of an invocation that stopped
  // between the two (this is its replay): finished here, idempotently.
  const stalled = [...running.values()].filter((job) => job.chunksTotal > 0 && job.chunksIndexed >= job.chunksTotal);
  // A replay of a batch that completed its jobs promotes them again (idempotent).
  const replayed = [...found.values()].filter((job) => job.state === "COMPLETED");
  // A group written here but counted by another invocation (a duplicate delivered to both at once)
  // listed its revision as pending again, perhaps after that invocation revealed it: look again.
  const countedHere = new Set(counted.map((batch) => batch.batchId));
  const handled = new Set([...finished, ...stalled, ...replayed].map((job) => job.jobId));
  const raced = [...new Set(fresh.filter(({ batchId }) => !countedHere.has(batchId)).map(({ jobId }) => jobId))].filter(
    (jobId) => !handled.has(jobId),
  );
  const racedJobs = raced.length === 0 ? [] : [...(await deps.jobs.getMany(raced)).values()];
  const completedElsewhere = racedJobs.filter((job) => job.state === "COMPLETED");
  const finishedElsewhere = racedJobs.filter(
    (job) => !isTerminal(job.state) && job.chunksTotal > 0 && job.chunksIndexed >= job.chunksTotal,
  );
  const completed: Job[] = [];
  for (const job of distinctJobs([...finished, ...stalled, ...finishedElsewhere])) {
    await promote(job, deps);
    if (await deps.jobs.completeIfDone(job.jobId)) completed.push(job);
    else if ((await deps.jobs.getMany([job.jobId])).get(job.jobId)?.state === "FAILED") {
      // Failed meanwhile (a rare race with the dead-letter function): a FAILED job shows nothing.
      await deps.manifests.addTombstone(job.tenant, job.collection, revisionOf(job));
    }
  }
  for (const job of [...replayed, ...completedElsewhere]) await promote(job, deps);
  // Compaction last: the revisions this batch completed are shown now, so their segments can be merged.
  for (const [first] of collections.values()) {
    if (first) await requestCompaction(first.tenant, first.document.collection, deps);
  }
  return {
    indexed: counted.reduce((sum, batch) => sum + batch.chunks, 0),
    skipped: groups.length - fresh.length,
    segments,
    completed,
    promotedAgain: [...replayed, ...completedElsewhere].map((job) => job.jobId),
  };
}

export interface IndexResult {
  /** Chunks counted as indexed by this call. */
  indexed: number;
  /** Groups not written: repeats, already counted, or of jobs no longer running. */
  skipped: number;
  /** Segments written and the revisions each listed as pending. */
  segments: { id: string; revisions: string[]; listed: boolean }[];
  /** Jobs this call completed (each job is completed by exactly one call), as they were before. */
  completed: Job[];
  /** Jobs found completed already, promoted again (idempotent). */
  promotedAgain: string[];
}

async function writeSegment(
  groups: EmbeddedGroup[],
  deps: IndexDeps,
): Promise<IndexResult["segments"][number] | undefined> {
  const [first] = groups;
  if (!first) return undefined;
  const { tenant } = first;
  const { collection } = first.document;
  const segmentId = createHash("sha256")
    .update(
      groups
        .map((group) => group.groupId)
        .sort()
        .join("\n"),
    )
    .digest("hex")
    .slice(0, 24);
  const chunks: EmbeddedChunk[] = [];
  const documents = new Map<string, DocumentInfo>();
  const revisions = new Set<string>();
  for (const group of groups) {
    revisions.add(documentKey({ documentId: group.document.documentId, revision: group.jobId }));
    documents.set(group.document.documentId, { ...group.document, revision: group.jobId });
    group.chunks.forEach((chunk, i) => {
      chunks.push({ ...chunk, collection, vector: decodeVector(group.vectors[i] ?? "") });
    });
  }
  const encoded = encodeBatchSegment(segmentId, chunks, documents);
  const key = segmentKey(tenant, collection, segmentId);
  await deps.blobs.write(key, encoded.parts);
  // Its revisions stay hidden (pending) until their jobs complete.
  const listed = await deps.manifests.addSegment(
    tenant,
    collection,
    {
      id: segmentId,
      key,
      chunks: encoded.header.chunkCount,
      bytes: encoded.byteLength,
      createdAt: encoded.header.createdAt,
      format: SEGMENT_FORMAT_VERSION,
    },
    [...revisions],
  );
  return { id: segmentId, revisions: [...revisions], listed };
}

/** A segment describes each document once: two uploads of one document in a batch go to separate segments. */
function oneRevisionPerDocument(groups: EmbeddedGroup[]): EmbeddedGroup[][] {
  const parts: { revisions: Map<string, string>; groups: EmbeddedGroup[] }[] = [];
  for (const group of groups) {
    const { documentId } = group.document;
    let part = parts.find((candidate) => (candidate.revisions.get(documentId) ?? group.jobId) === group.jobId);
    if (!part) {
      part = { revisions: new Map(), groups: [] };
      parts.push(part);
    }
    part.revisions.set(documentId, group.jobId);
    part.groups.push(group);
  }
  return parts.map((part) => part.groups);
}

const revisionOf = (job: Job) => documentKey({ documentId: job.documentId, revision: job.jobId });

const distinctJobs = (jobs: Job[]) => [...new Map(jobs.map((job) => [job.jobId, job])).values()];

/**
 * A completed upload becomes its document's live revision: searchable from now on, and the
 * revision it replaces tombstoned (in the same manifest write when both are in one collection).
 * Idempotent, so a replay can run it again.
 */
async function promote(job: Job, deps: IndexDeps): Promise<void> {
  const revision = revisionOf(job);
  const replaced = await deps.manifests.promoteRevision(job.tenant, job.documentId, {
    id: job.jobId,
    collection: job.collection,
    createdAt: job.createdAt,
  });
  const replacedKey = replaced && documentKey({ documentId: job.documentId, revision: replaced.id });
  if (replaced && replaced.collection !== job.collection) {
    await deps.manifests.addTombstone(job.tenant, replaced.collection, replacedKey as string);
    await deps.manifests.revealRevision(job.tenant, job.collection, revision);
  } else {
    await deps.manifests.revealRevision(job.tenant, job.collection, revision, replacedKey);
  }
}

/** Hands the collection to the compaction function when there is something to merge or to drop. */
async function requestCompaction(tenant: string, collection: string, deps: IndexDeps): Promise<void> {
  const { compaction } = deps;
  if (compaction === undefined) return;
  try {
    const manifest = await deps.manifests.get(tenant, collection);
    if (nextMerge(manifest.segments, compaction.policy) !== undefined) {
      await compaction.request(tenant, collection);
    }
  } catch (error) {
    compaction.onError?.(error);
  }
}
