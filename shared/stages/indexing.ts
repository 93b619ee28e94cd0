import { createHash } from "node:crypto";
import type { JobStore } from "../adapters/job-store.ts";
import type { ManifestStore } from "../adapters/manifest-store.ts";
import { isTerminal, type Job } from "../domain/jobs.ts";
import {
  FIRST_INDEX,
  IndexGone,
  indexPrefix,
  isMigrationJob,
  LEGACY_MODEL_ID,
  ModelMismatch,
  type SegmentRef,
} from "../domain/manifest.ts";
import {
  type ChunkGroup,
  decodeVector,
  type EmbeddedGroup,
  type IndexTarget,
  type ReembedSegment,
} from "../domain/messages.ts";
import {
  buildSegment,
  decodeSegment,
  encodeSegment,
  mergeSegments,
  type Segment,
  type StoredChunk,
} from "../domain/segment.ts";
import { type DocumentInfo, documentKey, type EmbeddedChunk } from "../domain/types.ts";
import type { SegmentBlobs } from "./ports.ts";
import { batchCount, liveGroups } from "./progress.ts";

export interface IndexDeps {
  jobs: Pick<JobStore, "getMany" | "uncounted" | "countIndexed" | "addWork">;
  manifests: Pick<
    ManifestStore,
    "get" | "collection" | "addSegment" | "addTombstone" | "replaceSegments" | "promoteRevision"
  >;
  blobs: SegmentBlobs;
  /** Sends groups (without vectors) to chunks.to-embed: copies for a second index, and re-routed groups. */
  toEmbed: (groups: ChunkGroup[]) => Promise<void>;
  /** Compaction starts once a collection has more live segments than this. */
  maxSegments: number;
}

/** index/<tenant>/<collection>/segments/<id>.seg (the first index), …/indexes/<index>/segments/<id>.seg (later ones) */
export const segmentKey = (tenant: string, collection: string, segmentId: string, index: string = FIRST_INDEX) =>
  `${indexPrefix(tenant, collection, index)}segments/${segmentId}.seg`;

/** Groups without a target come from before models were recorded: the legacy model, for the first index. */
const targetOf = (group: ChunkGroup): IndexTarget => group.target ?? { index: FIRST_INDEX, model: LEGACY_MODEL_ID };

/**
 * Turns a batch of embedded groups into one immutable segment per collection and index, lists it
 * in that index's manifest, then counts each group as indexed exactly once and completes jobs whose
 * every chunk is indexed (the batch's bookkeeping is a couple of reads and one transaction).
 * Groups already counted (a redelivered batch) are skipped; a segment id derives from its groups,
 * so a replay of the same batch writes the same object and the manifest lists it once. When a
 * collection has too many segments, the smallest are merged.
 *
 * Indexes and models: a segment goes to the index its groups were embedded for, which lists it
 * only if its model is the index's. An upload's groups, once written, are also sent to be
 * embedded for the collection's other live index (a migration's new index, or the old one kept
 * for roll-back), with their chunks added to the job's total, so the upload lands in both. The
 * collection is read after the segment is listed and a migration snapshots the old index after
 * creating the new one, so a segment is either in the snapshot or sent on (or both: harmless,
 * search de-duplicates chunk ids). Groups for an index that was dropped meanwhile go back to
 * embed for the active index; copies for it are counted and dropped.
 */
