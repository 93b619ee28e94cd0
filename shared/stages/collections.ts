import type { z } from "zod";
import type { JobStore } from "../adapters/job-store.ts";
import type { ManifestStore } from "../adapters/manifest-store.ts";
import type {
  collectionView,
  dropIndexResponse,
  indexView as indexViewSchema,
  MigrationRequest,
  migrationView as migrationViewSchema,
  ProblemCode,
} from "../api/schemas.ts";
import { type Job, jobView } from "../domain/jobs.ts";
import {
  type CollectionState,
  type EvaluationReport,
  FIRST_INDEX,
  type IndexManifest,
  type IndexScores,
  indexPrefix,
  type LabelledQuery,
  ManifestConflict,
  MIGRATION_JOB_PREFIX,
  type Migration,
} from "../domain/manifest.ts";
import type { ReembedSegment } from "../domain/messages.ts";
import { mean, mrrAtK, ndcgAtK, recallAtK } from "../domain/retrieval-metrics.ts";
import { canonicalModelId } from "../ml/model-registry.ts";
import { type SearchRequest, type SearchResponse, searchRequest } from "./search.ts";

/**
 * Collections, their indexes and the online migration of a collection to another embedding model:
 *
 * 1. start: the collection records the migration and gets a new, empty index with the new model
 *    (and the active index's tombstones); the migration's job gets the active index's chunk count
 *    as its total; one re-embed request per segment of the active index goes to chunks.embedded,
 *    where the index stage (the collection's one writer) sends the stored chunk texts to embedding
 *    for the new index. Search keeps answering from the active index; uploads meanwhile land in
 *    both (the index stage sends each upload on to the other index).
 * 2. ready when the migration's job completed: the evaluation gate (labelled queries given at
 *    start, or none) compares the two indexes on them.
 * 3. cut-over: one conditional write makes the new index the active one. Roll-back is the same
 *    switch back; the old index stays (and keeps receiving uploads) until the user drops it.
 */

export {
  type CutOverRequest,
  cutOverRequest,
  type MigrationRequest,
  migrationRequest,
} from "../api/schemas.ts";
export type CollectionView = z.output<typeof collectionView>;
export type MigrationView = z.output<typeof migrationViewSchema>;
export type IndexView = z.output<typeof indexViewSchema>;
export type DroppedIndex = z.output<typeof dropIndexResponse>;

export type CollectionErrorKind = "not-found" | "conflict" | "invalid";

/** A request the collection's state refuses; the handler answers 404, 409 or 400. */
export class CollectionError extends Error {
  override name = "CollectionError";
  constructor(
    readonly kind: CollectionErrorKind,
    readonly code: ProblemCode,
    message: string,
  ) {
    super(message);
  }
}

export interface CollectionDeps {
  manifests: Pick<
    ManifestStore,
    "collection" | "get" | "startMigration" | "addTombstones" | "switchActive" | "saveReport" | "dropIndex"
  >;
  jobs: Pick<JobStore, "create" | "advance" | "get" | "fail">;
  /** Sends the migration's re-embed requests to chunks.embedded (keyed by the collection). */
  publishReembeds: (requests: ReembedSegment[]) => Promise<void>;
  /** Search of one index of a collection, for the evaluation gate. */
  search: (tenant: string, request: SearchRequest, options: { index: string }) => Promise<SearchResponse>;
  /** Models this deployment can run. */
  enabledModels: readonly string[];
  /** Deletes a dropped index's segment objects (best effort). */
  deleteObjects?: (keys: string[]) => Promise<void>;
  stallAfterMinutes?: number;
  now?: () => Date;
}

/** The collection's indexes and migration, as `GET /collections/{name}` answers. */
export async function describeCollection(
  tenant: string,
  collection: string,
  deps: CollectionDeps,
): Promise<CollectionView> {
  const state = await existing(tenant, collection, deps);
  const active = state.indexes.get(state.active);
  return {
    collection,
    activeIndex: state.active,
    ...(active?.model ? { model: active.model } : {}),
    indexes: [...state.indexes.values()].map((manifest) => indexView(manifest, state.active)),
    ...(state.migration ? { migration: await migrationView(tenant, state, deps) } : {}),
  };
}

