import { createHash } from "node:crypto";
import type { JobStore } from "../adapters/job-store.ts";
import type { ManifestStore } from "../adapters/manifest-store.ts";
import { type CompactionPolicy, nextMerge } from "../domain/compaction-policy.ts";
import type { Job } from "../domain/jobs.ts";
import { decodeVector, type EmbeddedGroup } from "../domain/messages.ts";
import { encodeBatchSegment, SEGMENT_FORMAT_VERSION } from "../domain/segment.ts";
import { type DocumentInfo, documentKey, type EmbeddedChunk } from "../domain/types.ts";
import type { SegmentBlobs } from "./ports.ts";
import { batchCount, liveGroups } from "./progress.ts";

export interface IndexDeps {
  jobs: Pick<JobStore, "getMany" | "uncounted" | "countIndexed">;
  manifests: Pick<ManifestStore, "get" | "addSegment" | "addTombstone" | "replaceSegments" | "promoteRevision">;
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
 * requested, not run, here: a batch's time and memory do not depend on the collection's size.
 */
export async function indexGroups(
  groups: EmbeddedGroup[],
  deps: IndexDeps,
): Promise<{ indexed: number; skipped: number }> {
  const { live, running } = await liveGroups(groups, deps.jobs);
  const fresh = await deps.jobs.uncounted(
    "indexed",
    live.map((group) => ({ ...batchCount(group), group })),
  );
  const collections = new Map<string, EmbeddedGroup[]>();
  for (const { group } of fresh) {
    const key = `${group.tenant}\n${group.document.collection}`;
    collections.set(key, [...(collections.get(key) ?? []), group]);
  }
  for (const batch of collections.values()) {
    for (const part of oneRevisionPerDocument(batch)) await writeSegment(part, deps);
    const [first] = batch;
    if (first) await requestCompaction(first.tenant, first.document.collection, deps);
  }
  const { counted, completed } = await deps.jobs.countIndexed(fresh, running);
  for (const job of completed) await promote(job, deps);
  return { indexed: counted.reduce((sum, batch) => sum + batch.chunks, 0), skipped: groups.length - fresh.length };
}

async function writeSegment(groups: EmbeddedGroup[], deps: IndexDeps): Promise<void> {
  const [first] = groups;
  if (!first) return;
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
  for (const group of groups) {
    documents.set(group.document.documentId, { ...group.document, revision: group.jobId });
    group.chunks.forEach((chunk, i) => {
      chunks.push({ ...chunk, collection, vector: decodeVector(group.vectors[i] ?? "") });
    });
  }
  const encoded = encodeBatchSegment(segmentId, chunks, documents);
  const key = segmentKey(tenant, collection, segmentId);
  await deps.blobs.write(key, encoded.parts);
  await deps.manifests.addSegment(tenant, collection, {
    id: segmentId,
    key,
    chunks: encoded.header.chunkCount,
    bytes: encoded.byteLength,
    createdAt: encoded.header.createdAt,
    format: SEGMENT_FORMAT_VERSION,
  });
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

/** A completed upload becomes its document's live revision; the one it replaces is tombstoned. */
async function promote(job: Job, deps: IndexDeps): Promise<void> {
  const replaced = await deps.manifests.promoteRevision(job.tenant, job.documentId, {
    id: job.jobId,
    collection: job.collection,
    createdAt: job.createdAt,
  });
  if (replaced) {
    await deps.manifests.addTombstone(
      job.tenant,
      replaced.collection,
      documentKey({ documentId: job.documentId, revision: replaced.id }),
    );
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