export async function indexGroups(
  groups: EmbeddedGroup[],
  deps: IndexDeps,
): Promise<{ indexed: number; skipped: number; forwarded: number; rerouted: number }> {
  const { live, running } = await liveGroups(groups, deps.jobs);
  const fresh = await deps.jobs.uncounted(
    "indexed",
    live.map((group) => ({ ...batchCount(group), group })),
  );
  const batches = new Map<
    string,
    { tenant: string; collection: string; target: IndexTarget; groups: EmbeddedGroup[] }
  >();
  for (const { group } of fresh) {
    const target = targetOf(group);
    const key = `${group.tenant}\n${group.document.collection}\n${target.index}`;
    const batch = batches.get(key) ?? {
      tenant: group.tenant,
      collection: group.document.collection,
      target,
      groups: [],
    };
    batch.groups.push(group);
    batches.set(key, batch);
  }
  const rerouted = new Set<string>();
  let forwarded = 0;
  for (const { tenant, collection, target, groups: batch } of batches.values()) {
    try {
      for (const part of oneRevisionPerDocument(batch)) await writeSegment(part, target, deps);
    } catch (error) {
      if (!(error instanceof IndexGone || error instanceof ModelMismatch)) throw error;
      // Copies for an index that is gone are dropped (and counted, so their job finishes);
      // an upload's groups are embedded again for the active index.
      const uploads = batch.filter((group) => !group.copy);
      await deps.toEmbed(uploads.map(({ vectors: _, target: __, ...group }) => group));
      for (const group of uploads) rerouted.add(group.groupId);
      continue;
    }
    forwarded += await forwardToOtherIndexes(tenant, collection, target, batch, running, deps);
    await compactIfNeeded(tenant, collection, deps, false, target.index);
  }
  const counting = fresh.filter(({ group }) => !rerouted.has(group.groupId));
  const { counted, completed } = await deps.jobs.countIndexed(counting, running);
  for (const job of completed) if (!isMigrationJob(job.jobId)) await promote(job, deps);
  return {
    indexed: counted.reduce((sum, batch) => sum + batch.chunks, 0),
    skipped: groups.length - fresh.length,
    forwarded,
    rerouted: rerouted.size,
  };
}

/**
 * Sends an upload's groups just written to `written` on to the collection's other live indexes,
 * after adding their chunks to the jobs' totals (once per group and index). Copies are never
 * sent on again.
 */
async function forwardToOtherIndexes(
  tenant: string,
  collection: string,
  written: IndexTarget,
  groups: EmbeddedGroup[],
  running: Map<string, Job>,
  deps: IndexDeps,
): Promise<number> {
  const uploads = groups.filter((group) => !group.copy && !isMigrationJob(group.jobId));
  if (uploads.length === 0) return 0;
  const { indexes } = await deps.manifests.collection(tenant, collection);
  const copies: ChunkGroup[] = [];
  for (const other of indexes.values()) {
    if (other.index === written.index || other.model === undefined) continue;
    for (const { vectors: _, ...group } of uploads) {
      copies.push({
        ...group,
        groupId: `${group.groupId}>${other.index}`,
        target: { index: other.index, model: other.model },
        revision: group.revision ?? group.jobId,
        copy: true,
      });
    }
  }
  if (copies.length === 0) return 0;
  // Totals first, then the copies: the job can never look complete before they are indexed.
  const added = await deps.jobs.addWork(copies.map(batchCount));
  for (const batch of added) {
    const job = running.get(batch.jobId);
    if (job) running.set(batch.jobId, { ...job, chunksTotal: job.chunksTotal + batch.chunks });
  }
  await deps.toEmbed(copies);
  return copies.length;
}

async function writeSegment(groups: EmbeddedGroup[], target: IndexTarget, deps: IndexDeps): Promise<void> {
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
    documents.set(group.document.documentId, { ...group.document, revision: group.revision ?? group.jobId });
    group.chunks.forEach((chunk, i) => {
      chunks.push({ ...chunk, collection, vector: decodeVector(group.vectors[i] ?? "") });
    });
  }
  const bytes = encodeSegment(buildSegment(segmentId, chunks, documents, { model: target.model }));
  const key = segmentKey(tenant, collection, segmentId, target.index);
  await deps.blobs.write(key, bytes);
  await deps.manifests.addSegment(
    tenant,
    collection,
    { id: segmentId, key, chunks: chunks.length, bytes: bytes.byteLength, createdAt: new Date().toISOString() },
    target,
  );
}

