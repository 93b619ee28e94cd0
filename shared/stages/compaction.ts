import { createHash } from "node:crypto";
import type { ManifestStore } from "../adapters/manifest-store.ts";
import { type CompactionPolicy, nextMerge } from "../domain/compaction-policy.ts";
import { segmentMask } from "../domain/hybrid-search.ts";
import {
  FIRST_INDEX,
  type IndexManifest,
  type Manifest,
  ManifestConflict,
  type SegmentRef,
} from "../domain/manifest.ts";
import {
  type ByteSource,
  memorySource,
  mergeSegmentParts,
  SEGMENT_FORMAT_VERSION,
  Segment,
  segmentRef,
} from "../domain/segment.ts";
import { maskTargets } from "../domain/visibility.ts";
import { segmentKey } from "./indexing.ts";
import type { SegmentBlobs } from "./ports.ts";

export interface CompactionDeps {
  manifests: Pick<
    ManifestStore,
    "get" | "collection" | "replaceSegments" | "tryLease" | "releaseLease" | "forgetRetired"
  >;
  blobs: Pick<SegmentBlobs, "write" | "read"> & Partial<Pick<SegmentBlobs, "source" | "delete">>;
  policy: CompactionPolicy;
  /** Merged segments of at least this many chunks get an ANN index. */
  annMinChunks?: number;
  /** Milliseconds left in this invocation: no merge starts with less than `reserveMs` left. */
  remainingMs?: () => number;
  /** Time kept free for one more merge (default 5 minutes). */
  reserveMs?: number;
  /** How long a replaced segment's object is kept for searches still reading it (default 10 minutes). */
  retireAfterMs?: number;
  log?: (message: string, details: Record<string, unknown>) => void;
}

export interface CompactionResult {
  merges: number;
  /** Another holder is compacting this collection. */
  busy: boolean;
  /** Merges remain that this invocation left for the next (time ran out). */
  moreWork: boolean;
}

const LEASE_SECONDS = 16 * 60;

/**
 * Compacts one collection, apart from ingestion: repeatedly asks the policy for the next merge (neighbour
 * segments of one tier, old-format or mostly masked ones), merges it into one segment, writes it and swaps
 * it into the manifest, until the collection is compact or time runs short. One holder at a time per
 * collection (a lease); a swap that lost a race (another writer changed those segments) is retried from a
 * fresh manifest. Segments added meanwhile by ingestion are left alone. Tombstones no remaining segment
 * holds are forgotten. Objects of replaced segments are deleted a while later (`retireAfterMs`).
 * Each live index of the collection is compacted on its own: a merge only ever takes segments of one
 * index, so of one embedding model (recorded in the merged segment's header).
 */
export async function compactCollection(
  tenant: string,
  collection: string,
  holder: string,
  deps: CompactionDeps,
): Promise<CompactionResult> {
  if (!(await deps.manifests.tryLease(tenant, collection, holder, LEASE_SECONDS))) {
    return { merges: 0, busy: true, moreWork: false };
  }
  const opened = new Map<string, Promise<Segment>>();
  const open = (ref: SegmentRef) => {
    let segment = opened.get(ref.id);
    if (segment === undefined) {
      segment = sourceOf(deps.blobs, ref).then((source) => Segment.open(source, { groups: ["docs", "ids", "terms"] }));
      opened.set(ref.id, segment);
    }
    return segment;
  };
  let merges = 0;
  let moreWork = false;
  try {
    const { indexes, migration } = await deps.manifests.collection(tenant, collection);
    // A running migration re-embeds the old index's segments as listed when it started: their
    // objects are kept (deleted once it has finished) so its fan-out can still read them.
    const readByMigration = migration?.state === "RUNNING" ? migration.from : undefined;
    for (const index of indexes.size > 0 ? [...indexes.keys()] : [FIRST_INDEX]) {
      if (moreWork) break;
      for (let conflicts = 0; conflicts < 5; ) {
        const manifest: IndexManifest = await deps.manifests.get(tenant, collection, index);
        if (index !== readByMigration) await deleteRetired(manifest, deps);
        // Dropped for good: tombstoned revisions only. Pending ones (job not completed) are kept.
        const masked = droppedEntries(manifest);
        let maskedChunks: Map<string, number> | undefined;
        if (masked.size > 0) {
          maskedChunks = new Map();
          for (const ref of manifest.segments) {
            if ((ref.format ?? 1) < SEGMENT_FORMAT_VERSION) continue;
            const mask = segmentMask(await open(ref), undefined, masked);
            maskedChunks.set(ref.id, mask === undefined ? 0 : mask === null ? ref.chunks : ref.chunks - mask.allowed);
          }
        }
        const pending = new Set(manifest.pending ?? []);
        const ids = await nextMergeAround(manifest.segments, pending, open, (run) =>
          nextMerge(run, deps.policy, maskedChunks),
        );
        if (ids === undefined) break;
        if (deps.remainingMs !== undefined && deps.remainingMs() < (deps.reserveMs ?? 5 * 60_000)) {
          moreWork = true;
          break;
        }
        const started = Date.now();
        const victims = manifest.segments.filter((ref) => ids.includes(ref.id));
        const segments = await Promise.all(victims.map(open));
        const mergedId = createHash("sha256")
          .update([...ids].sort().join("\n"))
          .digest("hex")
          .slice(0, 24);
        const encoded = await mergeSegmentParts(segments, masked, mergedId, {
          pending,
          ...(deps.annMinChunks === undefined ? {} : { annMinChunks: deps.annMinChunks }),
          ...(manifest.model === undefined ? {} : { model: manifest.model }),
        });
        const key = segmentKey(tenant, collection, mergedId, index);
        await deps.blobs.write(key, encoded.parts);
        const remaining = manifest.segments.filter((ref) => !ids.includes(ref.id));
        const purged = unheldTombstones(manifest.tombstones, await Promise.all(remaining.map(open)));
        try {
          await deps.manifests.replaceSegments(manifest, ids, segmentRef(encoded, key), purged);
        } catch (error) {
          if (!(error instanceof ManifestConflict)) throw error;
          conflicts += 1;
          continue;
        }
        merges += 1;
        for (const id of ids) opened.delete(id);
        deps.log?.("merged", {
          tenant,
          collection,
          index,
          sources: victims.map((ref) => ({ id: ref.id, chunks: ref.chunks })),
          merged: { id: mergedId, chunks: encoded.header.chunkCount, bytes: encoded.byteLength },
          purgedTombstones: purged.length,
          ms: Date.now() - started,
        });
      }
    }
  } finally {
    await deps.manifests.releaseLease(tenant, collection, holder);
  }
  return { merges, busy: false, moreWork };
}