/** Starts moving a collection to `request.model`; answers the migration as it starts. */
export async function startMigration(
  tenant: string,
  collection: string,
  request: MigrationRequest,
  deps: CollectionDeps,
): Promise<MigrationView> {
  // A model's own name (bge-small-en-v1.5) names the registry's entry for it (bge-small-en-v1.5-q).
  request = { ...request, model: canonicalModelId(request.model) };
  if (!deps.enabledModels.includes(request.model)) {
    throw new CollectionError(
      "invalid",
      "UNKNOWN_MODEL",
      `model ${request.model} is not one this deployment runs: ${deps.enabledModels.join(", ")}`,
    );
  }
  const state = await existing(tenant, collection, deps);
  const from = state.indexes.get(state.active) as IndexManifest;
  const fromModel = from.model as string;
  if (state.migration || state.indexes.size > 1) {
    const other = [...state.indexes.keys()].find((index) => index !== state.active);
    throw new CollectionError(
      "conflict",
      "MIGRATION_EXISTS",
      `collection ${collection} already has a second index (${other}): cut over or roll back, then drop the index not used (DELETE /collections/${collection}/indexes/${other}) before migrating again`,
    );
  }
  if (fromModel === request.model) {
    throw new CollectionError("conflict", "SAME_MODEL", `collection ${collection} already uses ${request.model}`);
  }
  const used = [...state.indexes.keys(), ...state.dropped].map(Number).filter(Number.isFinite);
  const to = String(Math.max(Number(FIRST_INDEX), ...used) + 1);
  const startedAt = (deps.now?.() ?? new Date()).toISOString();
  const migrationId = `${MIGRATION_JOB_PREFIX}${collection}-${to}-${Date.parse(startedAt).toString(36)}`;
  const evaluation = request.evaluation?.queries.map(labelled);
  const migration: Migration = {
    id: migrationId,
    jobId: migrationId,
    from: state.active,
    to,
    fromModel,
    model: request.model,
    state: "RUNNING",
    startedAt,
    ...(evaluation ? { evaluation } : {}),
  };
  await deps.jobs.create({
    jobId: migrationId,
    tenant,
    // Not a document: the index being filled (a valid name, as every job's documentId is).
    documentId: `index-${to}`,
    collection,
    filename: `migration of ${collection} from ${fromModel} to ${request.model}`,
    contentType: "application/vnd.datadistiller.migration",
    size: 0,
    metadata: { from: state.active, to, model: request.model },
    objectKey: "",
  });
  try {
    await deps.manifests.startMigration(tenant, collection, migration, from.tombstones);
  } catch (error) {
    await deps.jobs.fail(migrationId, (error as Error).message);
    if (error instanceof ManifestConflict) throw new CollectionError("conflict", "MIGRATION_EXISTS", error.message);
    throw error;
  }
  // The snapshot is read after the new index exists: a segment listed later in the old index is
  // sent on by the index stage, one listed before is here (see indexGroups).
  const snapshot = await deps.manifests.get(tenant, collection, state.active);
  // Tombstones added between the first read and the new index's creation, which it may have missed.
  await deps.manifests.addTombstones(tenant, collection, to, snapshot.tombstones);
  const total = snapshot.segments.reduce((sum, segment) => sum + segment.chunks, 0);
  if (total === 0) {
    await deps.jobs.advance(migrationId, "COMPLETED");
  } else {
    await deps.jobs.advance(migrationId, "EMBEDDING", { chunksTotal: total });
    await publishOrFail(
      migrationId,
      deps,
      snapshot.segments.map((segment) => ({
        kind: "reembed",
        jobId: migrationId,
        tenant,
        collection,
        segment: { id: segment.id, key: segment.key, chunks: segment.chunks },
        target: { index: to, model: request.model },
      })),
    );
  }
  const after = await deps.manifests.collection(tenant, collection);
  return migrationView(tenant, after, deps);
}

/**
 * Sends the re-embed requests; when that fails the migration fails at once with the reason (its new
 * index is then dropped like any other before migrating again), instead of waiting forever.
 */
async function publishOrFail(migrationId: string, deps: CollectionDeps, requests: ReembedSegment[]): Promise<void> {
  try {
    await deps.publishReembeds(requests);
  } catch (error) {
    await deps.jobs.fail(migrationId, `the re-embed requests could not be sent: ${(error as Error).message}`);
    throw error;
  }
}

/** The migration's view; `migrationId` must be the collection's current migration. */
export async function getMigration(
  tenant: string,
  collection: string,
  migrationId: string,
  deps: CollectionDeps,
): Promise<MigrationView> {
  const state = await existing(tenant, collection, deps);
  current(state, migrationId);
  return migrationView(tenant, state, deps);
}