/** A segment describes each document once: two uploads of one document in a batch go to separate segments. */
function oneRevisionPerDocument(groups: EmbeddedGroup[]): EmbeddedGroup[][] {
  const parts: { revisions: Map<string, string>; groups: EmbeddedGroup[] }[] = [];
  for (const group of groups) {
    const { documentId } = group.document;
    const revision = group.revision ?? group.jobId;
    let part = parts.find((candidate) => (candidate.revisions.get(documentId) ?? revision) === revision);
    if (!part) {
      part = { revisions: new Map(), groups: [] };
      parts.push(part);
    }
    part.revisions.set(documentId, revision);
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

/**
 * Merges the smallest segments once there are more than `maxSegments`, dropping tombstoned
 * revisions and duplicate chunks. Tombstones are only forgotten when every segment was merged
 * (no other segment can still hold their chunks). A lost race with another writer is left for
 * the next run.
 */
export async function compactIfNeeded(
  tenant: string,
  collection: string,
  deps: Pick<IndexDeps, "manifests" | "blobs" | "maxSegments">,
  force = false,
  index: string = FIRST_INDEX,
): Promise<boolean> {
  const manifest = await deps.manifests.get(tenant, collection, index);
  const { segments } = manifest;
  if (segments.length < 2 || (!force && segments.length <= deps.maxSegments)) return false;
  const victims: SegmentRef[] = force
    ? segments
    : [...segments].sort((a, b) => a.chunks - b.chunks).slice(0, segments.length - Math.floor(deps.maxSegments / 2));
  const decoded = await Promise.all(victims.map(async (ref) => decodeSegment(await deps.blobs.read(ref.key))));
  const mergedId = createHash("sha256")
    .update(
      victims
        .map((ref) => ref.id)
        .sort()
        .join("\n"),
    )
    .digest("hex")
    .slice(0, 24);
  const merged = mergeSegments(
    decoded,
    new Set(manifest.tombstones),
    mergedId,
    manifest.model ? { model: manifest.model } : {},
  );
  const bytes = encodeSegment(merged);
  const key = segmentKey(tenant, collection, mergedId, index);
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

/**
 * A migration's fan-out: each requested segment of the index being migrated from is read and its
 * stored chunks (text, positions, document and revision) go to chunks.to-embed in groups of
 * `chunksPerGroup`, for the new index and its model, counted by the migration's job. Group ids
 * derive from the segment, so a replay publishes the same groups, which count once. A segment
 * that no longer exists fails the migration with the reason.
 */
export async function fanOutReembeds(
  requests: ReembedSegment[],
  deps: Pick<IndexDeps, "blobs" | "toEmbed"> & {
    jobs: Pick<JobStore, "getMany" | "fail">;
    chunksPerGroup: number;
  },
): Promise<{ groups: number; skipped: number }> {
  const jobs = await deps.jobs.getMany(requests.map((request) => request.jobId));
  let published = 0;
  let skipped = 0;
  for (const request of requests) {
    const job = jobs.get(request.jobId);
    if (!job || isTerminal(job.state)) {
      skipped++;
      continue;
    }
    let bytes: Uint8Array;
    try {
      bytes = await deps.blobs.read(request.segment.key);
    } catch (error) {
      if ((error as Error).name !== "NoSuchKey") throw error;
      await deps.jobs.fail(
        request.jobId,
        `segment ${request.segment.id} of the old index is gone (removed before it was re-embedded): drop the new index and migrate again`,
      );
      continue;
    }
    const groups = storedGroups(decodeSegment(bytes), request, deps.chunksPerGroup);
    await deps.toEmbed(groups);
    published += groups.length;
  }
  return { groups: published, skipped };
}

/** A segment's stored chunks as groups for chunks.to-embed, one document revision per group. */
function storedGroups(segment: Segment, request: ReembedSegment, chunksPerGroup: number): ChunkGroup[] {
  const groups: ChunkGroup[] = [];
  for (const { info, ordinals } of segment.documents.values()) {
    const chunks = ordinals.map((ordinal) => {
      const { chunkId, documentId, ordinal: position, page, start, end, text } = segment.chunks[ordinal] as StoredChunk;
      return { chunkId, documentId, ordinal: position, page, start, end, text };
    });
    for (let from = 0; from < chunks.length; from += chunksPerGroup) {
      groups.push({
        jobId: request.jobId,
        tenant: request.tenant,
        groupId: `${request.jobId}:${request.segment.id}:${documentKey(info)}:${from / chunksPerGroup}`,
        document: {
          documentId: info.documentId,
          collection: request.collection,
          contentType: info.contentType,
          ...(info.filename !== undefined ? { filename: info.filename } : {}),
          ...(info.metadata !== undefined ? { metadata: { ...info.metadata } } : {}),
        },
        chunks: chunks.slice(from, from + chunksPerGroup),
        target: request.target,
        ...(info.revision !== undefined ? { revision: info.revision } : {}),
        copy: true,
      });
    }
  }
  return groups;
}
