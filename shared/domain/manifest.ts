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

/**
 * Indexes and collections. A collection has one or more indexes, each with its own manifest
 * (segments, tombstones, version) and the embedding model every one of its vectors came from;
 * the collection points at its active index, which search reads. A migration builds a second
 * index with another model beside the active one; cut-over moves the pointer, nothing else.
 */

/** The model of indexes written before models were recorded (all-MiniLM-L6-v2, int8). */
export const LEGACY_MODEL_ID = "all-minilm-l6-v2-q";

/** The first index of every collection (its manifest is the collection's original one). */
export const FIRST_INDEX = "1";

/** An index's manifest: the `Manifest` of one index, with the model its vectors came from. */
export interface IndexManifest extends Manifest {
  index: string;
  /** Model id of every vector in the index; undefined only for an index nothing was written to yet. */
  model?: string;
}

export type MigrationState = "RUNNING" | "CUT_OVER" | "ROLLED_BACK";

/** Labelled queries a user supplies to compare the old index with the new one. */
export interface LabelledQuery {
  query: string;
  /** Relevant document ids with their grades (> 0). */
  relevant: Record<string, number>;
}

export interface IndexScores {
  index: string;
  model: string;
  "ndcg@10": number;
  "recall@10": number;
  "mrr@10": number;
}

export interface EvaluationReport {
  queries: number;
  mode: "hybrid";
  old: IndexScores;
  new: IndexScores;
  /** Which index ranks the labelled queries better by nDCG@10 ("same" within 0.005). */
  better: "old" | "new" | "same";
  evaluatedAt: string;
}

/** A migration of a collection from one index (and model) to a new one. */
export interface Migration {
  id: string;
  /** The job that counts the re-embedded chunks (its id is the migration id). */
  jobId: string;
  from: string;
  to: string;
  fromModel: string;
  model: string;
  state: MigrationState;
  startedAt: string;
  cutOverAt?: string;
  rolledBackAt?: string;
  evaluation?: LabelledQuery[];
  report?: EvaluationReport;
}

/** A collection as its items in the table describe it. */
export interface CollectionState {
  tenant: string;
  collection: string;
  /** The index search answers from. */
  active: string;
  /** Live (not dropped) indexes, by id. */
  indexes: Map<string, IndexManifest>;
  migration?: Migration;
}

/** Thrown when a write targets an index that was dropped (or never created). */
export class IndexGone extends Error {
  override name = "IndexGone";
}

/** Thrown when vectors of one model are about to be written into an index of another. */
export class ModelMismatch extends Error {
  override name = "ModelMismatch";
}

/** Where an index's segments live: the first index where collections always had theirs, others beside it. */
export const indexPrefix = (tenant: string, collection: string, index: string) =>
  index === FIRST_INDEX ? `index/${tenant}/${collection}/` : `index/${tenant}/${collection}/indexes/${index}/`;

/** A job that re-embeds a collection for a migration, not a document's upload. */
export const MIGRATION_JOB_PREFIX = "migration-";
export const isMigrationJob = (jobId: string) => jobId.startsWith(MIGRATION_JOB_PREFIX);
