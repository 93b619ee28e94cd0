import type { BatchCount, BatchRef, CountedStage, JobStore } from "../../../shared/adapters/job-store.ts";
import type { ManifestStore } from "../../../shared/adapters/manifest-store.ts";
import { isTerminal, type Job, type JobState, statesBefore } from "../../../shared/domain/jobs.ts";
import {
  FIRST_INDEX,
  IndexGone,
  type IndexManifest,
  type Manifest,
  ManifestConflict,
  ModelMismatch,
  type SegmentRef,
} from "../../../shared/domain/manifest.ts";
import type { SegmentBlobs } from "../../../shared/stages/ports.ts";

/**
 * In-memory stand-ins for the narrow ports the stages take, with the semantics of the DynamoDB
 * and S3 adapters they replace (checked against the real servers in test/integration): forward-
 * only job states, a counter that counts each batch once by its marker, a manifest that lists a
 * segment once and refuses a swap made against an old version.
 */

export function job(jobId: string, state: JobState, fields: Partial<Job> = {}): Job {
  const at = "2026-01-01T00:00:00.000Z";
  return {
    jobId,
    tenant: "acme",
    documentId: `doc-${jobId}`,
    collection: "default",
    filename: `${jobId}.txt`,
    contentType: "text/plain",
    size: 10,
    metadata: {},
    objectKey: `uploads/acme/doc-${jobId}/${jobId}.txt`,
    state,
    chunksTotal: 0,
    chunksEmbedded: 0,
    chunksIndexed: 0,
    stages: { [state]: at },
    createdAt: at,
    updatedAt: at,
    ...fields,
  };
}

type JobPort = Pick<
  JobStore,
  | "get"
  | "getMany"
  | "advance"
  | "fail"
  | "uncounted"
  | "countBatches"
  | "countIndexed"
  | "addWork"
  | "completeIfDone"
  | "noteError"
  | "noteErrors"
>;

export class InMemoryJobs implements JobPort {
  readonly jobs = new Map<string, Job>();
  /** `<stage>\n<jobId>\n<batchId>` of every batch counted. */
  readonly markers = new Set<string>();
  /** Every call, in order, by method name: what a stage asked of the store. */
  readonly calls: string[] = [];

  constructor(...jobs: Job[]) {
    for (const item of jobs) this.jobs.set(item.jobId, structuredClone(item));
  }

  private marker = (stage: CountedStage, batch: BatchRef) => `${stage}\n${batch.jobId}\n${batch.batchId}`;

  async get(jobId: string): Promise<Job | undefined> {
    this.calls.push("get");
    const found = this.jobs.get(jobId);
    return found && structuredClone(found);
  }

  async getMany(jobIds: Iterable<string>): Promise<Map<string, Job>> {
    this.calls.push("getMany");
    const found = new Map<string, Job>();
    for (const jobId of jobIds) {
      const item = this.jobs.get(jobId);
      if (item) found.set(jobId, structuredClone(item));
    }
    return found;
  }

  async advance(
    jobId: string,
    to: JobState,
    set: Partial<Pick<Job, "chunksTotal" | "size" | "error">> = {},
    passed: Partial<Record<JobState, string>> = {},
  ): Promise<boolean> {
    this.calls.push("advance");
    const item = this.jobs.get(jobId);
    if (!item || !statesBefore(to).includes(item.state)) return false;
    Object.assign(item, set, { state: to, stages: { ...item.stages, ...passed, [to]: new Date().toISOString() } });
    return true;
  }

  async fail(jobId: string, reason: string): Promise<boolean> {
    return this.advance(jobId, "FAILED", { error: reason });
  }

  async uncounted<B extends BatchRef>(stage: CountedStage, batches: B[]): Promise<B[]> {
    this.calls.push("uncounted");
    return batches.filter((batch) => !this.markers.has(this.marker(stage, batch)));
  }

  private count(stage: CountedStage, batch: BatchCount): boolean {
    const item = this.jobs.get(batch.jobId);
    const marker = this.marker(stage, batch);
    if (!item || this.markers.has(marker)) return false;
    this.markers.add(marker);
    if (stage === "embedded") item.chunksEmbedded += batch.chunks;
    else item.chunksIndexed += batch.chunks;
    return true;
  }