/** Makes the migration's new index the active one, once it is ready and the gate allows it. */
export async function cutOver(
  tenant: string,
  collection: string,
  migrationId: string,
  options: { force: boolean },
  deps: CollectionDeps,
): Promise<MigrationView> {
  const state = await existing(tenant, collection, deps);
  const migration = current(state, migrationId);
  if (state.active === migration.to) return migrationView(tenant, state, deps);
  const view = await migrationView(tenant, state, deps);
  if (view.state !== "READY" && view.state !== "ROLLED_BACK") {
    throw new CollectionError(
      "conflict",
      "MIGRATION_NOT_READY",
      `migration ${migrationId} is ${view.state}${view.job ? ` (${view.job.percentages.indexed}% of ${view.job.counts.chunksTotal} chunks indexed${view.job.error ? `: ${view.job.error}` : ""})` : ""}`,
    );
  }
  if ("better" in view.evaluation && view.evaluation.better === "old" && !options.force) {
    const { old, new: next } = view.evaluation;
    throw new CollectionError(
      "conflict",
      "EVALUATION_GATE",
      `the new index ranks the labelled queries worse (nDCG@10 ${next["ndcg@10"]} vs ${old["ndcg@10"]}): pass force to cut over anyway`,
    );
  }
  await switchTo(tenant, collection, migration, migration.from, migration.to, "CUT_OVER", deps);
  return migrationView(tenant, await deps.manifests.collection(tenant, collection), deps);
}

/** Makes the old index the active one again; the new one stays until dropped. */
export async function rollBack(
  tenant: string,
  collection: string,
  migrationId: string,
  deps: CollectionDeps,
): Promise<MigrationView> {
  const state = await existing(tenant, collection, deps);
  const migration = current(state, migrationId);
  if (state.active !== migration.to) {
    throw new CollectionError(
      "conflict",
      "NOT_CUT_OVER",
      `migration ${migrationId} was not cut over: nothing to roll back`,
    );
  }
  if (!state.indexes.has(migration.from)) {
    throw new CollectionError("conflict", "INDEX_DROPPED", `index ${migration.from} was dropped: it cannot come back`);
  }
  await switchTo(tenant, collection, migration, migration.to, migration.from, "ROLLED_BACK", deps);
  return migrationView(tenant, await deps.manifests.collection(tenant, collection), deps);
}

/**
 * Drops an index that is not the active one (the old one after a cut-over, or a migration's new
 * one to cancel it): it stops receiving uploads at once and its segments are deleted.
 */
export async function dropIndex(
  tenant: string,
  collection: string,
  index: string,
  deps: CollectionDeps,
): Promise<DroppedIndex> {
  const state = await existing(tenant, collection, deps);
  if (!state.indexes.has(index))
    throw new CollectionError("not-found", "INDEX_NOT_FOUND", `no index ${index} in ${collection}`);
  if (state.active === index) {
    throw new CollectionError("conflict", "INDEX_ACTIVE", `index ${index} is the active index of ${collection}`);
  }
  let dropped: IndexManifest;
  try {
    dropped = await deps.manifests.dropIndex(tenant, collection, index);
  } catch (error) {
    if (error instanceof ManifestConflict) throw new CollectionError("conflict", "INDEX_ACTIVE", error.message);
    throw error;
  }
  // A migration still re-embedding into it is cancelled.
  const migration = state.migration;
  if (migration && migration.to === index)
    await deps.jobs.fail(migration.jobId, `cancelled: index ${index} was dropped`);
  const keys = dropped.segments
    .map((segment) => segment.key)
    .filter((key) => key.startsWith(indexPrefix(tenant, collection, index)));
  await deps.deleteObjects?.(keys);
  return { dropped: index, segments: keys.length };
}

async function switchTo(
  tenant: string,
  collection: string,
  migration: Migration,
  from: string,
  to: string,
  state: "CUT_OVER" | "ROLLED_BACK",
  deps: CollectionDeps,
): Promise<void> {
  try {
    await deps.manifests.switchActive(tenant, collection, {
      migrationId: migration.id,
      from,
      to,
      state,
      at: (deps.now?.() ?? new Date()).toISOString(),
    });
  } catch (error) {
    if (error instanceof ManifestConflict) throw new CollectionError("conflict", "COLLECTION_CHANGED", error.message);
    throw error;
  }
}

