/** A collection's index as its manifest describes it. */

/** A segment as the manifest lists it. */
export interface SegmentRef {
  id: string;
  /** Object key of the encoded segment in the index bucket. */
  key: string;
  chunks: number;
  bytes: number;
  /** The segment's own creation time (its age among the collection's segments). */
  createdAt: string;
  /** Segment format version (absent: version 1, written before version 2). */
  format?: number;
}

/** A collection's index: its live segments and the document revisions search must no longer show. */
export interface Manifest {
  tenant: string;
  collection: string;
  version: number;
  segments: SegmentRef[];
  /** Revisions (job ids) that were replaced by a newer upload or deleted. */
  tombstones: string[];
  /** Objects of segments compaction replaced, by key, with when (deleted a while later). */
  retired?: Record<string, string>;
  /**
   * Revisions with chunks in a segment whose job has not completed (still running, or FAILED):
   * hidden from search like tombstones until their job completes, so a document is searchable
   * whole or not at all.
   */
  pending?: string[];
}

/** The revisions search must not show: tombstoned ones and those whose job has not completed. */
export function hiddenRevisions(manifest: Pick<Manifest, "tombstones" | "pending">): Set<string> {
  return new Set([...manifest.tombstones, ...(manifest.pending ?? [])]);
}

/** Thrown when a conditional manifest write lost a race; the caller re-reads and retries. */
export class ManifestConflict extends Error {
  override name = "ManifestConflict";
}