  async countBatches<B extends BatchCount>(stage: CountedStage, batches: B[]): Promise<B[]> {
    this.calls.push("countBatches");
    return batches.filter((batch) => this.count(stage, batch));
  }

  async countIndexed<B extends BatchCount>(
    batches: B[],
    seen: ReadonlyMap<string, Job>,
    options: { beforeCompleting?: (jobs: Job[]) => Promise<void> } = {},
  ): Promise<{ counted: B[]; finished: Job[]; completed: Job[] }> {
    this.calls.push("countIndexed");
    const counted = batches.filter((batch) => this.count("indexed", batch));
    const done: Job[] = [];
    for (const jobId of new Set(counted.map((batch) => batch.jobId))) {
      await this.advance(jobId, "INDEXING");
      const item = this.jobs.get(jobId);
      const all = item && item.chunksTotal > 0 && item.chunksIndexed >= item.chunksTotal && !isTerminal(item.state);
      if (all) done.push(seen.get(jobId) ?? item);
    }
    // As the store: jobs whose last chunks were counted are completed with them, once made searchable.
    if (!options.beforeCompleting || done.length === 0) return { counted, finished: done, completed: [] };
    await options.beforeCompleting(done);
    for (const job of done) await this.advance(job.jobId, "COMPLETED");
    return { counted, finished: [], completed: done };
  }

  async completeIfDone(jobId: string): Promise<boolean> {
    this.calls.push("completeIfDone");
    const item = this.jobs.get(jobId);
    if (!item || item.chunksTotal === 0 || item.chunksIndexed < item.chunksTotal) return false;
    if (item.state !== "EMBEDDING" && item.state !== "INDEXING") return false;
    return this.advance(jobId, "COMPLETED");
  }

  async addWork<B extends BatchCount>(batches: B[]): Promise<B[]> {
    this.calls.push("addWork");
    return batches.filter((batch) => {
      const item = this.jobs.get(batch.jobId);
      const marker = `added\n${batch.jobId}\n${batch.batchId}`;
      if (!item || this.markers.has(marker)) return false;
      this.markers.add(marker);
      item.chunksTotal += batch.chunks;
      return true;
    });
  }

  async noteError(jobId: string, message: string): Promise<void> {
    const item = this.jobs.get(jobId);
    if (item) item.lastError = message;
  }

  async noteErrors(jobIds: Iterable<string>, message: string): Promise<void> {
    for (const jobId of jobIds) await this.noteError(jobId, message);
  }
}

type ManifestPort = Pick<
  ManifestStore,
  "get" | "collection" | "addSegment" | "addTombstone" | "replaceSegments" | "promoteRevision" | "revealRevisions"
>;

/** Indexes as the DynamoDB store keeps them: a manifest (with its model) per index, the active one, dropped ones. */
export class InMemoryManifests implements ManifestPort {
  private readonly manifests = new Map<string, IndexManifest & { dropped?: boolean }>();
  /** Active index per `<tenant>\n<collection>` (default the first). */
  readonly active = new Map<string, string>();
  /** Live revision of each document: `<tenant>\n<documentId>`. */
  readonly live = new Map<string, { id: string; collection: string; createdAt: string }>();

  /** Creates an index (as a migration does), with its model. */
  createIndex(tenant: string, collection: string, index: string, model: string): void {
    this.manifests.set(`${tenant}\n${collection}\n${index}`, {
      tenant,
      collection,
      index,
      model,
      version: 0,
      segments: [],
      tombstones: [],
    });
  }

  drop(tenant: string, collection: string, index: string): void {
    const manifest = this.manifests.get(`${tenant}\n${collection}\n${index}`);
    if (manifest) manifest.dropped = true;
  }

  private manifest(
    tenant: string,
    collection: string,
    index: string = FIRST_INDEX,
  ): IndexManifest & { dropped?: boolean } {
    const key = `${tenant}\n${collection}\n${index}`;
    let found = this.manifests.get(key);
    if (!found) {
      found = { tenant, collection, index, version: 0, segments: [], tombstones: [], pending: [] };
      this.manifests.set(key, found);
    }
    return found;
  }

  async get(tenant: string, collection: string, index?: string): Promise<IndexManifest> {
    const { dropped: _, ...manifest } = this.manifest(
      tenant,
      collection,
      index ?? this.active.get(`${tenant}\n${collection}`) ?? FIRST_INDEX,
    );
    return structuredClone(manifest);
  }