/**
 * The policy's next merge, never including a segment that holds a pending revision (its job still
 * running, or FAILED): merged now, its chunks and a shown revision's chunks of the same ids could not
 * both be kept, and the merged segment would take the age of its newest source. Such a segment is a
 * barrier: the policy sees each run of consecutive segments between barriers on its own, so a merge
 * stays a run of neighbours in age order. It waits until its revisions are revealed (or, if FAILED,
 * stays unmerged: a known cost).
 */
async function nextMergeAround(
  segments: readonly SegmentRef[],
  pending: ReadonlySet<string>,
  open: (ref: SegmentRef) => Promise<Segment>,
  policy: (run: SegmentRef[]) => string[] | undefined,
): Promise<string[] | undefined> {
  if (pending.size === 0) return policy([...segments]);
  const runs: SegmentRef[][] = [[]];
  for (const ref of segments) {
    if (await holdsPending(ref, pending, open)) runs.push([]);
    else (runs.at(-1) as SegmentRef[]).push(ref);
  }
  for (const run of runs) {
    const ids = run.length === 0 ? undefined : policy(run);
    if (ids !== undefined) return ids;
  }
  return undefined;
}

async function holdsPending(
  ref: SegmentRef,
  pending: ReadonlySet<string>,
  open: (ref: SegmentRef) => Promise<Segment>,
): Promise<boolean> {
  const segment = await open(ref);
  for (const entry of pending) {
    for (const { documentId, revision } of maskTargets(entry)) {
      if (revision !== undefined && segment.documents.find(documentId, revision) >= 0) return true;
    }
  }
  return false;
}

/** The entries whose chunks compaction drops for good: tombstones (never pending revisions). */
const droppedEntries = (manifest: Manifest) => new Set(manifest.tombstones);

async function sourceOf(blobs: CompactionDeps["blobs"], ref: SegmentRef): Promise<ByteSource> {
  return blobs.source ? blobs.source(ref.key, ref.bytes) : memorySource(await blobs.read(ref.key));
}

/** The tombstones none of `segments` holds any more (so search no longer needs them). */
function unheldTombstones(tombstones: readonly string[], segments: readonly Segment[]): string[] {
  return tombstones.filter(
    (entry) =>
      !segments.some((segment) =>
        maskTargets(entry).some(({ documentId, revision }) =>
          revision === undefined
            ? segment.documents.withId(documentId)[0] < segment.documents.withId(documentId)[1]
            : segment.documents.find(documentId, revision) >= 0,
        ),
      ),
  );
}

async function deleteRetired(manifest: IndexManifest, deps: CompactionDeps): Promise<void> {
  if (manifest.retired === undefined || deps.blobs.delete === undefined) return;
  const before = Date.now() - (deps.retireAfterMs ?? 10 * 60_000);
  const due = Object.entries(manifest.retired)
    .filter(([, at]) => Date.parse(at) < before)
    .map(([key]) => key);
  for (const key of due) await deps.blobs.delete(key);
  await deps.manifests.forgetRetired(manifest.tenant, manifest.collection, due, manifest.index);
}
