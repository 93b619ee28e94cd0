import { createHash } from "node:crypto";
import type { JobStore } from "../adapters/job-store.ts";
import type { ManifestStore } from "../adapters/manifest-store.ts";
import { isTerminal, type Job } from "../domain/jobs.ts";
import type { SegmentRef } from "../domain/manifest.ts";
import { decodeVector, type EmbeddedGroup } from "../domain/messages.ts";
import { buildSegment, decodeSegment, encodeSegment, mergeSegments } from "../domain/segment.ts";
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
  /** Compaction starts once a collection has more live segments than this. */
  maxSegments: number;
}

/** index/<tenant>/<collection>/segments/<id>.seg */
export const segmentKey = (tenant: string, collection: string, segmentId: string) =>
  `index/${tenant}/${collection}/segments/${segmentId}.seg`;

/**
 * Turns a batch of embedded groups into one immutable segment per collection, lists it in the
 * collection's manifest, then counts each group as indexed exactly once and completes jobs whose
 * every chunk is indexed (the batch's bookkeeping is a couple of reads and one transaction).
 * Groups already counted (a redelivered batch) are skipped; a segment id derives from its groups,
 * so a replay of the same batch writes the same object and the manifest lists it once. When a
 * collection has too many segments, the smallest are merged (after the bookkeeping).
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
    if (first) await compactIfNeeded(first.tenant, first.document.collection, deps);
  }
  return {
    indexed: counted.reduce((sum, batch) => sum + batch.chunks, 0),
    skipped: groups.length - fresh.length,
    segments,
    completed: completed.map((job) => job.jobId),
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
  /** Jobs this call completed. */
  completed: string[];
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
  const bytes = encodeSegment(buildSegment(segmentId, chunks, documents));
  const key = segmentKey(tenant, collection, segmentId);
  await deps.blobs.write(key, bytes);
  // Its revisions stay hidden (pending) until their jobs complete.
  const listed = await deps.manifests.addSegment(
    tenant,
    collection,
    { id: segmentId, key, chunks: chunks.length, bytes: bytes.byteLength, createdAt: new Date().toISOString() },
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

/**
 * Merges the smallest segments once there are more than `maxSegments`, dropping tombstoned
 * revisions and duplicate chunks. Tombstones are only forgotten when every segment was merged
 * (no other segment can still hold their chunks). A lost race with another writer is left for
 * the next run.
 */
export async function compactIfNeeded(
  tenant: string,
  collection: string,
  deps: IndexDeps,
  force = false,
): Promise<boolean> {
  const manifest = await deps.manifests.get(tenant, collection);
  const { segments } = manifest;
  if (segments.length < 2 || (!force && segments.length <= deps.maxSegments)) return false;
  const chosen: SegmentRef[] = force
    ? segments
    : [...segments].sort((a, b) => a.chunks - b.chunks).slice(0, segments.length - Math.floor(deps.maxSegments / 2));
  const pending = new Set(manifest.pending ?? []);
  const candidates = await Promise.all(
    chosen.map(async (ref) => ({ ref, segment: decodeSegment(await deps.blobs.read(ref.key)) })),
  );
  // A segment holding a revision whose job has not completed waits (unless forced): merged now, its
  // chunks and a shown revision's chunks of the same ids could not both be kept.
  const kept = force
    ? candidates
    : candidates.filter(({ segment }) => ![...segment.documents.keys()].some((key) => pending.has(key)));
  if (kept.length < 2) return false;
  const victims = kept.map(({ ref }) => ref);
  const decoded = kept.map(({ segment }) => segment);
  const mergedId = createHash("sha256")
    .update(
      victims
        .map((ref) => ref.id)
        .sort()
        .join("\n"),
    )
    .digest("hex")
    .slice(0, 24);
  const merged = mergeSegments(decoded, new Set(manifest.tombstones), mergedId, { pending });
  const bytes = encodeSegment(merged);
  const key = segmentKey(tenant, collection, mergedId);
  await deps.blobs.write(key, bytes);
  const everything = victims.length === segments.length;
  try {
    await deps.manifests.replaceSegments(
      manifest,
      victims.map((ref) => ref.id),
      { id: mergedId, key, chunks: merged.chunks.length, bytes: bytes.byteLength, createdAt: new Date().toISOString() },
      everything ? manifest.tombstones : [],
    );
    return true;
  } catch (error) {
    if ((error as Error).name === "ManifestConflict") return false;
    throw error;
  }
}