  async collection(tenant: string, collection: string) {
    const indexes = new Map<string, IndexManifest>();
    const dropped: string[] = [];
    for (const manifest of this.manifests.values()) {
      if (manifest.tenant !== tenant || manifest.collection !== collection) continue;
      if (manifest.dropped) dropped.push(manifest.index);
      else indexes.set(manifest.index, structuredClone(manifest));
    }
    return { tenant, collection, active: this.active.get(`${tenant}\n${collection}`) ?? FIRST_INDEX, indexes, dropped };
  }

  async addSegment(
    tenant: string,
    collection: string,
    segment: SegmentRef,
    target: { index: string; model: string },
    pendingRevisions: string[] = [],
  ): Promise<boolean> {
    const manifest = this.manifest(tenant, collection, target.index);
    if (manifest.dropped) throw new IndexGone(`index ${target.index} was dropped`);
    manifest.model ??= target.model;
    if (manifest.model !== target.model) throw new ModelMismatch(`index ${target.index} holds ${manifest.model}`);
    if (manifest.segments.some((listed) => listed.id === segment.id)) return false;
    manifest.segments.push(segment);
    manifest.pending = [...new Set([...(manifest.pending ?? []), ...pendingRevisions])].sort();
    manifest.version++;
    return true;
  }

  async revealRevisions(
    tenant: string,
    collection: string,
    revisions: readonly string[],
    replaced: readonly string[] = [],
  ): Promise<void> {
    if (revisions.length === 0 && replaced.length === 0) return;
    const { indexes } = await this.collection(tenant, collection);
    for (const index of indexes.size > 0 ? indexes.keys() : [FIRST_INDEX]) {
      const manifest = this.manifest(tenant, collection, index);
      manifest.pending = (manifest.pending ?? []).filter((pending) => !revisions.includes(pending));
      manifest.tombstones = [...new Set([...manifest.tombstones, ...replaced])].sort();
      manifest.version++;
    }
  }

  async addTombstone(tenant: string, collection: string, revision: string): Promise<void> {
    const { indexes } = await this.collection(tenant, collection);
    for (const index of indexes.size > 0 ? indexes.keys() : [FIRST_INDEX]) {
      const manifest = this.manifest(tenant, collection, index);
      if (!manifest.tombstones.includes(revision)) manifest.tombstones = [...manifest.tombstones, revision].sort();
      manifest.version++;
    }
  }

  async replaceSegments(
    seen: Manifest & { index?: string },
    removed: string[],
    added: SegmentRef,
    purged: string[],
  ): Promise<void> {
    const manifest = this.manifest(seen.tenant, seen.collection, seen.index);
    if (manifest.version !== seen.version) throw new ManifestConflict("the manifest changed meanwhile");
    manifest.segments = [...manifest.segments.filter((segment) => !removed.includes(segment.id)), added];
    manifest.tombstones = manifest.tombstones.filter((revision) => !purged.includes(revision));
    manifest.version++;
  }

  async promoteRevision(
    tenant: string,
    documentId: string,
    revision: { id: string; collection: string; createdAt: string },
  ): Promise<{ id: string; collection: string } | undefined> {
    const key = `${tenant}\n${documentId}`;
    const previous = this.live.get(key);
    // As the conditional update: unless this upload is newer than the live one, it is the one replaced.
    if (previous && previous.createdAt >= revision.createdAt)
      return { id: revision.id, collection: revision.collection };
    this.live.set(key, revision);
    return previous ? { id: previous.id, collection: previous.collection } : undefined;
  }
}

export class InMemoryBlobs implements SegmentBlobs {
  readonly objects = new Map<string, Uint8Array>();
  writes = 0;

  async write(key: string, body: Uint8Array | readonly Uint8Array[]): Promise<void> {
    this.writes++;
    this.objects.set(key, Buffer.concat(body instanceof Uint8Array ? [body] : [...body]));
  }

  async read(key: string): Promise<Uint8Array> {
    const bytes = this.objects.get(key);
    if (!bytes) throw Object.assign(new Error(`NoSuchKey: ${key}`), { name: "NoSuchKey" });
    return bytes;
  }
}
