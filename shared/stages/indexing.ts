import { createHash } from "node:crypto";
import type { JobStore } from "../adapters/job-store.ts";
import type { ManifestStore } from "../adapters/manifest-store.ts";
import { type CompactionPolicy, nextMerge } from "../domain/compaction-policy.ts";
import { isTerminal, type Job } from "../domain/jobs.ts";
import {
  FIRST_INDEX,
  IndexGone,
  indexPrefix,
  isMigrationJob,
  LEGACY_MODEL_ID,
  ModelMismatch,
} from "../domain/manifest.ts";
import {
  type ChunkGroup,
  decodeVector,
  type EmbeddedGroup,
  type IndexTarget,
  type ReembedSegment,
} from "../domain/messages.ts";
import { decodeSegment, encodeBatchSegment, type Segment, segmentRef } from "../domain/segment.ts";
import { type DocumentInfo, documentKey, type EmbeddedChunk } from "../domain/types.ts";
import type { SegmentBlobs } from "./ports.ts";
import { batchCount, distinctGroups, liveGroups } from "./progress.ts";

export interface IndexDeps {
  jobs: Pick<JobStore, "getMany" | "uncounted" | "countIndexed" | "completeIfDone" | "addWork">;
  manifests: Pick<
    ManifestStore,
    "get" | "collection" | "addSegment" | "addTombstone" | "replaceSegments" | "promoteRevision" | "revealRevisions"
  >;
  blobs: SegmentBlobs;
  /** Sends groups (without vectors) to chunks.to-embed: copies for a second index, and re-routed groups. */
  toEmbed: (groups: ChunkGroup[]) => Promise<void>;
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
 * so a replay of the same batch writes the same object and the manifest lists it once. Compaction is
 * requested, not run, here (after the bookkeeping: the revisions this batch completed are shown by then,
 * so their segments can be merged): a batch's time and memory do not depend on the collection's size.
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
export async function indexGroups(groups: EmbeddedGroup[], deps: IndexDeps): Promise<IndexResult> {
  const { live, running, found } = await liveGroups(distinctGroups(groups), deps.jobs);
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
  const segments: IndexResult["segments"] = [];
  let forwarded = 0;
  for (const { tenant, collection, target, groups: batch } of batches.values()) {
    try {
      for (const part of oneRevisionPerDocument(batch)) {
        const written = await writeSegment(part, target, deps);
        if (written) segments.push(written);
      }
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
  }
  const counting = fresh.filter(({ group }) => !rerouted.has(group.groupId));
  // Jobs this batch finishes are made searchable first and completed by the counting write itself.
  const revealedEarly = new Map<string, Job>();
  const {
    counted,
    finished,
    completed: completedByCount,
  } = await deps.jobs.countIndexed(counting, running, {
    beforeCompleting: async (jobs) => {
      await promote(
        jobs.filter((job) => !isMigrationJob(job.jobId)),
        deps,
      );
      for (const job of jobs) revealedEarly.set(job.jobId, job);
    },
  });
  // A job is searchable before it is COMPLETED, so a client that sees COMPLETED finds it. Jobs
  // read with every chunk counted but not completed are those of an invocation that stopped
  // between the two (this is its replay): finished here, idempotently.
  const stalled = [...running.values()].filter((job) => job.chunksTotal > 0 && job.chunksIndexed >= job.chunksTotal);
  // A replay of a batch that completed its jobs promotes them again (idempotent).
  const replayed = [...found.values()].filter((job) => job.state === "COMPLETED");
  // A group written here but counted by another invocation (a duplicate delivered to both at once)
  // listed its revision as pending again, perhaps after that invocation revealed it: look again.
  const countedHere = new Set(counted.map((batch) => batch.batchId));
  const handled = new Set([...finished, ...stalled, ...replayed, ...completedByCount].map((job) => job.jobId));
  const raced = [
    ...new Set(counting.filter(({ batchId }) => !countedHere.has(batchId)).map(({ jobId }) => jobId)),
  ].filter((jobId) => !handled.has(jobId));
  const racedJobs = raced.length === 0 ? [] : [...(await deps.jobs.getMany(raced)).values()];
  const completedElsewhere = racedJobs.filter((job) => job.state === "COMPLETED");
  const finishedElsewhere = racedJobs.filter(
    (job) => !isTerminal(job.state) && job.chunksTotal > 0 && job.chunksIndexed >= job.chunksTotal,
  );
  const completed: Job[] = [...completedByCount];
  const completedIds = new Set(completed.map((job) => job.jobId));
  const finishing = distinctJobs([...finished, ...stalled, ...finishedElsewhere]).filter(
    (job) => !completedIds.has(job.jobId),
  );
  // A migration's job fills its new index: nothing to promote (its revisions are the uploads').
  await promote(
    finishing.filter((job) => !isMigrationJob(job.jobId)),
    deps,
  );
  const unsettled: Job[] = [];
  for (const job of finishing) {
    if (await deps.jobs.completeIfDone(job.jobId)) completed.push(job);
    else unsettled.push(job);
  }
  // Shown, yet not completed here: a job that failed meanwhile (a rare race with the dead-letter
  // function) must show nothing.
  const settled = new Set([...completed, ...unsettled].map((job) => job.jobId));
  unsettled.push(...[...revealedEarly.values()].filter((job) => !settled.has(job.jobId)));
  await hideFailed(
    unsettled.filter((job) => !isMigrationJob(job.jobId)),
    deps,
  );
  await promote(
    [...replayed, ...completedElsewhere].filter((job) => !isMigrationJob(job.jobId)),
    deps,
  );
  // Compaction last: the revisions this batch completed are shown now, so their segments can be merged.
  for (const { tenant, collection, target } of batches.values()) {
    await requestCompaction(tenant, collection, target.index, deps);
  }
  return {
    indexed: counted.reduce((sum, batch) => sum + batch.chunks, 0),
    skipped: groups.length - fresh.length,
    forwarded,
    rerouted: rerouted.size,
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
  /** Copies of uploads' groups sent to be embedded for the collection's other index. */
  forwarded: number;
  /** Uploads' groups sent back to embedding: their index was dropped or changed model. */
  rerouted: number;
  /** Segments written and the revisions each listed as pending. */
  segments: { id: string; revisions: string[]; listed: boolean }[];
  /** Jobs this call completed (each job is completed by exactly one call), as they were before. */
  completed: Job[];
  /** Jobs found completed already, promoted again (idempotent). */
  promotedAgain: string[];
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

async function writeSegment(
  groups: EmbeddedGroup[],
  target: IndexTarget,
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
    const revision = group.revision ?? group.jobId;
    // An upload's revision stays hidden until its job completes; a migration re-embeds revisions
    // the old index shows already (the job that wrote them is not this one).
    if (!isMigrationJob(group.jobId)) revisions.add(documentKey({ documentId: group.document.documentId, revision }));
    documents.set(group.document.documentId, { ...group.document, revision });
    group.chunks.forEach((chunk, i) => {
      chunks.push({ ...chunk, collection, vector: decodeVector(group.vectors[i] ?? "") });
    });
  }
  const encoded = encodeBatchSegment(segmentId, chunks, documents, { model: target.model });
  const key = segmentKey(tenant, collection, segmentId, target.index);
  await deps.blobs.write(key, encoded.parts);
  // Its revisions stay hidden (pending) until their jobs complete.
  const listed = await deps.manifests.addSegment(tenant, collection, segmentRef(encoded, key), target, [...revisions]);
  return { id: segmentId, revisions: [...revisions], listed };
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

const revisionOf = (job: Job) => documentKey({ documentId: job.documentId, revision: job.jobId });

const distinctJobs = (jobs: Job[]) => [...new Map(jobs.map((job) => [job.jobId, job])).values()];

/**
 * Completed uploads become their documents' live revisions: searchable from now on, and the
 * revisions they replace tombstoned in the same manifest write when both are in one collection.
 * Each document's pointer moves on its own; the reveals are gathered, so a batch writes each
 * collection's manifests once however many jobs it completes. Idempotent, so a replay can run it again.
 */
async function promote(jobs: Job[], deps: IndexDeps): Promise<void> {
  const reveals = new Map<string, { tenant: string; collection: string; revisions: string[]; replaced: string[] }>();
  for (const job of jobs) {
    const replaced = await deps.manifests.promoteRevision(job.tenant, job.documentId, {
      id: job.jobId,
      collection: job.collection,
      createdAt: job.createdAt,
    });
    const key = `${job.tenant}\n${job.collection}`;
    const reveal = reveals.get(key) ?? { tenant: job.tenant, collection: job.collection, revisions: [], replaced: [] };
    reveals.set(key, reveal);
    reveal.revisions.push(revisionOf(job));
    if (!replaced) continue;
    const replacedKey = documentKey({ documentId: job.documentId, revision: replaced.id });
    if (replaced.collection === job.collection) reveal.replaced.push(replacedKey);
    else await deps.manifests.addTombstone(job.tenant, replaced.collection, replacedKey);
  }
  for (const { tenant, collection, revisions, replaced } of reveals.values()) {
    await deps.manifests.revealRevisions(tenant, collection, revisions, replaced);
  }
}

/** Tombstones the revisions of those jobs that are FAILED now. */
async function hideFailed(jobs: Job[], deps: IndexDeps): Promise<void> {
  if (jobs.length === 0) return;
  const now = await deps.jobs.getMany(jobs.map((job) => job.jobId));
  for (const job of jobs) {
    if (now.get(job.jobId)?.state === "FAILED")
      await deps.manifests.addTombstone(job.tenant, job.collection, revisionOf(job));
  }
}

/** Hands the collection to the compaction function when one of its indexes has something to merge or to drop. */
async function requestCompaction(tenant: string, collection: string, index: string, deps: IndexDeps): Promise<void> {
  const { compaction } = deps;
  if (compaction === undefined) return;
  try {
    const manifest = await deps.manifests.get(tenant, collection, index);
    if (nextMerge(manifest.segments, compaction.policy) !== undefined) {
      await compaction.request(tenant, collection);
    }
  } catch (error) {
    compaction.onError?.(error);
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
    const groups = await storedGroups(decodeSegment(bytes), request, deps.chunksPerGroup);
    await deps.toEmbed(groups);
    published += groups.length;
  }
  return { groups: published, skipped };
}

/** A segment's stored chunks as groups for chunks.to-embed, one document revision per group. */
async function storedGroups(segment: Segment, request: ReembedSegment, chunksPerGroup: number): Promise<ChunkGroup[]> {
  const groups: ChunkGroup[] = [];
  const docs = segment.documents;
  for (let doc = 0; doc < docs.count; doc += 1) {
    const info = docs.info(doc);
    const ordinals: number[] = [];
    for (let ordinal = docs.chunkStart[doc] as number; ordinal < (docs.chunkStart[doc + 1] as number); ordinal += 1) {
      ordinals.push(ordinal);
    }
    const chunks = (await segment.chunks(ordinals)).map(({ chunkId, documentId, ordinal, page, start, end, text }) => ({
      chunkId,
      documentId,
      ordinal,
      page,
      start,
      end,
      text,
    }));
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