async function existing(
  tenant: string,
  collection: string,
  deps: CollectionDeps,
): Promise<CollectionState & { dropped: string[] }> {
  const state = await deps.manifests.collection(tenant, collection);
  const active = state.indexes.get(state.active);
  if (!active?.model) {
    throw new CollectionError(
      "not-found",
      "COLLECTION_NOT_FOUND",
      `no collection ${collection} (nothing was indexed in it)`,
    );
  }
  return state;
}

function current(state: CollectionState, migrationId: string): Migration {
  if (state.migration?.id !== migrationId) {
    throw new CollectionError(
      "not-found",
      "MIGRATION_NOT_FOUND",
      `no current migration ${migrationId} of ${state.collection}`,
    );
  }
  return state.migration;
}

function indexView(manifest: IndexManifest, active: string): IndexView {
  return {
    index: manifest.index,
    ...(manifest.model ? { model: manifest.model } : {}),
    active: manifest.index === active,
    segments: manifest.segments.length,
    chunks: manifest.segments.reduce((sum, segment) => sum + segment.chunks, 0),
  };
}

/** The migration with its job's progress; runs (and keeps) the evaluation gate once it is ready. */
async function migrationView(tenant: string, state: CollectionState, deps: CollectionDeps): Promise<MigrationView> {
  const migration = state.migration as Migration;
  const job = await deps.jobs.get(migration.jobId);
  const now = deps.now?.() ?? new Date();
  const ready = job?.state === "COMPLETED";
  let report = migration.report;
  if (ready && !report && migration.evaluation && migration.evaluation.length > 0) {
    report = await evaluate(tenant, state.collection, migration, deps);
    await deps.manifests.saveReport(tenant, state.collection, migration.id, report);
  }
  return {
    migrationId: migration.id,
    from: { index: migration.from, model: migration.fromModel },
    to: { index: migration.to, model: migration.model },
    state: migrationState(migration, job),
    ...(job ? { job: jobView(job, now, deps.stallAfterMinutes ?? 10) } : {}),
    evaluation:
      report ??
      (migration.evaluation && migration.evaluation.length > 0
        ? { pending: true, queries: migration.evaluation.length }
        : { queries: 0, note: "no labelled queries were given: the indexes are not compared" }),
    startedAt: migration.startedAt,
    ...(migration.cutOverAt ? { cutOverAt: migration.cutOverAt } : {}),
    ...(migration.rolledBackAt ? { rolledBackAt: migration.rolledBackAt } : {}),
  };
}

function migrationState(migration: Migration, job: Job | undefined): MigrationView["state"] {
  if (migration.state !== "RUNNING") return migration.state;
  if (!job || job.state === "FAILED") return "FAILED";
  return job.state === "COMPLETED" ? "READY" : "RUNNING";
}

/** The gate: the labelled queries through hybrid search on each index, nDCG@10, Recall@10, MRR@10. */
async function evaluate(
  tenant: string,
  collection: string,
  migration: Migration,
  deps: CollectionDeps,
): Promise<EvaluationReport> {
  const queries = migration.evaluation ?? [];
  const score = async (index: string, model: string): Promise<IndexScores> => {
    const ndcg: number[] = [];
    const recall: number[] = [];
    const mrr: number[] = [];
    for (const { query, relevant } of queries) {
      const request = searchRequest.parse({ query, collection, k: 10, mode: "hybrid", rerank: false });
      const response = await deps.search(tenant, request, { index });
      const ranking = [...new Set(response.results.map((result) => result.documentId))];
      ndcg.push(ndcgAtK(ranking, relevant, 10));
      recall.push(recallAtK(ranking, relevant, 10));
      mrr.push(mrrAtK(ranking, relevant, 10));
    }
    const round = (value: number) => Math.round(value * 10_000) / 10_000;
    return { index, model, "ndcg@10": round(mean(ndcg)), "recall@10": round(mean(recall)), "mrr@10": round(mean(mrr)) };
  };
  const old = await score(migration.from, migration.fromModel);
  const next = await score(migration.to, migration.model);
  const difference = next["ndcg@10"] - old["ndcg@10"];
  return {
    queries: queries.length,
    mode: "hybrid",
    old,
    new: next,
    better: Math.abs(difference) <= 0.005 ? "same" : difference > 0 ? "new" : "old",
    evaluatedAt: new Date().toISOString(),
  };
}

function labelled(query: { query: string; relevant: string[] | Record<string, number> }): LabelledQuery {
  const relevant = Array.isArray(query.relevant)
    ? Object.fromEntries(query.relevant.map((documentId) => [documentId, 1]))
    : query.relevant;
  return { query: query.query, relevant };
}
